"""Checks of the Lambda labs: read the learner's real functions, invocations, logs and schedules in their AWS account.

The edge process that served the learner's `aws lambda invoke` writes its Invocation rows and log lines a few
milliseconds after it answered (sandbox/functions/records.py), and another process may be that edge: a check that
does not find what it looks for reads again for a moment before it tells the learner so.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Callable

from sandbox.awsapi.identity import arn_parse, aws_account_for
from sandbox.awsapi.models import AwsAccount
from sandbox.functions.models import LATEST, Alias, ExecutionEnvironment, Function, Invocation
from sandbox.functions.records import records_flush
from sandbox.functions.reports import PRICE_PER_GB_SECOND, PRICE_PER_REQUEST
from sandbox.functions.selectors import log_group_name
from sandbox.logs.models import LogEvent
from sandbox.scheduler.expressions import At, ExpressionError, expression_parse
from sandbox.scheduler.models import Schedule

from . import CheckContext, CheckResult

SETTLE_SECONDS = 2.0  # how long a check waits for rows another process is about to write
SETTLE_STEP = 0.25
RUNTIME = "python3.11"


@dataclass
class Verdict:
    """What one evaluation found: the problems to tell the learner and the share of the points already earned."""

    problems: list[str] = field(default_factory=list)
    fraction: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems


def _settled(evaluate: Callable[[], Verdict]) -> Verdict:
    """Evaluates, and while that fails, again for up to SETTLE_SECONDS: rows the edge just queued arrive meanwhile."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        records_flush()  # this process's own invocations (a schedule fired by this worker) first
        verdict = evaluate()
        if verdict.passed or time.monotonic() >= deadline:
            return verdict
        time.sleep(SETTLE_STEP)


def _result(verdict: Verdict, success: str) -> CheckResult:
    if verdict.passed:
        return CheckResult(passed=True, message=success, fraction=1.0)
    return CheckResult(passed=False, message="\n".join(verdict.problems), fraction=verdict.fraction)


def _account(ctx: CheckContext) -> AwsAccount:
    return aws_account_for(user=ctx.sandbox.owner)


def _function(account: AwsAccount, name: str) -> Function | None:
    return Function.objects.filter(account=account, name=name).first()


def _answer(ctx: CheckContext, path: str) -> str:
    """The first line of an answer file, stripped; empty when the file is missing or empty."""
    text = ctx.read_file(path) or ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else ""


def _number(text: str) -> float | None:
    """A number as a learner writes it: `42`, `42 ms`, `$0.0000031`, `3.1e-06`."""
    found = re.search(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text.replace(",", ""))
    if found is None:
        return None
    try:
        value = float(found.group(0))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _successes(function: Function, **filters):
    return function.invocations.filter(status=Invocation.Status.SUCCESS, **filters).order_by("started")


def cost_per_invocation(*, memory_mb: int, billed_ms: int) -> float:
    """What one invocation costs on AWS (x86, US East): its GB-seconds plus its share of the request price."""
    return memory_mb / 1024 * billed_ms / 1000 * PRICE_PER_GB_SECOND + PRICE_PER_REQUEST


def _function_missing(name: str, command: str) -> str:
    return (f"There is no function called {name} in your AWS account yet (`aws lambda list-functions` lists "
            f"them). Create it with `{command}`.")


def _configuration_problems(function: Function, *, handler: str) -> list[str]:
    latest = function.versions.filter(version=LATEST).first()
    if latest is None:
        return [f"Your function {function.name} has no $LATEST version: delete it and create it again."]
    problems = []
    if latest.runtime != RUNTIME:
        problems.append(f"{function.name} runs {latest.runtime}; this lab uses {RUNTIME} (--runtime {RUNTIME}).")
    if latest.handler != handler:
        problems.append(f"{function.name}'s handler is {latest.handler!r}, but your code is app.py with a function "
                        f"called handler: the handler is {handler!r} (file name without .py, a dot, the function's "
                        f"name). Fix it with `aws lambda update-function-configuration --function-name "
                        f"{function.name} --handler {handler}`.")
    return problems


# --- lambda-hello -------------------------------------------------------------------------------------------------

HELLO = "hello"
HANDLER = "app.handler"


def hello_created(ctx: CheckContext) -> CheckResult:
    """The function `hello` exists in the learner's account with the python3.11 runtime and the handler app.handler."""
    account = _account(ctx)

    def evaluate() -> Verdict:
        function = _function(account, HELLO)
        if function is None:
            return Verdict([_function_missing(HELLO, "aws lambda create-function --function-name hello ...")])
        return Verdict(_configuration_problems(function, handler=HANDLER))

    return _result(_settled(evaluate), f"Your function {HELLO} exists in account {account.account_id}, ready to "
                                       f"be invoked.")


def hello_report_read(ctx: CheckContext) -> CheckResult:
    """`hello` ran successfully, and the learner's answers are the Billed Duration and Max Memory Used of one of its
    real invocations (read from the REPORT line)."""
    account = _account(ctx)
    billed_text = _answer(ctx, "~/answers/billed-duration-ms")
    memory_text = _answer(ctx, "~/answers/max-memory-mb")
    billed, memory = _number(billed_text), _number(memory_text)

    def evaluate() -> Verdict:
        function = _function(account, HELLO)
        if function is None:
            return Verdict([_function_missing(HELLO, "aws lambda create-function ...")])
        runs = list(_successes(function))
        if not runs:
            failed = function.invocations.exclude(status=Invocation.Status.SUCCESS).order_by("-started").first()
            if failed is not None:
                return Verdict([f"Your last invocation of {HELLO} ended with {failed.status}"
                                f"{' (' + failed.error_type + ')' if failed.error_type else ''}, and none has "
                                f"succeeded yet. Read the log that --log-type Tail returns, fix app.py, zip it and "
                                f"run `aws lambda update-function-code --function-name hello --zip-file "
                                f"fileb://fn.zip`."])
            return Verdict([f"{HELLO} has not been invoked yet: run the `aws lambda invoke` command of this step."])
        problems, fraction = [], 0.0
        if billed is None:
            problems.append("~/answers/billed-duration-ms is missing or holds no number: write the Billed "
                            "Duration from the REPORT line, in milliseconds.")
        elif not any(run.billed_ms == round(billed) for run in runs):
            problems.append(f"~/answers/billed-duration-ms says {billed_text!r}, but none of your invocations of "
                            f"{HELLO} was billed that long. Copy the number after `Billed Duration:` in the REPORT "
                            f"line of one of them.")
        else:
            fraction += 0.5
        if memory is None:
            problems.append("~/answers/max-memory-mb is missing or holds no number: write the Max Memory Used from "
                            "the REPORT line, in MB.")
        elif not any(run.max_memory_used == round(memory) for run in runs):
            problems.append(f"~/answers/max-memory-mb says {memory_text!r}, but none of your invocations of {HELLO} "
                            f"used that much memory at most. Copy the number after `Max Memory Used:`.")
        else:
            fraction += 0.5
        if not problems and not any(run.billed_ms == round(billed) and run.max_memory_used == round(memory)
                                    for run in runs):
            problems.append("Your two answers come from different invocations: take both from the same REPORT line.")
            fraction = 0.5
        return Verdict(problems, fraction)

    return _result(_settled(evaluate), "Right: that REPORT line is what AWS bills you for. Billed Duration is the "
                                       "run time rounded up to the next millisecond, and you pay for the memory "
                                       "you configured, not the memory you used.")


# --- lambda-memory-and-cost ---------------------------------------------------------------------------------------

CRUNCH = "crunch"
SMALL_MB, VCPU_MB = 128, 1769
RUNS_PER_SIZE = 2
CPU_BOUND_MS = 250  # a handler this fast at 128 MB does too little work to show what memory does to its speed
COST_TOLERANCE = 0.05
CPU_WORDS = re.compile(r"\b(v?cpus?|processors?|cores?|compute power)\b", re.IGNORECASE)
WITH_MEMORY = re.compile(r"(proportion|scales?|grows?|increases?|rises?|more memory|with (the )?memory|"
                         r"memory (also )?(gives|buys|brings|sets|decides|determines)|allocat)", re.IGNORECASE)
ONE_VCPU = re.compile(r"(1[,. ]?769|\b(one|1|a|full|whole|single) v?cpu\b)", re.IGNORECASE)


def _crunch_runs(function: Function, memory_mb: int) -> list[Invocation]:
    return list(_successes(function, memory_size=memory_mb))


def _crunch_needs(function: Function | None, memory_mb: int, how: str) -> Verdict | None:
    if function is None:
        return Verdict([_function_missing(CRUNCH, "aws lambda create-function --function-name crunch ...")])
    runs = _crunch_runs(function, memory_mb)
    if len(runs) < RUNS_PER_SIZE:
        failures = function.invocations.filter(memory_size=memory_mb).exclude(status=Invocation.Status.SUCCESS)
        timeout = failures.filter(status=Invocation.Status.TIMEOUT).exists()
        detail = (" Some timed out: give the function more time with `aws lambda update-function-configuration "
                  "--function-name crunch --timeout 30`." if timeout else "")
        return Verdict([f"{CRUNCH} has run successfully {len(runs)} time(s) at {memory_mb} MB; invoke it at least "
                        f"{RUNS_PER_SIZE} times {how}.{detail}"])
    return None


def crunch_at_128(ctx: CheckContext) -> CheckResult:
    """`crunch` ran successfully at least twice with 128 MB, slowly enough to be CPU-bound."""
    account = _account(ctx)

    def evaluate() -> Verdict:
        function = _function(account, CRUNCH)
        missing = _crunch_needs(function, SMALL_MB, "with --memory-size 128")
        if missing is not None:
            return missing
        problems = _configuration_problems(function, handler=HANDLER)
        fastest = min(run.duration_ms for run in _crunch_runs(function, SMALL_MB))
        if fastest < CPU_BOUND_MS:
            problems.append(f"At 128 MB your fastest run of {CRUNCH} took only {fastest:.0f} ms: it does too little "
                            f"work for this lab. Use the handler from the instructions (200,000 rounds of SHA-256).")
        return Verdict(problems)

    return _result(_settled(evaluate), "Slow, isn't it? At 128 MB your function gets a small slice of one CPU.")


def crunch_at_1769(ctx: CheckContext) -> CheckResult:
    """`crunch` also ran successfully at least twice with 1,769 MB, faster than at 128 MB."""
    account = _account(ctx)

    def evaluate() -> Verdict:
        function = _function(account, CRUNCH)
        missing = (_crunch_needs(function, SMALL_MB, "with --memory-size 128 (the previous step)")
                   or _crunch_needs(function, VCPU_MB, "after `aws lambda update-function-configuration "
                                                       "--function-name crunch --memory-size 1769`"))
        if missing is not None:
            return missing
        small = min(run.duration_ms for run in _crunch_runs(function, SMALL_MB))
        large = min(run.duration_ms for run in _crunch_runs(function, VCPU_MB))
        if large >= small:
            return Verdict([f"At 1,769 MB your fastest run took {large:.0f} ms, no faster than at 128 MB "
                            f"({small:.0f} ms). Is the handler the same CPU-bound loop in both? Invoke it a few "
                            f"more times."])
        return Verdict()

    return _result(_settled(evaluate), "Much faster with the same code: more memory bought more CPU.")


def cost_explained(ctx: CheckContext) -> CheckResult:
    """The cost of one invocation at each size matches a real invocation of `crunch` (within 5%), and ~/answers/why.txt
    says that CPU grows with memory and that 1,769 MB is about one vCPU. A quarter of the points for each."""
    account = _account(ctx)
    answers = {size: _answer(ctx, f"~/answers/cost-{size}.txt") for size in (SMALL_MB, VCPU_MB)}
    why = " ".join((ctx.read_file("~/answers/why.txt") or "").split())

    def evaluate() -> Verdict:
        function = _function(account, CRUNCH)
        if function is None:
            return Verdict([_function_missing(CRUNCH, "aws lambda create-function --function-name crunch ...")])
        problems, fraction = [], 0.0
        for size, text in answers.items():
            value = _number(text)
            costs = [cost_per_invocation(memory_mb=size, billed_ms=run.billed_ms)
                     for run in _crunch_runs(function, size)]
            if value is None:
                problems.append(f"~/answers/cost-{size}.txt is missing or holds no number: write what one "
                                f"invocation at {size} MB costs, in US dollars.")
            elif not costs:
                problems.append(f"{CRUNCH} has not run successfully at {size} MB, so there is no cost to compare "
                                f"~/answers/cost-{size}.txt with.")
            elif not any(abs(value - cost) <= COST_TOLERANCE * cost for cost in costs):
                example = costs[-1]
                problems.append(f"~/answers/cost-{size}.txt says {text!r}, which is not the cost of any of your "
                                f"invocations at {size} MB. Take one REPORT line: GB-seconds = {size} / 1024 × "
                                f"Billed Duration / 1000; cost = GB-seconds × $0.0000166667 + $0.0000002 for the "
                                f"request. (Your last one comes to about ${example:.10f}.)")
            else:
                fraction += 0.25
        if not why:
            problems.append("~/answers/why.txt is missing or empty: explain in a sentence or two why the function "
                            "ran faster with more memory.")
        else:
            if CPU_WORDS.search(why) and WITH_MEMORY.search(why):
                fraction += 0.25
            else:
                problems.append("~/answers/why.txt does not say what memory has to do with CPU: how does Lambda "
                                "decide how much CPU a function gets?")
            if ONE_VCPU.search(why):
                fraction += 0.25
            else:
                problems.append("~/answers/why.txt does not say how much CPU a function has at 1,769 MB.")
        return Verdict(problems, fraction)

    return _result(_settled(evaluate), "Right: Lambda gives a function CPU in proportion to its memory, one vCPU at "
                                       "1,769 MB. For CPU-bound code, more memory often costs about the same per "
                                       "invocation, because it finishes proportionally sooner.")


# --- lambda-cold-and-warm -----------------------------------------------------------------------------------------

WARMUP = "warmup"
ALIAS = "live"
INIT_TOLERANCE_MS = 1.0
PROVISIONED_TYPE = "provisioned-concurrency"  # AWS_LAMBDA_INITIALIZATION_TYPE in a provisioned environment


def cold_then_warm(ctx: CheckContext) -> CheckResult:
    """`warmup` had a cold start followed by a warm invocation, and ~/answers/init-duration-ms is the Init Duration
    of one of its cold starts."""
    account = _account(ctx)
    text = _answer(ctx, "~/answers/init-duration-ms")
    value = _number(text)

    def evaluate() -> Verdict:
        function = _function(account, WARMUP)
        if function is None:
            return Verdict([_function_missing(WARMUP, "aws lambda create-function --function-name warmup ...")])
        runs = list(_successes(function))
        colds = [run for run in runs if run.init_ms is not None]
        if not colds:
            return Verdict([f"None of {WARMUP}'s successful invocations was a cold start yet: invoke it with "
                            f"--log-type Tail and look for Init Duration in the REPORT line."])
        if not any(run.init_ms is None and run.started > colds[0].started for run in runs):
            return Verdict([f"{WARMUP} has had a cold start but no warm invocation after it: invoke it again "
                            f"straight away and compare the two REPORT lines."])
        if value is None:
            return Verdict(["~/answers/init-duration-ms is missing or holds no number: write the Init Duration "
                            "of the cold start, in milliseconds."], 0.5)
        if not any(abs(value - run.init_ms) <= INIT_TOLERANCE_MS for run in colds):
            return Verdict([f"~/answers/init-duration-ms says {text!r}, which is not the Init Duration of any of "
                            f"{WARMUP}'s cold starts. Copy the number after `Init Duration:`."], 0.5)
        return Verdict()

    return _result(_settled(evaluate), "Right: only the first invocation paid for the init phase; the second reused "
                                       "the warm environment.")


def _provisioned_env_exists(function: Function, version_number: str) -> bool:
    version = function.versions.filter(version=version_number).first()
    return version is not None and ExecutionEnvironment.objects.filter(
        version=version, revision_id=version.revision_id, provisioned=True).exclude(container_id="").exists()


def provisioned_alias(ctx: CheckContext) -> CheckResult:
    """`warmup` has the alias `live` on a published version with provisioned concurrency that is ready, and an
    invocation through it ran in a provisioned environment without an Init Duration."""
    account = _account(ctx)

    def evaluate() -> Verdict:
        function = _function(account, WARMUP)
        if function is None:
            return Verdict([_function_missing(WARMUP, "aws lambda create-function --function-name warmup ...")])
        alias = Alias.objects.filter(function=function, name=ALIAS).first()
        if alias is None:
            if not function.versions.exclude(version=LATEST).exists():
                return Verdict([f"{WARMUP} has no published version yet: run `aws lambda publish-version "
                                f"--function-name warmup`."])
            return Verdict([f"{WARMUP} has no alias called {ALIAS}: run `aws lambda create-alias --function-name "
                            f"warmup --name live --function-version 1`."], 0.25)
        if alias.function_version == LATEST:
            return Verdict([f"The alias {ALIAS} points at $LATEST, which cannot have provisioned concurrency: point "
                            f"it at a published version (`aws lambda update-alias --function-name warmup --name live "
                            f"--function-version 1`)."], 0.25)
        config = function.provisioned.filter(qualifier__in=[ALIAS, alias.function_version]).first()
        if config is None or config.requested < 1:
            return Verdict([f"The alias {ALIAS} has no provisioned concurrency: run `aws lambda "
                            f"put-provisioned-concurrency-config --function-name warmup --qualifier live "
                            f"--provisioned-concurrent-executions 1`."], 0.25)
        if not _provisioned_env_exists(function, alias.function_version):
            return Verdict([f"The provisioned concurrency of {ALIAS} is not READY yet: ask `aws lambda "
                            f"get-provisioned-concurrency-config --function-name warmup --qualifier live` until its "
                            f"Status is READY, then invoke the alias."], 0.5)
        warm = _successes(function, version=alias.function_version, init_ms__isnull=True)
        if not warm.exists():
            return Verdict([f"Invoke the alias (`aws lambda invoke --function-name warmup --qualifier live ...`): "
                            f"no invocation of version {alias.function_version} has succeeded without a cold start "
                            f"yet."], 0.5)
        group = log_group_name(function.name)
        if not LogEvent.objects.filter(group__account=account, group__name=group,
                                       message__contains=PROVISIONED_TYPE).exists():
            return Verdict([f"None of your invocations of {ALIAS} has printed {PROVISIONED_TYPE} in "
                            f"{group}: the handler from the first step prints AWS_LAMBDA_INITIALIZATION_TYPE. "
                            f"Invoke the alias again once the configuration is READY."], 0.5)
        return Verdict()

    return _result(_settled(evaluate), "Right: the alias's environment was initialised before you called it, so even "
                                       "its first invocation had no Init Duration.")


def provisioned_removed(ctx: CheckContext) -> CheckResult:
    """`warmup` has no provisioned concurrency left (it is billed for as long as it is configured)."""
    account = _account(ctx)

    def evaluate() -> Verdict:
        function = _function(account, WARMUP)
        if function is None:
            return Verdict()  # deleting the whole function removed its provisioned concurrency too
        left = sorted(function.provisioned.values_list("qualifier", flat=True))
        if left:
            return Verdict([f"{WARMUP} still has provisioned concurrency on {', '.join(left)}: run `aws lambda "
                            f"delete-provisioned-concurrency-config --function-name warmup --qualifier "
                            f"{left[0]}`."])
        return Verdict()

    return _result(_settled(evaluate), "Done: nothing is kept warm for you any more, so nothing is billed while "
                                       "the function is idle.")


# --- lambda-schedule ----------------------------------------------------------------------------------------------

TICK = "tick"


def tick_created(ctx: CheckContext) -> CheckResult:
    """The function `tick` exists with the right runtime and handler and has run successfully once."""
    account = _account(ctx)

    def evaluate() -> Verdict:
        function = _function(account, TICK)
        if function is None:
            return Verdict([_function_missing(TICK, "aws lambda create-function --function-name tick ...")])
        problems = _configuration_problems(function, handler=HANDLER)
        if not problems and not _successes(function).exists():
            problems.append(f"{TICK} has not run successfully yet: invoke it once yourself before a schedule "
                            f"does, so you know it works.")
        return Verdict(problems)

    return _result(_settled(evaluate), f"{TICK} works when you call it. Next, let a schedule call it.")


def _target_function(account: AwsAccount, target_arn: str) -> Function | None:
    parsed = arn_parse(target_arn)
    if parsed is None or parsed.service != "lambda" or parsed.account_id != account.account_id:
        return None
    parts = parsed.resource.split(":")  # function:<name>[:<qualifier>]
    return _function(account, parts[1]) if len(parts) >= 2 and parts[0] == "function" else None


def _recurring(expression: str) -> bool:
    try:
        return not isinstance(expression_parse(expression), At)
    except ExpressionError:
        return False


def schedule_created(ctx: CheckContext) -> CheckResult:
    """An ENABLED schedule with a rate or cron expression targets the learner's function `tick`."""
    account = _account(ctx)

    def evaluate() -> Verdict:
        schedules = list(Schedule.objects.filter(account=account).order_by("name"))
        if not schedules:
            return Verdict(["You have no schedule yet (`aws scheduler list-schedules` lists them): create one with "
                            "`aws scheduler create-schedule --name tick ...`."])
        aimed = [s for s in schedules if (target := _target_function(account, s.target_arn)) is not None
                 and target.name == TICK]
        if not aimed:
            names = ", ".join(f"{s.name} → {s.target_arn}" for s in schedules)
            return Verdict([f"None of your schedules targets your function {TICK} ({names}). The target's Arn is "
                            f"tick's FunctionArn: `aws lambda get-function-configuration --function-name tick "
                            f"--query FunctionArn --output text`."])
        recurring = [s for s in aimed if _recurring(s.expression)]
        if not recurring:
            return Verdict([f"Your schedule {aimed[0].name} uses {aimed[0].expression}, which fires only once. Use "
                            f"a recurring expression such as rate(1 minute)."])
        if not any(s.state == Schedule.State.ENABLED for s in recurring):
            return Verdict([f"Your schedule {recurring[0].name} is DISABLED: run `aws scheduler update-schedule` "
                            f"with --state ENABLED (update-schedule needs every setting again)."])
        return Verdict()

    return _result(_settled(evaluate), "Your schedule is ENABLED and aimed at tick. EventBridge Scheduler starts a "
                                       "rate() schedule at once, then fires it every interval.")


def schedule_fired(ctx: CheckContext) -> CheckResult:
    """The schedule has fired, and ~/answers/scheduled-request-id is the request ID of an invocation of `tick` the
    schedule made (an asynchronous one, as Scheduler invokes Lambda)."""
    account = _account(ctx)
    request_id = _answer(ctx, "~/answers/scheduled-request-id")

    def evaluate() -> Verdict:
        function = _function(account, TICK)
        if function is None:
            return Verdict([_function_missing(TICK, "aws lambda create-function --function-name tick ...")])
        aimed = [s for s in Schedule.objects.filter(account=account)
                 if (target := _target_function(account, s.target_arn)) is not None and target.pk == function.pk]
        if not aimed:
            return Verdict([f"No schedule targets {TICK} any more: create it again as in the previous step."])
        fired = [s for s in aimed if s.last_fired_at is not None]
        if not fired:
            return Verdict([f"Your schedule has not fired yet. A rate() schedule first fires within a few seconds "
                            f"of its creation, then once per interval: wait a little and look at the log again."])
        if not request_id:
            return Verdict(["~/answers/scheduled-request-id is missing or empty: write the request ID of an "
                            "invocation your schedule made, as the log shows it."], 0.5)
        invocation = function.invocations.filter(request_id=request_id).first()
        if invocation is None:
            return Verdict([f"~/answers/scheduled-request-id says {request_id!r}, which is not the request ID of "
                            f"any invocation of {TICK}. Copy it from a log line your schedule caused."], 0.5)
        if invocation.invocation_type != "Event":
            return Verdict([f"{request_id} is an invocation you made yourself (a {invocation.invocation_type} "
                            f"call). Find the one your schedule made: its event is the schedule's input."], 0.5)
        return Verdict()

    return _result(_settled(evaluate), "Right: EventBridge Scheduler invoked tick asynchronously (an Event "
                                       "invocation), with the schedule's input as the event.")


def schedule_removed(ctx: CheckContext) -> CheckResult:
    """No enabled schedule targets `tick` any more."""
    account = _account(ctx)

    def evaluate() -> Verdict:
        left = [s.name for s in Schedule.objects.filter(account=account, state=Schedule.State.ENABLED)
                if (target := _target_function(account, s.target_arn)) is not None and target.name == TICK]
        if left:
            return Verdict([f"The schedule {left[0]} still invokes {TICK} every time it fires: run `aws scheduler "
                            f"delete-schedule --name {left[0]}`."])
        return Verdict()

    return _result(_settled(evaluate), "Done: nothing invokes tick on a timer any more.")
