"""The Lambda labs' checks judge the learner's real rows: invocations, aliases, provisioned concurrency, schedules.

The rows are made as the Lambda and Scheduler services store them; the learner's answer files stand in for what a
sandbox would hold (the solution bot runs these checks end to end against a real sandbox and edge)."""
from __future__ import annotations

import pytest
from django.utils import timezone

from labs.checks import CheckContext
from labs.checks import lambda_labs
from sandbox.awsapi.identity import aws_account_for
from sandbox.functions.models import LATEST, Alias, Function, FunctionVersion, Invocation, ProvisionedConcurrency
from sandbox.models import Sandbox
from sandbox.scheduler.models import Schedule

pytestmark = pytest.mark.django_db


class AnswersContext(CheckContext):
    """A check's context whose sandbox holds exactly these answer files."""

    def __init__(self, owner, files: dict[str, str]):
        super().__init__(sandbox=Sandbox(owner=owner), timeout=20)
        self.files = files

    def read_file(self, path: str) -> str | None:
        return self.files.get(path)


@pytest.fixture(autouse=True)
def no_settling(monkeypatch):
    monkeypatch.setattr(lambda_labs, "SETTLE_SECONDS", 0)


def function_make(learner, name: str, *, memory_size: int = 128) -> Function:
    function = Function.objects.create(account=aws_account_for(user=learner), name=name)
    FunctionVersion.objects.create(function=function, version=LATEST, runtime="python3.11", handler="app.handler",
                                   memory_size=memory_size, code_sha256="x", code_key="k",
                                   state=FunctionVersion.State.ACTIVE)
    return function


def invocation_make(function: Function, request_id: str, **fields) -> Invocation:
    values = {"version": LATEST, "status": Invocation.Status.SUCCESS, "duration_ms": 20.5, "billed_ms": 21,
              "memory_size": 128, "max_memory_used": 40, **fields}
    return Invocation.objects.create(function=function, request_id=request_id, **values)


def test_one_invocation_costs_its_gb_seconds_plus_its_share_of_the_request_price():
    # 128 MB for 1,500 ms is 0.1875 GB-seconds.
    assert lambda_labs.cost_per_invocation(memory_mb=128, billed_ms=1500) == pytest.approx(
        0.1875 * 0.0000166667 + 0.0000002)


def test_the_report_answers_pass_when_they_come_from_one_real_invocation(learner):
    hello = function_make(learner, "hello")
    invocation_make(hello, "r1", billed_ms=158, max_memory_used=75, init_ms=130.49)
    ctx = AnswersContext(learner, {"~/answers/billed-duration-ms": "158\n", "~/answers/max-memory-mb": "75 MB\n"})

    result = lambda_labs.hello_report_read(ctx)

    assert result.passed, result.message


def test_a_billed_duration_no_invocation_had_is_refused_with_half_the_points(learner):
    hello = function_make(learner, "hello")
    invocation_make(hello, "r1", billed_ms=158, max_memory_used=75)
    ctx = AnswersContext(learner, {"~/answers/billed-duration-ms": "26.73", "~/answers/max-memory-mb": "75"})

    result = lambda_labs.hello_report_read(ctx)

    assert not result.passed
    assert "~/answers/billed-duration-ms says '26.73'" in result.message
    assert result.share == 0.5


def test_a_function_that_only_failed_is_sent_back_to_its_log(learner):
    hello = function_make(learner, "hello")
    invocation_make(hello, "r1", status=Invocation.Status.ERROR, error_type="KeyError")

    result = lambda_labs.hello_report_read(AnswersContext(learner, {}))

    assert not result.passed
    assert "ended with Error (KeyError)" in result.message


def test_a_wrong_handler_is_named_with_the_command_that_fixes_it(learner):
    hello = function_make(learner, "hello")
    FunctionVersion.objects.filter(function=hello).update(handler="lambda_function.lambda_handler")

    result = lambda_labs.hello_created(AnswersContext(learner, {}))

    assert not result.passed
    assert "--handler app.handler" in result.message


def test_costs_and_explanation_each_earn_a_quarter(learner):
    crunch = function_make(learner, "crunch")
    invocation_make(crunch, "a", memory_size=128, billed_ms=1500, duration_ms=1499.2)
    invocation_make(crunch, "b", memory_size=1769, billed_ms=110, duration_ms=109.1)
    ctx = AnswersContext(learner, {
        "~/answers/cost-128.txt": "$0.0000033", "~/answers/cost-1769.txt": "0.0000034",
        "~/answers/why.txt": "More memory gives the function more CPU: Lambda allocates CPU in proportion to memory."})

    result = lambda_labs.cost_explained(ctx)

    assert not result.passed
    assert result.share == 0.75  # both costs and the CPU idea; not how much CPU 1,769 MB is
    assert "how much CPU a function has at 1,769 MB" in result.message


def test_an_invocation_through_the_alias_without_a_provisioned_environment_is_not_enough(learner):
    warmup = function_make(learner, "warmup")
    FunctionVersion.objects.create(function=warmup, version="1", runtime="python3.11", handler="app.handler",
                                   code_sha256="x", code_key="k", state=FunctionVersion.State.ACTIVE)
    Alias.objects.create(function=warmup, name="live", function_version="1")
    ProvisionedConcurrency.objects.create(function=warmup, qualifier="live", requested=1)
    invocation_make(warmup, "w", version="1")

    result = lambda_labs.provisioned_alias(AnswersContext(learner, {}))

    assert not result.passed
    assert "not READY yet" in result.message


def test_the_scheduled_request_id_must_be_one_the_schedule_made(learner):
    tick = function_make(learner, "tick")
    account = aws_account_for(user=learner)
    Schedule.objects.create(account=account, region="us-east-1", name="tick", expression="rate(1 minute)",
                            target_arn=f"arn:aws:lambda:us-east-1:{account.account_id}:function:tick",
                            target_role_arn=f"arn:aws:iam::{account.account_id}:role/lab",
                            last_fired_at=timezone.now(), last_result="Invoked")
    invocation_make(tick, "mine", invocation_type="RequestResponse")
    invocation_make(tick, "scheduled", invocation_type="Event")

    mine = lambda_labs.schedule_fired(AnswersContext(learner, {"~/answers/scheduled-request-id": "mine"}))
    scheduled = lambda_labs.schedule_fired(AnswersContext(learner, {"~/answers/scheduled-request-id": "scheduled"}))

    assert not mine.passed and "an invocation you made yourself" in mine.message
    assert scheduled.passed, scheduled.message


def test_a_one_time_schedule_does_not_count_as_a_recurring_one(learner):
    function_make(learner, "tick")
    account = aws_account_for(user=learner)
    Schedule.objects.create(account=account, region="us-east-1", name="once", expression="at(2030-01-01T09:00:00)",
                            target_arn=f"arn:aws:lambda:us-east-1:{account.account_id}:function:tick",
                            target_role_arn=f"arn:aws:iam::{account.account_id}:role/lab")

    result = lambda_labs.schedule_created(AnswersContext(learner, {}))

    assert not result.passed
    assert "fires only once" in result.message
