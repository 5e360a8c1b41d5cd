"""Fixtures for the scheduler: learners' AWS accounts and a target invoker that records what it was asked to invoke
(the functions app registers the real one; the lead's end-to-end test fires a real function)."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from sandbox.awsapi import identity
from sandbox.scheduler import targets


@pytest.fixture
def account(learner):
    return identity.aws_account_for(user=learner)


@pytest.fixture
def other_account(other_learner):
    return identity.aws_account_for(user=other_learner)


def function_arn(account, name: str = "hello", region: str = "us-east-1") -> str:
    return f"arn:aws:lambda:{region}:{account.account_id}:function:{name}"


def role_arn(account) -> str:
    return f"arn:aws:iam::{account.account_id}:role/scheduler-invokes-lambda"


@dataclass
class Invocations:
    """Every call the scheduler made to the Lambda invoker; `fail_with` makes the next calls raise it."""

    calls: list[dict] = field(default_factory=list)
    fail_with: Exception | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, *, account, arn: str, payload: bytes) -> None:
        with self.lock:
            self.calls.append({"account_id": account.account_id, "arn": arn, "payload": payload})
        if self.fail_with is not None:
            raise self.fail_with


@pytest.fixture
def invocations():
    before = targets.target_invoker("lambda")
    recorder = Invocations()
    targets.target_register("lambda", recorder)
    yield recorder
    if before is None:
        targets.target_unregister("lambda")
    else:
        targets.target_register("lambda", before)


@pytest.fixture
def no_lambda():
    """A server where no app has registered a Lambda invoker."""
    before = targets.target_invoker("lambda")
    targets.target_unregister("lambda")
    yield
    if before is not None:
        targets.target_register("lambda", before)
