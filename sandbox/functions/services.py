"""Every change to a learner's functions, and invoking them: shared by the Lambda API (api.py), the console and tasks.

Errors are `AwsError`s in AWS's own words; the console shows their message, which is written to be read by a person.
"""
from __future__ import annotations

import base64
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from sandbox.awsapi.errors import AwsError
from sandbox.awsapi.models import AwsAccount

from . import code as code_store
from . import environments as envs
from . import reaper, records, reports
from .models import LATEST, Alias, AsyncEvent, ExecutionEnvironment, Function, FunctionVersion, Invocation, \
    ProvisionedConcurrency
from .selectors import function_arn, function_get, log_group_name

log = logging.getLogger(__name__)

SUPPORTED_RUNTIMES = ("python3.11",)
RESERVED_ENVIRONMENT_KEYS = ("_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
                             "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                             "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_INITIALIZATION_TYPE",
                             "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
                             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                             "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR")
ISOLATION_TAG = "sandcloud:isolation"
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD = 1024 * 1024
ENVIRONMENT_BYTES = 4 * 1024
LOG_TAIL_BYTES = 4 * 1024


def _config() -> dict:
    return settings.SANDCLOUD_FUNCTIONS


def _invalid(message: str) -> AwsError:
    return AwsError("InvalidParameterValueException", message)


def _conflict(message: str) -> AwsError:
    return AwsError("ResourceConflictException", message, status=409)


# --- configuration checks (AWS's own messages) -------------------------------------------------------------------

def _check_runtime(runtime: str) -> None:
    if runtime not in SUPPORTED_RUNTIMES:
        raise _invalid(f"The runtime parameter of {runtime} is not supported by Sandcloud yet. "
                       f"Use {', '.join(SUPPORTED_RUNTIMES)}.")


def _check_environment(variables: dict[str, str]) -> None:
    reserved = sorted(set(variables) & set(RESERVED_ENVIRONMENT_KEYS))
    if reserved:
        raise _invalid("Lambda was unable to configure your environment variables because the environment variables "
                       "you have provided contains reserved keys that are currently not supported for modification. "
                       f"Reserved keys used in this request: {', '.join(reserved)}")
    measured = json.dumps(variables, separators=(",", ":"))
    if len(measured.encode()) > ENVIRONMENT_BYTES:
        raise _invalid("Lambda was unable to configure your environment variables because the environment variables "
                       "you have provided exceeded the 4KB limit. String measured: " + measured[:200])


def _check_role(account: AwsAccount, role: str) -> None:
    from sandbox.awsapi.identity import arn_check

    parsed = arn_check(account=account, arn=role, action="iam:PassRole")
    if parsed is None or parsed.service != "iam" or not parsed.resource.startswith("role/"):
        raise _invalid("The role defined for the function cannot be assumed by Lambda.")


MAX_MEMORY_MB, MAX_TIMEOUT_S = 10_240, 900


def _check_limits(*, memory_size: int | None = None, timeout: int | None = None) -> None:
    """Lambda's limits (the service model allows more than the service does)."""
    if memory_size is not None and not 128 <= memory_size <= MAX_MEMORY_MB:
        raise _invalid(f"'MemorySize' value failed to satisfy constraint: Member must have value less than or equal "
                       f"to {MAX_MEMORY_MB}")
    if timeout is not None and not 1 <= timeout <= MAX_TIMEOUT_S:
        raise _invalid(f"'Timeout' value failed to satisfy constraint: Member must have value less than or equal to "
                       f"{MAX_TIMEOUT_S}")


def _check_ephemeral(size: int) -> None:
    limit = _config()["MAX_EPHEMERAL_MB"]
    if size > limit:
        raise _invalid(f"EphemeralStorage Size {size} MB is more than this Sandcloud server allows ({limit} MB): "
                       f"/tmp is kept in memory here.")


def _code_storage_exceeded(limit: int) -> AwsError:
    return AwsError("CodeStorageExceededException",
                    f"Code storage limit exceeded. Your functions' code may take {limit // 2**20} MB unzipped on "
                    f"Sandcloud; delete old versions or functions first.")


def _code_room(account: AwsAccount) -> int:
    """The bytes of unzipped code the learner may still add."""
    limit = _config()["CODE_MB_PER_LEARNER"] * 1024 * 1024
    used = sum({key: size for key, size in FunctionVersion.objects.filter(function__account=account)
                .values_list("code_key", "unzipped_size")}.values())
    if used >= limit:
        raise _code_storage_exceeded(limit)
    return limit - used


def _code_from(account: AwsAccount, Code: dict | None = None, zip_file: bytes | None = None) -> code_store.CodeInfo:
    Code = Code or {}
    data = zip_file if zip_file is not None else Code.get("ZipFile")
    if Code.get("ImageUri"):
        raise _invalid("Sandcloud runs container-image functions once its private registry (ECR) is in place; "
                       "upload a .zip file with --zip-file fileb://function.zip for now.")
    if Code.get("S3Bucket") or Code.get("S3Key"):
        raise _invalid("Sandcloud has no S3: upload the .zip file itself with --zip-file fileb://function.zip.")
    if not data:
        raise _invalid("Please provide a source for function code: --zip-file fileb://function.zip.")
    # The quota bounds the unpacking itself, so a refused upload never lands on the disk.
    room = _code_room(account)
    try:
        return code_store.code_unpack(account_id=account.account_id, zip_bytes=data, max_unzipped=room)
    except AwsError as error:
        if error.message.startswith("Unzipped size must be smaller") and room < code_store.MAX_UNZIPPED_BYTES:
            raise _code_storage_exceeded(_config()["CODE_MB_PER_LEARNER"] * 1024 * 1024) from None
        raise


def _isolation(tags: dict[str, str]) -> str:
    value = (tags or {}).get(ISOLATION_TAG, "")
    if value and value not in ("strong", "standard"):
        raise _invalid(f"The tag {ISOLATION_TAG} takes 'strong' (gVisor) or 'standard' (runc), not {value!r}.")
    return "runsc" if value == "strong" else "runc"


def _activate(version_id: int) -> None:
    """The version's code is unpacked and checked before the call answers, so it turns Active as soon as the
    transaction that made it commits (AWS reports Pending in between, and so does the call's answer)."""
    FunctionVersion.objects.filter(pk=version_id).update(
        state=FunctionVersion.State.ACTIVE, state_reason="", state_reason_code="",
        last_update_status=FunctionVersion.UpdateStatus.SUCCESSFUL)


# --- functions ----------------------------------------------------------------------------------------------------

def function_create(*, account: AwsAccount, name: str, runtime: str, role: str, handler: str, code: dict,
                    description: str = "", timeout: int = 3, memory_size: int = 128,
                    environment: dict[str, str] | None = None, ephemeral_storage: int = 512,
                    tags: dict[str, str] | None = None, publish: bool = False) -> FunctionVersion:
    _check_runtime(runtime)
    _check_limits(memory_size=memory_size, timeout=timeout)
    _check_role(account, role)
    _check_environment(environment or {})
    _check_ephemeral(ephemeral_storage)
    isolation = _isolation(tags or {})
    if Function.objects.filter(account=account).count() >= _config()["FUNCTIONS_PER_LEARNER"]:
        raise AwsError("ResourceLimitExceededException", f"Sandcloud allows {_config()['FUNCTIONS_PER_LEARNER']} "
                                                         f"functions per learner: delete one before creating another.")
    info = _code_from(account, code)
    try:
        with transaction.atomic():
            function = Function.objects.create(account=account, name=name, tags=tags or {})
            version = FunctionVersion.objects.create(
                function=function, version=LATEST, runtime=runtime, handler=handler, role=role,
                description=description, memory_size=memory_size, timeout=timeout, environment=environment or {},
                ephemeral_storage=ephemeral_storage, isolation=isolation, code_sha256=info.sha256,
                code_size=info.size, unzipped_size=info.unzipped_size, code_key=info.key,
                state=FunctionVersion.State.PENDING, state_reason="The function is being created.",
                state_reason_code="Creating")
            transaction.on_commit(lambda: _activate(version.pk))
    except IntegrityError:
        code_garbage_collect(account=account, keys=[info.key])
        raise _conflict(f"Function already exist: {name}") from None
    if publish:
        version_publish(account=account, function_name=name)
    return version


def function_update_code(*, account: AwsAccount, function_name: str, zip_file: bytes | None = None,
                         code: dict | None = None, publish: bool = False,
                         revision_id: str | None = None) -> FunctionVersion:
    function = function_get(account=account, name=function_name)
    latest = function.versions.get(version=LATEST)
    _check_revision(latest, revision_id)
    info = _code_from(account, code, zip_file)
    old_key = latest.code_key
    with transaction.atomic():
        fields = dict(code_sha256=info.sha256, code_size=info.size, unzipped_size=info.unzipped_size,
                      code_key=info.key, last_update_status=FunctionVersion.UpdateStatus.IN_PROGRESS)
        _version_change(latest, **fields)
        transaction.on_commit(lambda: _activate(latest.pk))
        transaction.on_commit(lambda: code_garbage_collect(account=account, keys=[old_key]))
    if publish:
        version_publish(account=account, function_name=function_name)
    return latest


def function_update_configuration(*, account: AwsAccount, function_name: str, revision_id: str | None = None,
                                  **changes) -> FunctionVersion:
    function = function_get(account=account, name=function_name)
    latest = function.versions.get(version=LATEST)
    _check_revision(latest, revision_id)
    _check_limits(memory_size=changes.get("memory_size"), timeout=changes.get("timeout"))
    if "runtime" in changes:
        _check_runtime(changes["runtime"])
    if "role" in changes:
        _check_role(account, changes["role"])
    if "environment" in changes:
        _check_environment(changes["environment"])
    if "ephemeral_storage" in changes:
        _check_ephemeral(changes["ephemeral_storage"])
    with transaction.atomic():
        _version_change(latest, last_update_status=FunctionVersion.UpdateStatus.IN_PROGRESS, **changes)
        transaction.on_commit(lambda: _activate(latest.pk))
    return latest


def _check_revision(version: FunctionVersion, revision_id: str | None) -> None:
    if revision_id and revision_id != version.revision_id:
        raise AwsError("PreconditionFailedException", "The Revision Id provided does not match the latest Revision "
                                                      "Id. Call the GetFunction/GetAlias API to retrieve the latest "
                                                      "Revision Id", status=412)


def _version_change(version: FunctionVersion, **fields) -> None:
    """Changes $LATEST: a new revision, so environments of the old one are never used again and are removed."""
    old_revision = version.revision_id
    for name, value in fields.items():
        setattr(version, name, value)
    version.revision_id = str(uuid.uuid4())
    version.last_modified = timezone.now()
    version.save()
    version_id = version.pk
    transaction.on_commit(lambda: _retire(version_id=version_id, revision=old_revision))


def _retire(*, version_id: int, revision: str) -> None:
    from .tasks import environments_retire_task

    environments_retire_task.delay(version_id, revision)


def environments_retire(*, version_id: int, revision: str | None = None) -> int:
    rows = ExecutionEnvironment.objects.filter(version_id=version_id)
    if revision is not None:
        rows = rows.filter(revision_id=revision)
    return reaper.environments_remove(rows=list(rows))


def function_delete(*, account: AwsAccount, function_name: str, qualifier: str | None = None) -> None:
    function = function_get(account=account, name=function_name)
    if qualifier == LATEST:
        raise _invalid("$LATEST version cannot be deleted without deleting the function.")
    if qualifier:
        version = function.versions.filter(version=qualifier).first()
        if version is None:
            raise _not_found(account, function.name, qualifier)
        if function.aliases.filter(function_version=qualifier).exists():
            raise _conflict(f"Unable to delete version because the following aliases reference it: "
                            f"{', '.join(function.aliases.filter(function_version=qualifier).values_list('name', flat=True))}")
        environments_retire(version_id=version.pk)
        keys = [version.code_key]
        version.delete()
    else:
        for version in function.versions.all():
            environments_retire(version_id=version.pk)
        keys = list(function.versions.values_list("code_key", flat=True))
        function.delete()
    code_garbage_collect(account=account, keys=keys)


def code_garbage_collect(*, account: AwsAccount, keys: list[str]) -> None:
    for key in set(keys):
        if not FunctionVersion.objects.filter(code_key=key).exists():
            code_store.code_remove(key)


def _not_found(account: AwsAccount, name: str, qualifier: str | None = None) -> AwsError:
    arn = function_arn(account=account, name=name, qualifier=qualifier)
    return AwsError("ResourceNotFoundException", f"Function not found: {arn}", status=404)


# --- versions and aliases -------------------------------------------------------------------------------------------

_CONFIG_FIELDS = ("runtime", "handler", "role", "description", "memory_size", "timeout", "environment",
                  "ephemeral_storage", "isolation", "code_sha256", "code_size", "unzipped_size", "code_key")


def version_publish(*, account: AwsAccount, function_name: str, description: str | None = None,
                    code_sha256: str | None = None, revision_id: str | None = None) -> FunctionVersion:
    function = function_get(account=account, name=function_name)
    with transaction.atomic():
        function = Function.objects.select_for_update().get(pk=function.pk)
        latest = function.versions.get(version=LATEST)
        _check_revision(latest, revision_id)
        if code_sha256 and code_sha256 != latest.code_sha256:
            raise AwsError("InvalidParameterValueException", "CodeSHA256 (" + code_sha256 + ") is different from "
                           "current CodeSHA256 in $LATEST (" + latest.code_sha256 + "). Please try again with the "
                           "CodeSHA256 in $LATEST.")
        newest = function.versions.exclude(version=LATEST).order_by("-pk").first()
        if newest is not None and all(getattr(newest, f) == getattr(latest, f) for f in _CONFIG_FIELDS):
            return newest  # nothing changed since: AWS answers with the version it already has
        number = str(function.next_version)
        function.next_version += 1
        function.save(update_fields=["next_version"])
        values = {f: getattr(latest, f) for f in _CONFIG_FIELDS}
        if description is not None:
            values["description"] = description
        version = FunctionVersion.objects.create(function=function, version=number, state=latest.state,
                                                 last_update_status=FunctionVersion.UpdateStatus.SUCCESSFUL, **values)
    return version


def _check_alias_versions(function: Function, version: str, weights: dict[str, float]) -> None:
    known = set(function.versions.values_list("version", flat=True))
    for name in [version, *weights]:
        if name not in known:
            raise AwsError("ResourceNotFoundException", f"Function not found: "
                           f"{function_arn(account=function.account, name=function.name, qualifier=name)}",
                           status=404)
    if len(weights) > 1:
        raise _invalid("An alias can route to at most one additional version.")
    for name, weight in weights.items():
        if name == version:
            raise _invalid("The additional version must differ from the alias's primary version.")
        if name == LATEST or version == LATEST:
            raise _invalid("$LATEST is not supported for an alias pointing to more than 1 version")
        if not 0.0 <= float(weight) <= 1.0:
            raise _invalid(f"Routing weight {weight} must be between 0.0 and 1.0.")


def alias_create(*, account: AwsAccount, function_name: str, name: str, function_version: str,
                 description: str = "", weights: dict[str, float] | None = None) -> Alias:
    function = function_get(account=account, name=function_name)
    weights = weights or {}
    _check_alias_versions(function, function_version, weights)
    try:
        with transaction.atomic():
            return Alias.objects.create(function=function, name=name, function_version=function_version,
                                        description=description, routing_weights=weights)
    except IntegrityError:
        raise _conflict(f"Alias already exists: {function_arn(account=account, name=function.name, qualifier=name)}")


def alias_update(*, account: AwsAccount, function_name: str, name: str, function_version: str | None = None,
                 description: str | None = None, weights: dict[str, float] | None = None,
                 revision_id: str | None = None) -> Alias:
    alias = alias_get(account=account, function_name=function_name, name=name)
    if revision_id and revision_id != alias.revision_id:
        raise AwsError("PreconditionFailedException", "The Revision Id provided does not match the latest Revision "
                                                      "Id. Call the GetFunction/GetAlias API to retrieve the latest "
                                                      "Revision Id", status=412)
    if function_version is not None:
        alias.function_version = function_version
    if weights is not None:
        alias.routing_weights = weights
    if description is not None:
        alias.description = description
    _check_alias_versions(alias.function, alias.function_version, alias.routing_weights)
    alias.revision_id = str(uuid.uuid4())
    alias.save()
    return alias


def alias_get(*, account: AwsAccount, function_name: str, name: str) -> Alias:
    function = function_get(account=account, name=function_name)
    alias = function.aliases.filter(name=name).first()
    if alias is None:
        raise AwsError("ResourceNotFoundException", f"Cannot find alias arn: "
                       f"{function_arn(account=account, name=function.name, qualifier=name)}", status=404)
    return alias


def alias_delete(*, account: AwsAccount, function_name: str, name: str) -> None:
    function = function_get(account=account, name=function_name)
    function.aliases.filter(name=name).delete()
    function.provisioned.filter(qualifier=name).delete()


# --- concurrency ----------------------------------------------------------------------------------------------------

def concurrency_put(*, account: AwsAccount, function_name: str, reserved: int) -> Function:
    function = function_get(account=account, name=function_name)
    limit = _config()["CONCURRENCY_PER_LEARNER"]
    others = (Function.objects.filter(account=account).exclude(pk=function.pk)
              .aggregate(total=Sum("reserved_concurrency"))["total"] or 0)
    if reserved + others > limit:
        raise _invalid(f"Specified ReservedConcurrentExecutions for function decreases account's "
                       f"UnreservedConcurrentExecution below its minimum value of [0]. (Sandcloud: your account may "
                       f"run {limit} executions at once, and your other functions reserve {others}.)")
    function.reserved_concurrency = reserved
    function.save(update_fields=["reserved_concurrency"])
    return function


def concurrency_delete(*, account: AwsAccount, function_name: str) -> None:
    function = function_get(account=account, name=function_name)
    function.reserved_concurrency = None
    function.save(update_fields=["reserved_concurrency"])


def provisioned_put(*, account: AwsAccount, function_name: str, qualifier: str, count: int) -> ProvisionedConcurrency:
    function = function_get(account=account, name=function_name)
    if qualifier == LATEST:
        raise _invalid("Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
    version = _resolve_qualifier(function, qualifier, route=False)
    limit = function.reserved_concurrency if function.reserved_concurrency is not None \
        else _config()["CONCURRENCY_PER_LEARNER"]
    limit = min(limit, _config()["ENVIRONMENTS_PER_LEARNER"])
    if count > limit:
        raise _invalid(f"ProvisionedConcurrentExecutions {count} is more than the function's concurrency limit "
                       f"({limit}).")
    config, _ = ProvisionedConcurrency.objects.update_or_create(
        function=function, qualifier=qualifier, defaults={"requested": count, "modified": timezone.now()})
    transaction.on_commit(lambda: _provisioned_fill_later(version.pk))
    return config


def _provisioned_fill_later(version_id: int) -> None:
    from .tasks import provisioned_fill_task

    provisioned_fill_task.delay(version_id)


def provisioned_fill(*, version_id: int) -> int:
    """Starts provisioned environments until the version has as many as its configs ask for; returns how many."""
    version = FunctionVersion.objects.select_related("function__account").get(pk=version_id)
    function = version.function
    qualifiers = [version.version, *function.aliases.filter(function_version=version.version)
                  .values_list("name", flat=True)]
    wanted = sum(function.provisioned.filter(qualifier__in=qualifiers).values_list("requested", flat=True))
    have = ExecutionEnvironment.objects.filter(version=version, revision_id=version.revision_id,
                                               provisioned=True).count()
    started = 0
    for _ in range(max(0, wanted - have)):
        environment = envs.environment_start(version=version, owner_id=function.account.user_id,
                                             environment_vars=_environment_for(version),
                                             code_dir=str(code_store.code_dir(version.code_key)), provisioned=True)
        if environment.init is None or environment.init.state != "ready":
            envs.environment_destroy(environment)
            break
        _stream_ensure(function, environment)
        envs.environment_release(environment)
        started += 1
    surplus = have - wanted
    if surplus > 0:
        reaper.environments_remove(rows=list(ExecutionEnvironment.objects.filter(
            version=version, provisioned=True)[:surplus]))
    return started


def provisioned_refill() -> int:
    """Starts what provisioned configs are short of (environments lost, renewed, or retired with a revision)."""
    started = 0
    for config in ProvisionedConcurrency.objects.select_related("function__account"):
        try:
            version = _resolve_qualifier(config.function, config.qualifier, route=False)
        except AwsError:
            continue  # its version or alias is gone
        ready = ExecutionEnvironment.objects.filter(version=version, revision_id=version.revision_id,
                                                    provisioned=True).count()
        if ready < config.requested:
            try:
                started += provisioned_fill(version_id=version.pk)
            except envs.EnvironmentUnavailable as error:
                log.info("provisioned concurrency of function %s waits: %s", config.function_id, error.message)
    return started


def provisioned_status(*, config: ProvisionedConcurrency) -> dict:
    function = config.function
    version = _resolve_qualifier(function, config.qualifier, route=False)
    available = ExecutionEnvironment.objects.filter(version=version, revision_id=version.revision_id,
                                                    provisioned=True).exclude(container_id="").count()
    return {"RequestedProvisionedConcurrentExecutions": config.requested,
            "AvailableProvisionedConcurrentExecutions": min(available, config.requested),
            "AllocatedProvisionedConcurrentExecutions": min(available, config.requested),
            "Status": "READY" if available >= config.requested else "IN_PROGRESS",
            "LastModified": config.modified.strftime("%Y-%m-%dT%H:%M:%S.000+0000")}


# --- throttling -----------------------------------------------------------------------------------------------------

def _slot_key(function: Function) -> str:
    prefix = f"sc:{settings.SANDCLOUD['INSTANCE']}:fn:inflight"
    if function.reserved_concurrency is not None:
        return f"{prefix}:function:{function.pk}"
    return f"{prefix}:account:{function.account_id}"


_reserved_cache: dict[int, tuple[str, int]] = {}


def _slot_limit(function: Function, epoch: str | None = None) -> int:
    """The function's own reservation, else what the account's other reservations leave (cached under the account's
    functions epoch)."""
    if function.reserved_concurrency is not None:
        return function.reserved_concurrency
    from sandbox.awsapi.epochs import epoch_read

    epoch = epoch or epoch_read(f"functions:{function.account_id}")
    cached = _reserved_cache.get(function.account_id)
    if epoch is None or cached is None or cached[0] != epoch:
        reserved = (Function.objects.filter(account_id=function.account_id)
                    .aggregate(total=Sum("reserved_concurrency"))["total"] or 0)
        cached = (epoch, reserved)
        if epoch is not None:
            _reserved_cache[function.account_id] = cached
    return _config()["CONCURRENCY_PER_LEARNER"] - cached[1]


# --- invoke ---------------------------------------------------------------------------------------------------------

@dataclass
class InvokeOutcome:
    status_code: int
    payload: bytes = b""
    function_error: str = ""
    log_result: str = ""
    executed_version: str = ""
    request_id: str = ""
    invocation: Invocation | None = None
    log_lines: list[str] = field(default_factory=list)


def _resolve_qualifier(function: Function, qualifier: str | None, *, route: bool = True) -> FunctionVersion:
    qualifier = qualifier or LATEST
    if qualifier == LATEST or qualifier.isdigit():
        version = function.versions.filter(version=qualifier).first()
    else:
        alias = function.aliases.filter(name=qualifier).first()
        if alias is None:
            version = None
        else:
            chosen = alias.function_version
            if route:
                for other, weight in alias.routing_weights.items():
                    if random.random() < float(weight):
                        chosen = other
            version = function.versions.filter(version=chosen).first()
    if version is None:
        raise _not_found(function.account, function.name, qualifier)
    version.function = function
    return version


def _environment_for(version: FunctionVersion) -> dict[str, str]:
    function = version.function
    region = settings.SANDCLOUD_AWS_REGION
    values = {
        # The learner's variables reach only the runtime (the init never loads a learner's LD_PRELOAD or PYTHONPATH).
        "_SANDCLOUD_FUNCTION_ENVIRONMENT": json.dumps(version.environment),
        "AWS_LAMBDA_FUNCTION_NAME": function.name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(version.memory_size),
        "AWS_LAMBDA_FUNCTION_VERSION": version.version, "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11", "_HANDLER": version.handler,
        "AWS_LAMBDA_LOG_GROUP_NAME": log_group_name(function.name),
        "LAMBDA_TASK_ROOT": "/var/task", "LAMBDA_RUNTIME_DIR": "/var/runtime", "TZ": ":UTC", "LANG": "en_US.UTF-8",
        "_SANDCLOUD_INIT_TIMEOUT": str(_config()["INIT_TIMEOUT_SECONDS"]),
    }
    endpoint = getattr(settings, "SANDCLOUD_AWS_SANDBOX_ENDPOINT_URL", "")
    if endpoint:
        values["AWS_ENDPOINT_URL"] = endpoint
    return values


_streams: dict[int, object] = {}


def _stream_ensure(function: Function, environment: envs.Environment):
    """The environment's CloudWatch log stream (one per environment, as on AWS), made once per process; None when the
    learner's account is at its log group or stream limit (the lines are then dropped, as Lambda drops them)."""
    stream = _streams.get(environment.id)
    if stream is None:
        from sandbox.logs.services import log_stream_ensure

        try:
            stream = log_stream_ensure(account=function.account, group_name=log_group_name(function.name),
                                       stream_name=environment.log_stream)
        except AwsError as error:
            log.info("function %s's log lines are dropped: %s", function.pk, error.message)
            return None
        if len(_streams) > 10_000:
            _streams.clear()
        _streams[environment.id] = stream
    return stream


def stream_forget(stream) -> None:
    for env_id, cached in list(_streams.items()):
        if cached is stream:
            _streams.pop(env_id, None)


_versions_cache: dict[tuple[int, str, str], tuple[str, FunctionVersion]] = {}


def functions_changed(account: AwsAccount | int) -> None:
    """Every process forgets what it cached of this account's functions (after the current transaction commits)."""
    from sandbox.awsapi.epochs import epoch_bump

    epoch_bump(f"functions:{getattr(account, 'pk', account)}")


def _version_for_invoke(account: AwsAccount, function_name: str, qualifier: str | None) -> FunctionVersion:
    """The version to run. A version number or $LATEST is cached per process under the account's functions epoch,
    which every change to the account's functions bumps; an alias is read each time (its weights pick anew)."""
    from sandbox.awsapi.epochs import epoch_read

    from .selectors import function_name_from

    qualifier = qualifier or _qualifier_in_name(function_name) or LATEST
    bare = function_name_from(account=account, name=function_name)
    if qualifier == LATEST or qualifier.isdigit():
        epoch = epoch_read(f"functions:{account.pk}")
        key = (account.pk, bare, qualifier)
        cached = _versions_cache.get(key)
        if epoch is not None and cached is not None and cached[0] == epoch:
            cached[1].epoch = epoch
            return cached[1]
        version = (FunctionVersion.objects.select_related("function").filter(
            function__account=account, function__name=bare, version=qualifier).first())
        if version is not None:
            version.function.account = account
            version.epoch = epoch
            if epoch is not None and version.state == FunctionVersion.State.ACTIVE:
                if len(_versions_cache) > 10_000:
                    _versions_cache.clear()
                _versions_cache[key] = (epoch, version)
            return version
    function = function_get(account=account, name=function_name)
    return _resolve_qualifier(function, qualifier)


def function_invoke(*, account: AwsAccount, function_name: str, qualifier: str | None = None, payload: bytes = b"",
                    invocation_type: str = "RequestResponse", log_type: str = "None", client_context: str = "",
                    request_id: str | None = None) -> InvokeOutcome:
    version = _version_for_invoke(account, function_name, qualifier)
    function = version.function
    qualifier = qualifier or _qualifier_in_name(function_name)
    request_id = request_id or str(uuid.uuid4())
    if version.state != FunctionVersion.State.ACTIVE:
        raise _conflict(f"The operation cannot be performed at this time. The function is currently in the "
                        f"following state: {version.state}")
    if invocation_type == "DryRun":
        return InvokeOutcome(status_code=204, executed_version=version.version, request_id=request_id)
    if invocation_type == "Event":
        if len(payload) > MAX_ASYNC_PAYLOAD:
            raise AwsError("RequestTooLargeException", f"Request must be smaller than {MAX_ASYNC_PAYLOAD} bytes for "
                                                       f"the InvokeAsync operation", status=413)
        _json_payload(payload)
        queued = AsyncEvent.objects.filter(function__account=account, state=AsyncEvent.State.QUEUED).count()
        if queued >= _config()["ASYNC_QUEUED_PER_LEARNER"]:
            raise AwsError("TooManyRequestsException", f"Rate Exceeded. (Sandcloud: {queued} of your asynchronous "
                                                       f"invocations are still waiting to run.)", status=429,
                           headers={"Retry-After": "5"})
        event = AsyncEvent.objects.create(function=function, qualifier=qualifier or LATEST, request_id=request_id,
                                          payload=payload)
        from .tasks import async_invoke_task

        async_invoke_task.delay_on_commit(event.pk)
        return InvokeOutcome(status_code=202, executed_version=version.version, request_id=request_id)
    if len(payload) > MAX_SYNC_PAYLOAD:
        raise AwsError("RequestTooLargeException", f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the "
                                                   f"InvokeFunction operation", status=413)
    _json_payload(payload)
    # An invocation without a payload gets an empty JSON object, as AWS sends one (a runtime cannot parse nothing).
    return _invoke_now(function=function, version=version, payload=payload or b"{}", request_id=request_id,
                       log_type=log_type, client_context=client_context, invocation_type=invocation_type)


def function_invoke_scheduled(*, account: AwsAccount, arn: str, payload: bytes) -> None:
    """What an EventBridge schedule does to its Lambda target: an asynchronous (Event) invocation."""
    function_invoke(account=account, function_name=arn, payload=payload or b"{}", invocation_type="Event")


def _qualifier_in_name(name: str) -> str | None:
    """`hello:2`, `123456789012:function:hello:prod` or a full ARN with a qualifier name one."""
    parts = name.split(":")
    if name.startswith("arn:"):
        return parts[7] if len(parts) == 8 else None
    if len(parts) == 2:
        return parts[1]
    if len(parts) == 4:
        return parts[3]
    return None


def _json_payload(payload: bytes) -> None:
    if not payload:
        return
    try:
        json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise AwsError("InvalidRequestContentException", "Could not parse request body into json: Could not parse "
                                                         "payload into json: Unexpected character: was expecting a "
                                                         "JSON value") from None


def _invoke_now(*, function: Function, version: FunctionVersion, payload: bytes, request_id: str, log_type: str,
                client_context: str, invocation_type: str) -> InvokeOutcome:
    started_ms = time.time_ns() // 1_000_000
    deadline = started_ms / 1000 + version.timeout
    slot, environment = envs.environment_acquire(
        version=version, slot_key=_slot_key(function), slot_limit=_slot_limit(function, getattr(version, "epoch", None)),
        request_id=request_id, deadline=deadline)
    if slot is None:
        _invocation_record(function, version, request_id=request_id, invocation_type=invocation_type,
                           status=Invocation.Status.THROTTLED)
        raise AwsError("TooManyRequestsException", "Rate Exceeded.", status=429,
                       headers={"Retry-After": "1"})
    try:
        if environment is None:
            try:
                environment = envs.environment_start(
                    version=version, owner_id=function.account.user_id, environment_vars=_environment_for(version),
                    code_dir=str(code_store.code_dir(version.code_key)))
            except envs.EnvironmentUnavailable as error:
                raise AwsError(error.code, error.message, status=error.status) from error
            started_ms = time.time_ns() // 1_000_000
            deadline = started_ms / 1000 + version.timeout
        return _run(function=function, version=version, environment=environment, payload=payload,
                    request_id=request_id, deadline=deadline, log_type=log_type, client_context=client_context,
                    invocation_type=invocation_type, slot=slot)
    except BaseException:
        # Whatever went wrong on our side (a task's time limit, a bug), the environment is never left claimed by
        # nobody: it would hold its memory and its learner's quota for good.
        if environment is not None and not environment.settled:
            envs.environment_destroy(environment)
        raise
    finally:
        envs.slot_give_back(slot)


def _run(*, function: Function, version: FunctionVersion, environment: envs.Environment, payload: bytes,
         request_id: str, deadline: float, log_type: str, client_context: str, invocation_type: str,
         slot: envs.Slot | None = None) -> InvokeOutcome:
    region = settings.SANDCLOUD_AWS_REGION
    lines: list[tuple[int, str]] = []
    init = environment.init
    init_ms = None
    start_ms = time.time_ns() // 1_000_000
    if init is not None:
        init_ms = init.init_ms
        lines.append((start_ms - int(init.init_ms), reports.init_start_line(region=region)))
        lines.extend(init.logs)
        if init.state != "ready":
            return _init_failed(function=function, version=version, environment=environment, init=init,
                                request_id=request_id, lines=lines, log_type=log_type,
                                invocation_type=invocation_type)
    lines.append((start_ms, reports.start_line(request_id=request_id, version=version.version)))
    if init is None:
        envs.environment_memory_peak_reset(environment)
    arn = function_arn(account=function.account, name=function.name,
                       qualifier=None if version.version == LATEST else version.version)
    try:
        result = envs.client_for(environment).invoke(request_id=request_id, deadline_ms=int(deadline * 1000),
                                                     function_arn=arn, payload=payload,
                                                     client_context=client_context)
    except envs.EnvironmentLost as error:
        log.warning("environment %s was lost during an invocation: %s", environment.id, error)
        from sandbox.engine.environments import InvokeResult

        # Past the deadline, an init that did not answer was starved by the function itself (a fork bomb, a flood):
        # that is the function's timeout. Before it, the environment died under the invocation.
        timed_out = time.time() >= deadline
        result = InvokeResult(status="timeout" if timed_out else "crash", payload=b"",
                              error_type="" if timed_out else "Runtime.ExitError", duration_ms=0.0, logs=[],
                              exit="the execution environment disappeared")
    end_ms = time.time_ns() // 1_000_000
    lines.extend(result.logs)
    memory_used = envs.environment_memory_peak_mb(environment)
    duration = result.duration_ms or float(end_ms - start_ms)
    status, report_status, error_type, function_error = Invocation.Status.SUCCESS, "", "", ""
    body = result.payload
    if result.status == "timeout":
        status, report_status = Invocation.Status.TIMEOUT, "timeout"
        duration = version.timeout * 1000.0
        lines.append((end_ms, reports.timeout_line(epoch_ms=end_ms, request_id=request_id, timeout_s=version.timeout)))
        body = json.dumps({"errorType": "Sandbox.Timedout", "errorMessage":
                           f"RequestId: {request_id} Error: Task timed out after {version.timeout:.2f} seconds"}).encode()
        function_error = "Unhandled"
    elif result.status == "crash":
        status, report_status = Invocation.Status.ERROR, "error"
        error_type = result.error_type or "Runtime.ExitError"
        message = f"RequestId: {request_id} Error: Runtime exited with error: {result.exit or 'signal: killed'}"
        lines.append((end_ms, message))
        lines.append((end_ms, "Runtime.ExitError"))
        body = json.dumps({"errorType": "Runtime.ExitError", "errorMessage": message}).encode()
        function_error = "Unhandled"
    elif result.status == "error":
        status, function_error = Invocation.Status.ERROR, "Unhandled"
        error_type = result.error_type
    lines.append((end_ms, reports.end_line(request_id=request_id)))
    billed = reports.billed_ms(duration_ms=duration, init_ms=init_ms)
    report = reports.Report(request_id=request_id, duration_ms=duration, billed_ms=billed,
                            memory_size=version.memory_size, max_memory_used=memory_used, init_ms=init_ms,
                            status=report_status, error_type=error_type if report_status else "")
    lines.append((end_ms, report.line()))
    if result.status in ("timeout", "crash"):
        envs.environment_destroy(environment)
    else:
        envs.environment_release(environment, slot=slot)
    invocation = _invocation_record(function, version, request_id=request_id, invocation_type=invocation_type,
                                    status=status, error_type=error_type, duration_ms=duration, billed_ms=billed,
                                    init_ms=init_ms, max_memory_used=memory_used, lines=lines,
                                    environment=environment)
    return InvokeOutcome(status_code=200, payload=body, function_error=function_error,
                         log_result=_tail(lines) if log_type == "Tail" else "", executed_version=version.version,
                         request_id=request_id, invocation=invocation, log_lines=[text for _, text in lines])


def _init_failed(*, function, version, environment, init, request_id, lines, log_type, invocation_type):
    """The init phase failed (an import error, a syntax error, a crash, or 10 s passed): the invocation answers the
    runtime's own error, as AWS does, and the environment is discarded."""
    now = time.time_ns() // 1_000_000
    if init.state == "timeout":
        error_type, status = "Sandbox.Timedout", "timeout"
        body = json.dumps({"errorType": error_type, "errorMessage": f"RequestId: {request_id} Error: Init phase "
                                                                   f"timed out after {init.init_ms / 1000:.2f} "
                                                                   f"seconds"}).encode()
    elif init.state == "error":
        error_type, status = init.error_type or "Runtime.Unknown", "error"
        body = init.error or json.dumps({"errorType": error_type, "errorMessage": ""}).encode()
    else:
        error_type, status = "Runtime.ExitError", "error"
        body = json.dumps({"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: {request_id} Error: "
                           f"Runtime exited with error: {init.exit or 'exit status 1'}"}).encode()
    lines.append((now, reports.init_report_line(init_ms=init.init_ms, status=status, error_type=error_type)))
    lines.append((now, reports.start_line(request_id=request_id, version=version.version)))
    lines.append((now, reports.end_line(request_id=request_id)))
    memory_used = envs.environment_memory_peak_mb(environment)
    billed = reports.billed_ms(duration_ms=0, init_ms=init.init_ms)
    report = reports.Report(request_id=request_id, duration_ms=init.init_ms, billed_ms=billed,
                            memory_size=version.memory_size, max_memory_used=memory_used, status="error",
                            error_type=error_type)
    lines.append((now, report.line()))
    envs.environment_destroy(environment)
    invocation = _invocation_record(function, version, request_id=request_id, invocation_type=invocation_type,
                                    status=Invocation.Status.ERROR, error_type=error_type, duration_ms=init.init_ms,
                                    billed_ms=billed, init_ms=init.init_ms, max_memory_used=memory_used, lines=lines,
                                    environment=environment)
    return InvokeOutcome(status_code=200, payload=body, function_error="Unhandled",
                         log_result=_tail(lines) if log_type == "Tail" else "", executed_version=version.version,
                         request_id=request_id, invocation=invocation, log_lines=[text for _, text in lines])


def _tail(lines: list[tuple[int, str]]) -> str:
    text = "".join(line + "\n" for _, line in lines).encode()
    return base64.b64encode(text[-LOG_TAIL_BYTES:]).decode()


def _invocation_record(function: Function, version: FunctionVersion, *, request_id: str, invocation_type: str,
                       status: str, error_type: str = "", duration_ms: float = 0, billed_ms: int = 0,
                       init_ms: float | None = None, max_memory_used: int = 0,
                       lines: list[tuple[int, str]] | None = None, environment=None) -> Invocation:
    invocation = Invocation(function=function, version=version.version, request_id=request_id,
                            invocation_type=invocation_type, status=status, error_type=error_type,
                            duration_ms=round(duration_ms, 2), billed_ms=billed_ms, init_ms=init_ms,
                            memory_size=version.memory_size, max_memory_used=max_memory_used)
    stream = _stream_ensure(function, environment) if lines and environment is not None else None
    records.record_add(invocation=invocation, stream=stream, lines=lines or [])
    return invocation


# --- async invocations --------------------------------------------------------------------------------------------

def async_event_run(*, event_id: int) -> str:
    """Runs one queued `Event` invocation; returns "succeeded", "retry" (after a function error, while retries remain)
    or "failed". Idempotent: an event already settled is left as it is."""
    event = AsyncEvent.objects.select_related("function__account").filter(pk=event_id).first()
    if event is None or event.state != AsyncEvent.State.QUEUED:
        return "done"
    function = event.function
    try:
        version = _resolve_qualifier(function, event.qualifier)
        outcome = _invoke_now(function=function, version=version, payload=bytes(event.payload) or b"{}",
                              request_id=f"{event.request_id}" if event.attempts == 0 else str(uuid.uuid4()),
                              log_type="None", client_context="", invocation_type="Event")
        error = outcome.payload.decode("utf-8", "replace") if outcome.function_error else ""
    except AwsError as failure:
        error = f"{failure.code}: {failure.message}"
    attempts = event.attempts + 1
    if not error:
        AsyncEvent.objects.filter(pk=event.pk, state=AsyncEvent.State.QUEUED).update(
            state=AsyncEvent.State.SUCCEEDED, attempts=attempts, updated=timezone.now(), error="")
        return "succeeded"
    retries = len(_config()["ASYNC_RETRY_DELAYS"])
    final = attempts > retries
    AsyncEvent.objects.filter(pk=event.pk, state=AsyncEvent.State.QUEUED).update(
        state=AsyncEvent.State.FAILED if final else AsyncEvent.State.QUEUED, attempts=attempts,
        updated=timezone.now(), error=error[:4000])
    return "failed" if final else "retry"


def invocations_trim() -> int:
    """Keeps each function's newest invocations (the console's history and metrics) and its newest settled async
    events (the failed ones are what the console shows); older ones go. Events lost with their worker (queued for
    longer than any invocation may last) are settled as failed."""
    keep = _config()["INVOCATIONS_KEPT"]
    removed = 0
    for function_id in Function.objects.values_list("pk", flat=True):
        cutoff = (Invocation.objects.filter(function_id=function_id).order_by("-started")
                  .values_list("started", flat=True)[keep:keep + 1])
        if cutoff:
            removed += Invocation.objects.filter(function_id=function_id, started__lte=cutoff[0]).delete()[0]
        settled = AsyncEvent.objects.filter(function_id=function_id).exclude(state=AsyncEvent.State.QUEUED)
        old = settled.order_by("-updated").values_list("updated", flat=True)[100:101]
        if old:
            removed += settled.filter(updated__lte=old[0]).delete()[0]
    lost_before = timezone.now() - timedelta(seconds=MAX_TIMEOUT_S + sum(_config()["ASYNC_RETRY_DELAYS"]) + 3600)
    AsyncEvent.objects.filter(state=AsyncEvent.State.QUEUED, updated__lt=lost_before).update(
        state=AsyncEvent.State.FAILED, error="Sandcloud lost this event (a worker stopped while it ran).",
        updated=timezone.now())
    return removed
