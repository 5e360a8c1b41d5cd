"""Sandboxes and warm-pool containers as rows; the containers themselves live on the Docker Engine."""
from django.conf import settings
from django.db import models
from django.utils import timezone

from .states import ACTIVE, FINAL, State


class Runtime(models.TextChoices):
    RUNC = "runc", "Standard (runc)"
    RUNSC = "runsc", "Strong isolation (gVisor)"


class Sandbox(models.Model):
    State = State

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sandboxes")
    lab_slug = models.SlugField(max_length=100, blank=True)
    step_slug = models.SlugField(max_length=100, blank=True)
    image = models.CharField(max_length=200)
    runtime = models.CharField(max_length=10, choices=Runtime.choices, default=Runtime.RUNC)
    memory_mb = models.PositiveIntegerField()
    cpus = models.FloatField()
    pids_limit = models.PositiveIntegerField()
    capabilities = models.JSONField(default=list, blank=True)
    uid = models.PositiveIntegerField(help_text="The Unix user id the learner's processes run as.")

    state = models.CharField(max_length=20, choices=State.choices, default=State.REQUESTED, db_index=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    container_id = models.CharField(max_length=80, blank=True, db_index=True)
    from_warm_pool = models.BooleanField(default=False)

    created_at = models.DateTimeField(default=timezone.now)
    state_changed_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    last_active_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "state"])]
        constraints = [
            # The uid is what keeps one learner's process limit away from another's: never two live sandboxes on one.
            models.UniqueConstraint(fields=["uid"], condition=models.Q(state__in=sorted(ACTIVE)),
                                    name="sandbox_uid_unique_while_active"),
        ]

    def __str__(self) -> str:
        return f"sandbox {self.pk} of {self.owner} ({self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE

    @property
    def is_final(self) -> bool:
        return self.state in FINAL

    @property
    def seconds_left(self) -> int:
        return max(0, int((self.expires_at - timezone.now()).total_seconds()))


class WarmContainer(models.Model):
    """A pre-started sandbox of one environment profile, waiting to be claimed by the next request that needs it."""

    # Several installs (or test runs) may share one database and engine; each claims only its own containers.
    instance = models.CharField(max_length=60, db_index=True, default="default")
    # sandbox/pools/profiles.py: image, runtime, memory, CPU and pids; a request claims only its own profile's.
    profile_key = models.CharField(max_length=300, db_index=True, default="")
    image = models.CharField(max_length=200)
    runtime = models.CharField(max_length=10, choices=Runtime.choices, default=Runtime.RUNC)
    memory_mb = models.PositiveIntegerField(default=0)
    cpus = models.FloatField(default=0)
    pids_limit = models.PositiveIntegerField(default=0)
    container_id = models.CharField(max_length=80, unique=True)
    uid = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]


class PoolReservation(models.Model):
    """Warm containers promised ahead to a group (a class session): `expected` sandboxes of one profile, ramped up
    from `ramp_from`, all ready by `ready_by`, kept until `until`. Learners in `owner_ids` who started a sandbox of
    `lab_slug` since `ramp_from` no longer need theirs."""

    instance = models.CharField(max_length=60, db_index=True, default="default")
    label = models.CharField(max_length=300)
    profile_key = models.CharField(max_length=300, db_index=True)
    image = models.CharField(max_length=200)
    runtime = models.CharField(max_length=10, choices=Runtime.choices, default=Runtime.RUNC)
    memory_mb = models.PositiveIntegerField()
    cpus = models.FloatField()
    pids_limit = models.PositiveIntegerField()
    expected = models.PositiveIntegerField()
    owner_ids = models.JSONField(default=list, blank=True)
    lab_slug = models.SlugField(max_length=100, blank=True)
    ramp_from = models.DateTimeField()
    ready_by = models.DateTimeField()
    until = models.DateTimeField(db_index=True)
    # What the last pass could not admit within the host's memory budget (0: all of them fit).
    short = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["ready_by"]


class TerminalRecording(models.Model):
    """One terminal session of a sandbox's owner, kept as an asciicast v2 file for replay next to grading results."""

    sandbox = models.ForeignKey(Sandbox, on_delete=models.CASCADE, related_name="recordings")
    path = models.CharField(max_length=300)
    width = models.PositiveIntegerField(default=120)
    height = models.PositiveIntegerField(default=32)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    truncated = models.BooleanField(default=False)

    class Meta:
        ordering = ["started_at"]
