"""What the Lambda console pages need beyond the Lambda API: whose functions a viewer may open, the console's checks
and defaults, the editor's files, the figures the monitoring panel draws, and the schedules that invoke a function."""
from __future__ import annotations

import base64
import json
import re
import shlex
import zipfile
from dataclasses import dataclass

from django.apps import apps
from sandbox.awsapi.errors import AwsError
from sandbox.awsapi.identity import aws_account_for
from sandbox.awsapi.models import AwsAccount

from . import code as code_store
from . import records, reports, selectors, services
from .models import LATEST, AsyncEvent, Function, FunctionVersion

# AWS's own limits, as the console enforces them before asking the service.
MEMORY_MIN, MEMORY_MAX = 128, 10_240
TIMEOUT_MIN, TIMEOUT_MAX = 1, 900
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HANDLER_RE = re.compile(r"^[^\s]{1,128}$")
ENV_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
LOG_LINES_PER_POLL = 200
RECENT_INVOCATIONS = 50

HELLO_FILE = "lambda_function.py"
HELLO_HANDLER = "lambda_function.lambda_handler"
HELLO_CODE = '''import json


def lambda_handler(event, context):
    print("Received event:", json.dumps(event))
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    return {
        "statusCode": 200,
        "body": json.dumps({"message": f"Hello, {name}!"}),
    }
'''
SAMPLE_EVENT = '{\n  "name": "world"\n}\n'


@dataclass(frozen=True)
class Console:
    """Whose functions a page shows, and whether the viewer may change them."""

    account: AwsAccount | None  # None: a learner who never used AWS yet (nothing to show)
    owner_id: int
    read_only: bool


def console_for(*, viewer, learner_id: int | None) -> Console | None:
    """The viewer's own functions, or a learner's read-only for an instructor of that learner; None for anyone
    else, so the page answers 404 and does not even confirm the learner exists."""
    from cohorts.selectors import instructs

    if learner_id is None or learner_id == viewer.pk:
        return Console(account=aws_account_for(user=viewer), owner_id=viewer.pk, read_only=False)
    if not instructs(instructor=viewer, learner_id=learner_id):
        return None
    # Reading must not create the learner's AWS account: an instructor only looks.
    return Console(account=AwsAccount.objects.filter(user_id=learner_id).first(), owner_id=learner_id, read_only=True)


def _refuse(message: str) -> AwsError:
    return AwsError("InvalidParameterValueException", message)


def _whole_number(value, *, what: str, low: int, high: int, unit: str) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise _refuse(f"{what} must be a whole number of {unit} from {low:,} to {high:,}.") from None
    if not low <= number <= high:
        raise _refuse(f"{what} must be from {low:,} to {high:,} {unit}; {number:,} is outside that range.")
    return number


def memory_checked(value) -> int:
    return _whole_number(value, what="Memory", low=MEMORY_MIN, high=MEMORY_MAX, unit="MB")


def timeout_checked(value) -> int:
    return _whole_number(value, what="Timeout", low=TIMEOUT_MIN, high=TIMEOUT_MAX, unit="seconds")


def name_checked(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise _refuse("A function name is 1 to 64 letters, digits, hyphens (-) or underscores (_), e.g. hello-world.")
    return name


def environment_parse(text: str) -> dict[str, str]:
    """KEY=value lines (blank lines and # comments skipped) into Lambda's environment variables."""
    variables: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, equals, value = stripped.partition("=")
        key = key.strip()
        if not equals or not ENV_KEY_RE.match(key):
            raise _refuse(f"Environment variables, line {number}: write KEY=value, with a key that starts with a "
                          f"letter and holds only letters, digits and underscores.")
        if key in variables:
            raise _refuse(f"Environment variables, line {number}: {key} is set twice; keep one of the two lines.")
        variables[key] = value.strip()
    return variables


def environment_text(variables: dict[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in sorted(variables.items()))


def default_role(account: AwsAccount) -> str:
    return f"arn:aws:iam::{account.account_id}:role/lab"


def function_create_from_console(*, account: AwsAccount, name: str, memory_size, timeout) -> FunctionVersion:
    """A new function from the hello-world template, with the lab role of the learner's account."""
    return services.function_create(
        account=account, name=name_checked(name), runtime=services.SUPPORTED_RUNTIMES[0], role=default_role(account),
        handler=HELLO_HANDLER, code={"ZipFile": code_store.code_zip({HELLO_FILE: HELLO_CODE})}, description="",
        timeout=timeout_checked(timeout), memory_size=memory_checked(memory_size), environment={},
        ephemeral_storage=512, tags={})


def configuration_update(*, account: AwsAccount, function_name: str, memory_size, timeout, handler: str,
                         description: str, environment: str) -> FunctionVersion:
    handler = (handler or "").strip()
    if not HANDLER_RE.match(handler):
        raise _refuse("The handler is the file name without .py, a dot, and the function's name, e.g. "
                      "lambda_function.lambda_handler.")
    description = (description or "").strip()
    if len(description) > 256:
        raise _refuse("The description may be at most 256 characters long.")
    return services.function_update_configuration(
        account=account, function_name=function_name, memory_size=memory_checked(memory_size),
        timeout=timeout_checked(timeout), handler=handler, description=description,
        environment=environment_parse(environment))


@dataclass(frozen=True)
class Package:
    files: dict[str, str]  # the text files the editor shows, by name
    uneditable: list[str]  # what the editor cannot show (binary or large): saving would lose them


def package_of(version: FunctionVersion) -> Package:
    files = code_store.code_files(version.code_key)
    try:
        with zipfile.ZipFile(code_store.code_zip_path(version.code_key)) as archive:
            names = [entry.filename for entry in archive.infolist() if not entry.is_dir()]
    except (OSError, zipfile.BadZipFile):
        names = list(files)
    return Package(files=dict(sorted(files.items())), uneditable=sorted(set(names) - set(files)))


def code_save(*, account: AwsAccount, function_name: str, files: dict[str, str]) -> FunctionVersion:
    """Saves the editor's files as the function's new deployment package."""
    latest = selectors.function_get(account=account, name=function_name).versions.get(version=LATEST)
    package = package_of(latest)
    if package.uneditable:
        raise _refuse("This function's package holds files the console cannot edit "
                      f"({', '.join(package.uneditable[:3])}…): deploy it with aws lambda update-function-code.")
    unknown = sorted(set(files) - set(package.files))
    if unknown or not files:
        raise _refuse("The editor sent files this function does not have. Reload the page and edit again.")
    # Windows browsers send CRLF line ends from a textarea; Python does not mind, but the diff a learner sees would.
    edited = {name: text.replace("\r\n", "\n") for name, text in files.items()}
    return services.function_update_code(account=account, function_name=function_name,
                                         zip_file=code_store.code_zip({**package.files, **edited}))


@dataclass(frozen=True)
class InvokeResult:
    status_code: int
    function_error: str
    payload: str  # pretty-printed when it is JSON
    report: str
    log_tail: str
    request_id: str
    duration_ms: float | None
    init_ms: float | None

    def as_json(self) -> dict:
        return self.__dict__.copy()


def invoke_from_console(*, account: AwsAccount, function_name: str, event: str) -> InvokeResult:
    outcome = services.function_invoke(account=account, function_name=function_name,
                                       payload=(event or "").strip().encode(), log_type="Tail")
    # Invocation rows and log lines are written by a batching thread: the page reads both right after this answer.
    records.records_flush()
    text = outcome.payload.decode("utf-8", "replace")
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pass
    report = next((line for line in reversed(outcome.log_lines) if line.startswith("REPORT ")), "")
    invocation = outcome.invocation
    return InvokeResult(status_code=outcome.status_code, function_error=outcome.function_error, payload=text,
                        report=report.strip(), log_tail=base64.b64decode(outcome.log_result).decode("utf-8", "replace")
                        if outcome.log_result else "", request_id=outcome.request_id,
                        duration_ms=invocation.duration_ms if invocation else None,
                        init_ms=invocation.init_ms if invocation else None)


def log_events(*, account: AwsAccount | None, function_name: str, after_id: int | None) -> list[dict]:
    """The function's log lines stored after `after_id` (the newest ones when None), for the live log."""
    if account is None:
        return []
    from sandbox.logs.selectors import log_events_after

    events = log_events_after(account=account, group_name=selectors.log_group_name(function_name),
                              after_id=after_id, limit=LOG_LINES_PER_POLL)
    return [{"id": event.pk, "timestamp": event.timestamp, "message": event.message, "stream": event.stream.name}
            for event in events]


def monitoring(*, function: Function) -> dict:
    """The monitoring panel: counts, the recent invocations' durations, cost on AWS and the failed async events."""
    metrics = selectors.function_metrics(function=function)
    recent = list(function.invocations.order_by("-started").values(
        "started", "status", "duration_ms", "init_ms", "billed_ms", "max_memory_used", "memory_size")
        [:RECENT_INVOCATIONS])[::-1]
    requests_usd = metrics["invocations"] * reports.PRICE_PER_REQUEST
    chart = {
        "counts": {"Invocations": metrics["invocations"], "Errors": metrics["errors"],
                   "Throttles": metrics["throttles"], "Cold starts": metrics["cold_starts"]},
        "durations": [{"at": row["started"].strftime("%H:%M:%S"), "ms": row["duration_ms"], "init_ms": row["init_ms"],
                       "status": row["status"]} for row in recent if row["status"] != "Throttled"],
        "p50": metrics["duration_p50"], "p95": metrics["duration_p95"],
    }
    return {
        **metrics,
        "requests_usd": requests_usd,
        "compute_usd": metrics["gb_seconds"] * reports.PRICE_PER_GB_SECOND,
        "price_per_million_requests": reports.PRICE_PER_REQUEST * 1_000_000,
        "price_per_gb_second": reports.PRICE_PER_GB_SECOND,
        "free_requests": reports.FREE_REQUESTS, "free_gb_seconds": reports.FREE_GB_SECONDS,
        "chart": chart, "chart_json": json.dumps(chart),
        "failed_events": list(function.async_events.filter(state=AsyncEvent.State.FAILED)
                              .order_by("-updated")[:20]),
    }


def cli_create(*, account: AwsAccount | None, name: str = "my-function", memory_size=128, timeout=3) -> str:
    role = default_role(account) if account else "arn:aws:iam::<your account>:role/lab"
    return (f"zip function.zip {HELLO_FILE}\n"
            f"aws lambda create-function --function-name {shlex.quote(name)} --runtime python3.11 \\\n"
            f"  --handler {HELLO_HANDLER} --role {role} \\\n"
            f"  --memory-size {memory_size} --timeout {timeout} --zip-file fileb://function.zip")


def cli_for(*, function: Function, version: FunctionVersion) -> dict[str, str]:
    name = shlex.quote(function.name)
    variables = ",".join(f"{k}={v}" for k, v in sorted(version.environment.items()))
    configure = (f"aws lambda update-function-configuration --function-name {name} \\\n"
                 f"  --memory-size {version.memory_size} --timeout {version.timeout} --handler {version.handler}")
    if variables:
        configure += f" \\\n  --environment {shlex.quote('Variables={' + variables + '}')}"
    return {
        "code": f"zip -r function.zip .\naws lambda update-function-code --function-name {name} "
                f"--zip-file fileb://function.zip",
        "configuration": configure,
        "invoke": f"aws lambda invoke --function-name {name} --cli-binary-format raw-in-base64-out \\\n"
                  f"  --payload file://event.json --log-type Tail --query LogResult --output text out.json "
                  f"| base64 -d",
        "logs": f"aws logs tail {selectors.log_group_name(function.name)} --follow",
    }


# --- schedules (EventBridge Scheduler) aimed at the function ------------------------------------------------------
# The scheduler is an app of its own, which a server may leave out (apps.py): then the page has no Schedules card.

SCHEDULE_EXAMPLE_NAME = "my-schedule"
SCHEDULE_EXAMPLE_EXPRESSION = "rate(5 minutes)"


def schedules_available() -> bool:
    return apps.is_installed("sandbox.scheduler")


def schedules_of(*, account: AwsAccount | None, function: Function) -> list:
    """The schedules that invoke the function, whatever its qualifier, by name."""
    if account is None or not schedules_available():
        return []
    from sandbox.scheduler.selectors import schedules_for_target

    return list(schedules_for_target(account=account,
                                     target_arn_prefix=selectors.function_arn(account=account, name=function.name)))


def schedule_create_from_console(*, account: AwsAccount, function_name: str, name: str, expression: str,
                                 target_input: str):
    """A schedule that invokes the function's $LATEST with the console's role. Raises ScheduleError, whose `plain`
    the page shows."""
    from sandbox.scheduler.services import schedule_create

    # A space copied along with the expression is not worth AWS's refusal; inside it, it still is.
    return schedule_create(account=account, name=(name or "").strip(), expression=(expression or "").strip(),
                           target_arn=selectors.function_arn(account=account, name=function_name),
                           target_input=(target_input or "").strip())


def schedule_delete_from_console(*, account: AwsAccount, function_name: str, name: str) -> None:
    """Deletes the schedule if it invokes this function; another function's is not found from this page."""
    from sandbox.scheduler import selectors as schedule_selectors
    from sandbox.scheduler.errors import schedule_not_found
    from sandbox.scheduler.services import schedule_delete

    targeted = schedule_selectors.schedules_for_target(
        account=account, target_arn_prefix=selectors.function_arn(account=account, name=function_name))
    if not targeted.filter(name=name).exists():
        raise schedule_not_found(name)
    schedule_delete(account=account, name=name)


def cli_schedule_target(*, account: AwsAccount, function_name: str) -> dict[str, str]:
    """The ARNs a schedule made on the console names: the function, and the account's role for the scheduler."""
    from sandbox.scheduler.services import console_role_arn

    return {"Arn": selectors.function_arn(account=account, name=function_name),
            "RoleArn": console_role_arn(account=account)}


def cli_schedule_create(*, account: AwsAccount, function_name: str, name: str = "", expression: str = "",
                        target_input: str = "") -> str:
    """`aws scheduler create-schedule` for what the form holds. static/sandcloud/function.js writes the same text as
    the learner types: the two change together."""
    target = cli_schedule_target(account=account, function_name=function_name)
    if (target_input or "").strip():
        target["Input"] = target_input.strip()
    # Compact, as the page's JSON.stringify writes it.
    target_json = json.dumps(target, separators=(",", ":"), ensure_ascii=False)
    name = (name or "").strip() or SCHEDULE_EXAMPLE_NAME
    expression = (expression or "").strip() or SCHEDULE_EXAMPLE_EXPRESSION
    return (f"aws scheduler create-schedule --name {shlex.quote(name)} \\\n"
            f"  --schedule-expression {shlex.quote(expression)} \\\n"
            f"  --flexible-time-window Mode=OFF \\\n"
            f"  --target {shlex.quote(target_json)}")
