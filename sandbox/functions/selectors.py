"""Reads of a learner's functions: by name or ARN (never another account's), their configuration as AWS shows it."""
from __future__ import annotations

import statistics

from django.conf import settings
from django.db.models import Count, Q, Sum

from sandbox.awsapi.errors import AwsError
from sandbox.awsapi.identity import arn_check
from sandbox.awsapi.models import AwsAccount

from . import reports
from .models import LATEST, Alias, Function, FunctionVersion, Invocation


def log_group_name(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def function_arn(*, account: AwsAccount, name: str, qualifier: str | None = None, region: str | None = None) -> str:
    region = region or settings.SANDCLOUD_AWS_REGION
    arn = f"arn:aws:lambda:{region}:{account.account_id}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def function_name_from(*, account: AwsAccount, name: str) -> str:
    """The bare name from `hello`, `hello:2`, `123456789012:function:hello` or a full ARN; another account's ARN is
    refused as AWS refuses it."""
    if name.startswith("arn:"):
        arn_check(account=account, arn=name, action="lambda:InvokeFunction")
        parts = name.split(":")
        return parts[6] if len(parts) >= 7 else name
    parts = name.split(":")
    if len(parts) >= 3 and parts[1] == "function":
        if parts[0] != account.account_id:
            arn_check(account=account, arn=f"arn:aws:lambda:{settings.SANDCLOUD_AWS_REGION}:{name}",
                      action="lambda:InvokeFunction")
        return parts[2]
    return parts[0]


def function_get(*, account: AwsAccount, name: str) -> Function:
    bare = function_name_from(account=account, name=name)
    function = Function.objects.filter(account=account, name=bare).select_related("account").first()
    if function is None:
        raise AwsError("ResourceNotFoundException", f"Function not found: {function_arn(account=account, name=bare)}",
                       status=404)
    return function


def functions_for(*, account: AwsAccount):
    return Function.objects.filter(account=account).order_by("name")


def _timestamp(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def version_configuration(version: FunctionVersion, *, region: str | None = None) -> dict:
    """FunctionConfiguration as GetFunctionConfiguration answers it."""
    function = version.function
    qualifier = None if version.version == LATEST else version.version
    config = {
        "FunctionName": function.name,
        "FunctionArn": function_arn(account=function.account, name=function.name, qualifier=qualifier, region=region),
        "Runtime": version.runtime, "Role": version.role, "Handler": version.handler,
        "CodeSize": version.code_size, "Description": version.description, "Timeout": version.timeout,
        "MemorySize": version.memory_size, "LastModified": _timestamp(version.last_modified),
        "CodeSha256": version.code_sha256, "Version": version.version,
        "TracingConfig": {"Mode": "PassThrough"}, "RevisionId": version.revision_id, "State": version.state,
        "LastUpdateStatus": version.last_update_status, "PackageType": "Zip", "Architectures": ["x86_64"],
        "EphemeralStorage": {"Size": version.ephemeral_storage},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": log_group_name(function.name)},
        "RuntimeVersionConfig": {"RuntimeVersionArn": f"arn:aws:lambda:{region or settings.SANDCLOUD_AWS_REGION}::"
                                                      f"runtime:sandcloud-python311"},
    }
    if version.environment:
        config["Environment"] = {"Variables": dict(version.environment)}
    if version.state_reason:
        config["StateReason"] = version.state_reason
        config["StateReasonCode"] = version.state_reason_code
    return config


def alias_configuration(alias: Alias, *, region: str | None = None) -> dict:
    function = alias.function
    out = {"AliasArn": function_arn(account=function.account, name=function.name, qualifier=alias.name, region=region),
           "Name": alias.name, "FunctionVersion": alias.function_version, "Description": alias.description,
           "RevisionId": alias.revision_id}
    if alias.routing_weights:
        out["RoutingConfig"] = {"AdditionalVersionWeights": {k: float(v) for k, v in alias.routing_weights.items()}}
    return out


def function_metrics(*, function: Function, limit: int = 1000) -> dict:
    """Counts and durations of the function's recent invocations, and what they would cost on AWS."""
    from .records import records_flush

    records_flush()  # this process's last invocations first
    rows = list(function.invocations.order_by("-started").values(
        "status", "duration_ms", "billed_ms", "init_ms", "memory_size", "started")[:limit])
    durations = sorted(r["duration_ms"] for r in rows if r["status"] != Invocation.Status.THROTTLED)

    def percentile(p: float) -> float | None:
        if not durations:
            return None
        return round(durations[min(len(durations) - 1, int(p * len(durations)))], 2)

    billed = [r for r in rows if r["status"] != Invocation.Status.THROTTLED]
    gb_s = sum(reports.gb_seconds(memory_mb=r["memory_size"], billed=r["billed_ms"]) for r in billed)
    return {
        "invocations": len(billed),
        "errors": sum(1 for r in rows if r["status"] in (Invocation.Status.ERROR, Invocation.Status.TIMEOUT)),
        "throttles": sum(1 for r in rows if r["status"] == Invocation.Status.THROTTLED),
        "cold_starts": sum(1 for r in billed if r["init_ms"] is not None),
        "duration_p50": percentile(0.5), "duration_p95": percentile(0.95),
        "duration_mean": round(statistics.fmean(durations), 2) if durations else None,
        "gb_seconds": gb_s, "cost_usd": reports.cost_usd(requests=len(billed), gb_seconds=gb_s),
        "free_tier_requests_pct": 100 * len(billed) / reports.FREE_REQUESTS,
        "free_tier_gb_seconds_pct": 100 * gb_s / reports.FREE_GB_SECONDS,
    }


def functions_overview(*, account: AwsAccount):
    return (Function.objects.filter(account=account)
            .annotate(invocation_count=Count("invocations"),
                      error_count=Count("invocations", filter=Q(invocations__status__in=["Error", "Timeout"])))
            .order_by("name"))


def code_bytes_for(*, account: AwsAccount) -> int:
    return (FunctionVersion.objects.filter(function__account=account).values("code_key").distinct()
            .aggregate(total=Sum("unzipped_size"))["total"] or 0)
