"""EventBridge Scheduler's API end to end: real boto3 clients and the real `aws` CLI, signed with a learner's real
key, against the edge endpoint."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sandbox.awsapi import identity
from sandbox.scheduler.models import Schedule

from .conftest import function_arn, role_arn

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def scheduler_for(live_server):
    def make(user, **config):
        key, secret = identity.access_key_create(user=user)
        return boto3.client("scheduler", endpoint_url=live_server.url + "/aws", region_name="us-east-1",
                            aws_access_key_id=key.access_key_id, aws_secret_access_key=secret,
                            config=Config(retries={"max_attempts": 1}, **config))
    return make


@pytest.fixture
def scheduler(scheduler_for, learner):
    return scheduler_for(learner)


def create(client, account, name="nightly", expression="cron(0 3 * * ? *)", **extra):
    target = {"Arn": function_arn(account), "RoleArn": role_arn(account), **extra.pop("Target", {})}
    return client.create_schedule(Name=name, ScheduleExpression=expression, Target=target,
                                  FlexibleTimeWindow={"Mode": "OFF"}, **extra)


def error_of(caught) -> tuple[str, str, int]:
    error = caught.value.response["Error"]
    return error["Code"], error.get("Message", ""), caught.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_create_get_list_delete(scheduler, account):
    created = create(scheduler, account, ScheduleExpressionTimezone="Europe/Paris", Description="night job",
                     Target={"Input": '{"job": "cleanup"}'})
    arn = f"arn:aws:scheduler:us-east-1:{account.account_id}:schedule/default/nightly"
    assert created["ScheduleArn"] == arn

    got = scheduler.get_schedule(Name="nightly")
    assert (got["Arn"], got["Name"], got["GroupName"], got["State"]) == (arn, "nightly", "default", "ENABLED")
    assert (got["ScheduleExpression"], got["ScheduleExpressionTimezone"]) == ("cron(0 3 * * ? *)", "Europe/Paris")
    assert got["Target"] == {"Arn": function_arn(account), "RoleArn": role_arn(account),
                             "Input": '{"job": "cleanup"}',
                             "RetryPolicy": {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}}
    assert got["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert (got["ActionAfterCompletion"], got["Description"]) == ("NONE", "night job")
    assert got["CreationDate"].tzinfo is not None and got["LastModificationDate"] >= got["CreationDate"]

    listed = scheduler.list_schedules()["Schedules"]
    assert [(s["Name"], s["Arn"], s["State"], s["Target"]["Arn"]) for s in listed] == \
        [("nightly", arn, "ENABLED", function_arn(account))]

    scheduler.delete_schedule(Name="nightly")
    assert scheduler.list_schedules()["Schedules"] == []
    assert not Schedule.objects.exists()


def test_a_schedule_that_exists_is_a_conflict(scheduler, account):
    create(scheduler, account)
    with pytest.raises(ClientError) as caught:
        create(scheduler, account)
    assert error_of(caught) == ("ConflictException", "Schedule nightly already exists.", 409)


def test_a_missing_schedule_is_resource_not_found(scheduler):
    for call in (lambda: scheduler.get_schedule(Name="ghost"), lambda: scheduler.delete_schedule(Name="ghost")):
        with pytest.raises(ClientError) as caught:
            call()
        assert error_of(caught) == ("ResourceNotFoundException", "Schedule ghost does not exist.", 404)


@pytest.mark.parametrize("expression", [
    "cron(0 1 * * * *)", "cron(71 8 1 * ? *)", "cron(0 8 ? * 0 *)", "rate(10 minutess)", "rate(1 minutes)",
    "rate( 10 minutes )", "at(2021-12-31T23:59:59Z)",
])
def test_a_bad_expression_is_a_validation_exception_in_awss_words(scheduler, account, expression):
    with pytest.raises(ClientError) as caught:
        create(scheduler, account, expression=expression)
    assert error_of(caught) == ("ValidationException", f"Invalid Schedule Expression {expression}.", 400)


def test_the_model_limits_are_checked_before_the_expression(scheduler, account):
    with pytest.raises(ClientError) as caught:
        create(scheduler, account, name="bad name!")
    code, message, status = error_of(caught)
    assert (code, status) == ("ValidationException", 400)
    assert message.startswith("1 validation error detected: Value 'bad name!' at 'name' failed to satisfy "
                              "constraint: Member must satisfy regular expression pattern")


def test_list_pages_with_next_token_and_filters(scheduler, account):
    for name in ("a-1", "a-2", "a-3", "b-1", "b-2"):
        create(scheduler, account, name=name, State="DISABLED" if name == "a-2" else "ENABLED")
    first = scheduler.list_schedules(MaxResults=2)
    assert [s["Name"] for s in first["Schedules"]] == ["a-1", "a-2"]
    second = scheduler.list_schedules(MaxResults=2, NextToken=first["NextToken"])
    assert [s["Name"] for s in second["Schedules"]] == ["a-3", "b-1"]
    third = scheduler.list_schedules(MaxResults=2, NextToken=second["NextToken"])
    assert [s["Name"] for s in third["Schedules"]] == ["b-2"] and "NextToken" not in third
    paged = [s["Name"] for page in scheduler.get_paginator("list_schedules").paginate(
        PaginationConfig={"PageSize": 2}) for s in page["Schedules"]]
    assert paged == ["a-1", "a-2", "a-3", "b-1", "b-2"]
    assert [s["Name"] for s in scheduler.list_schedules(NamePrefix="a-")["Schedules"]] == ["a-1", "a-2", "a-3"]
    assert [s["Name"] for s in scheduler.list_schedules(State="DISABLED")["Schedules"]] == ["a-2"]


def test_a_forged_next_token_is_refused(scheduler):
    with pytest.raises(ClientError) as caught:
        scheduler.list_schedules(NextToken="made-up")
    assert error_of(caught)[0] == "ValidationException"


def test_another_learners_key_sees_nothing(scheduler_for, learner, other_learner, account):
    create(scheduler_for(learner), account)
    theirs = scheduler_for(other_learner)
    assert theirs.list_schedules()["Schedules"] == []
    with pytest.raises(ClientError) as caught:
        theirs.get_schedule(Name="nightly")
    assert error_of(caught)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError):
        theirs.delete_schedule(Name="nightly")
    assert Schedule.objects.filter(name="nightly").exists()


def test_a_target_in_another_account_is_access_denied(scheduler, account, other_account):
    with pytest.raises(ClientError) as caught:
        create(scheduler, account, Target={"Arn": function_arn(other_account)})
    code, message, status = error_of(caught)
    assert (code, status) == ("AccessDeniedException", 403)
    assert f"not authorized to perform: lambda:InvokeFunction on resource: {function_arn(other_account)}" in message


def test_a_target_that_is_not_a_lambda_function_is_refused(scheduler, account):
    queue = f"arn:aws:sqs:us-east-1:{account.account_id}:jobs"
    with pytest.raises(ClientError) as caught:
        create(scheduler, account, Target={"Arn": queue})
    code, message, status = error_of(caught)
    assert (code, status) == ("ValidationException", 400)
    assert "Sandcloud fires only Lambda targets" in message


def test_the_account_quota_is_a_service_quota_exceeded_exception(scheduler, account, settings):
    settings.SANDCLOUD_SCHEDULES_PER_ACCOUNT = 1
    create(scheduler, account, name="one")
    with pytest.raises(ClientError) as caught:
        create(scheduler, account, name="two")
    assert error_of(caught)[0::2] == ("ServiceQuotaExceededException", 402)


def test_a_retried_create_returns_the_same_arn(scheduler, account):
    first = create(scheduler, account, ClientToken="retry-1")
    assert create(scheduler, account, ClientToken="retry-1")["ScheduleArn"] == first["ScheduleArn"]


def test_update_replaces_the_schedule(scheduler, account):
    create(scheduler, account, Description="old")
    updated = scheduler.update_schedule(Name="nightly", ScheduleExpression="rate(2 hours)", State="DISABLED",
                                        Target={"Arn": function_arn(account, "other"), "RoleArn": role_arn(account)},
                                        FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15},
                                        ActionAfterCompletion="DELETE")
    assert updated["ScheduleArn"].endswith(":schedule/default/nightly")
    got = scheduler.get_schedule(Name="nightly")
    assert (got["ScheduleExpression"], got["State"], got["ActionAfterCompletion"]) == ("rate(2 hours)",
                                                                                       "DISABLED", "DELETE")
    assert got["FlexibleTimeWindow"] == {"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}
    assert got["Target"]["Arn"] == function_arn(account, "other") and "Description" not in got


def test_a_group_other_than_default_does_not_exist(scheduler, account):
    with pytest.raises(ClientError) as caught:
        scheduler.get_schedule(Name="nightly", GroupName="reports")
    assert error_of(caught)[0::2] == ("ResourceNotFoundException", 404)


def test_the_aws_cli_creates_a_schedule_as_a_learner_types_it(live_server, learner, account):
    key, secret = identity.access_key_create(user=learner)
    aws = Path(sys.executable).with_name("aws")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "AWS_ACCESS_KEY_ID": key.access_key_id,
           "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": live_server.url + "/aws",
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    command = [str(aws), "scheduler", "create-schedule", "--name", "nightly-report",
               "--schedule-expression", "cron(0 3 ? * MON-FRI *)",
               "--schedule-expression-timezone", "Europe/Paris",
               "--flexible-time-window", "Mode=OFF",
               "--target", f"Arn={function_arn(account, 'report')},RoleArn={role_arn(account)}",
               "--output", "json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ScheduleArn"] == \
        f"arn:aws:scheduler:us-east-1:{account.account_id}:schedule/default/nightly-report"
    schedule = Schedule.objects.get(name="nightly-report")
    assert (schedule.expression, schedule.timezone, schedule.state) == ("cron(0 3 ? * MON-FRI *)", "Europe/Paris",
                                                                        "ENABLED")
    assert schedule.next_fire_at is not None and schedule.next_fire_at.minute == 0
