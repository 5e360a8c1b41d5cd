"""A learner's Lambda functions: their versions and aliases, the execution environments they run in, and what ran."""
from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from sandbox.awsapi.models import AwsAccount

LATEST = "$LATEST"


def new_revision() -> str:
    return str(uuid.uuid4())


class Function(models.Model):
    """What a learner names in `--function-name`: the unqualified function. Its configuration and code live on its
    versions ($LATEST, which updates change, and the immutable published ones)."""

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="functions")
    name = models.CharField(max_length=64)
    created = models.DateTimeField(default=timezone.now)
    reserved_concurrency = models.PositiveIntegerField(null=True, blank=True)
    next_version = models.PositiveIntegerField(default=1)
    tags = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="functions_name_per_account")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FunctionVersion(models.Model):
    class State(models.TextChoices):
        PENDING = "Pending"
        ACTIVE = "Active"
        FAILED = "Failed"

    class UpdateStatus(models.TextChoices):
        IN_PROGRESS = "InProgress"
        SUCCESSFUL = "Successful"
        FAILED = "Failed"

    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="versions")
    version = models.CharField(max_length=16, default=LATEST)
    runtime = models.CharField(max_length=32, default="python3.11")
    handler = models.CharField(max_length=128, default="lambda_function.lambda_handler")
    role = models.CharField(max_length=2048, blank=True)
    description = models.CharField(max_length=256, blank=True)
    memory_size = models.PositiveIntegerField(default=128)
    timeout = models.PositiveIntegerField(default=3)
    environment = models.JSONField(default=dict, blank=True)
    ephemeral_storage = models.PositiveIntegerField(default=512)
    # "runsc" runs the function's environments under gVisor (the tag sandcloud:isolation=strong asks for it).
    isolation = models.CharField(max_length=8, default="runc")
    code_sha256 = models.CharField(max_length=64)  # base64 of the zip's SHA-256, as AWS reports CodeSha256
    code_size = models.PositiveBigIntegerField(default=0)
    unzipped_size = models.PositiveBigIntegerField(default=0)
    code_key = models.CharField(max_length=128)  # the code store's name for the unpacked zip (sandbox/functions/code.py)
    state = models.CharField(max_length=16, choices=State, default=State.PENDING)
    state_reason = models.CharField(max_length=512, blank=True)
    state_reason_code = models.CharField(max_length=64, blank=True)
    last_update_status = models.CharField(max_length=16, choices=UpdateStatus, default=UpdateStatus.SUCCESSFUL)
    last_modified = models.DateTimeField(default=timezone.now)
    revision_id = models.CharField(max_length=36, default=new_revision)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["function", "version"], name="functions_version_unique")]

    def __str__(self) -> str:
        return f"{self.function.name}:{self.version}"


class Alias(models.Model):
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=128)
    function_version = models.CharField(max_length=16)
    # {"2": 0.1}: that share of invocations goes to version 2 instead of function_version (AWS's RoutingConfig).
    routing_weights = models.JSONField(default=dict, blank=True)
    description = models.CharField(max_length=256, blank=True)
    revision_id = models.CharField(max_length=36, default=new_revision)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["function", "name"], name="functions_alias_unique")]
        ordering = ["name"]


class ProvisionedConcurrency(models.Model):
    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="provisioned")
    qualifier = models.CharField(max_length=128)  # a version number or an alias name, never $LATEST
    requested = models.PositiveIntegerField()
    modified = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["function", "qualifier"], name="functions_provisioned_unique")]


class ExecutionEnvironment(models.Model):
    """One container running one function version's code, serving one invocation at a time. Its fast-changing state
    (idle, busy, frozen) lives in Redis (sandbox/functions/environments.py); this row is what the reaper reconciles."""

    version = models.ForeignKey(FunctionVersion, on_delete=models.CASCADE, related_name="environments")
    revision_id = models.CharField(max_length=36)
    owner_id = models.PositiveIntegerField()  # the learner (user id) whose network and quota it uses
    host = models.CharField(max_length=64, default="local")
    container_id = models.CharField(max_length=64, blank=True)
    address = models.CharField(max_length=45, blank=True)
    uid = models.PositiveIntegerField(default=0)
    token = models.CharField(max_length=64)
    memory_mb = models.PositiveIntegerField()
    log_stream = models.CharField(max_length=256)
    # The environment's temporary credentials for the function's own account (AWS_ACCESS_KEY_ID inside it).
    session_key_id = models.CharField(max_length=20, blank=True)
    provisioned = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)


class Invocation(models.Model):
    """One invocation as the console, the metrics and the cost show it (the log lines are in CloudWatch Logs)."""

    class Status(models.TextChoices):
        SUCCESS = "Success"
        ERROR = "Error"
        TIMEOUT = "Timeout"
        THROTTLED = "Throttled"

    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="invocations")
    version = models.CharField(max_length=16)
    request_id = models.CharField(max_length=36)
    invocation_type = models.CharField(max_length=16, default="RequestResponse")
    started = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status)
    error_type = models.CharField(max_length=128, blank=True)
    duration_ms = models.FloatField(default=0)
    billed_ms = models.PositiveIntegerField(default=0)
    init_ms = models.FloatField(null=True, blank=True)
    memory_size = models.PositiveIntegerField(default=128)
    max_memory_used = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["function", "-started"], name="functions_invocation_recent")]


class AsyncEvent(models.Model):
    """An `Event` invocation waiting, running, or done; failed ones stay for the learner to read."""

    class State(models.TextChoices):
        QUEUED = "queued"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    function = models.ForeignKey(Function, on_delete=models.CASCADE, related_name="async_events")
    qualifier = models.CharField(max_length=128, default=LATEST)
    request_id = models.CharField(max_length=36, unique=True)
    payload = models.BinaryField()
    state = models.CharField(max_length=16, choices=State, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)
    updated = models.DateTimeField(default=timezone.now)
