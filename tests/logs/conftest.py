"""Fixtures for CloudWatch Logs: learners' accounts, their real keys, and boto3 clients against the live server."""
from __future__ import annotations

import pytest

from sandbox.awsapi import identity, providers
from tests.aws_clients import aws_client_for
from sandbox.logs.api import LogsApi


@pytest.fixture(autouse=True)
def logs_served():
    """The app registers its provider when Django starts; tests elsewhere (tests/awsapi) put their own in its place
    and then remove it, so make sure the real one answers here."""
    providers.provider_register("logs", LogsApi)
    yield


@pytest.fixture
def account(learner):
    return identity.aws_account_for(user=learner)


@pytest.fixture
def other_account(other_learner):
    return identity.aws_account_for(user=other_learner)


def _client_for(live_server, user):
    return aws_client_for(live_server, user, "logs")


@pytest.fixture
def logs(live_server, learner):
    """ada's CloudWatch Logs client, signed with her real key."""
    return _client_for(live_server, learner)


@pytest.fixture
def other_logs(live_server, other_learner):
    """grace's: another learner, another account."""
    return _client_for(live_server, other_learner)


def error_of(caught) -> tuple[str, str]:
    error = caught.value.response["Error"]
    return error["Code"], error.get("Message", "")
