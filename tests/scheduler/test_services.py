"""Creating, updating and deleting schedules through the services the AWS API and the console share: what is stored,
when it will fire, and every refusal with both AWS's words and a plain sentence."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from sandbox.scheduler import selectors, services
from sandbox.scheduler.errors import ScheduleError
from sandbox.scheduler.models import Schedule

from .conftest import function_arn, role_arn

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 1, 6, 9, 30, 20, tzinfo=timezone.utc)  # a Monday


def create(account, name="nightly", expression="cron(0 3 * * ? *)", **extra) -> Schedule:
    arguments = {"target_arn": function_arn(account), "role_arn": role_arn(account), "now": NOW, **extra}
    return services.schedule_create(account=account, name=name, expression=expression, **arguments)


def refusal(call) -> ScheduleError:
    with pytest.raises(ScheduleError) as refused:
        call()
    return refused.value


# --- creating -----------------------------------------------------------------------------------------------------

def test_a_cron_schedule_is_stored_and_due_at_its_first_occurrence(account):
    schedule = create(account, expression="cron(0 8 ? * MON-FRI *)", timezone="Europe/Paris",
                      target_input='{"report": "daily"}', description="weekday report")
    assert schedule.arn == f"arn:aws:scheduler:us-east-1:{account.account_id}:schedule/default/nightly"
    assert schedule.next_fire_at == datetime(2025, 1, 7, 7, tzinfo=timezone.utc)  # 08:00 in Paris, Tuesday
    assert (schedule.state, schedule.timezone, schedule.target_input) == ("ENABLED", "Europe/Paris",
                                                                          '{"report": "daily"}')


def test_a_rate_starts_at_once_unless_it_has_a_start_date(account):
    assert create(account, name="now", expression="rate(5 minutes)").next_fire_at == NOW
    later = NOW + timedelta(hours=2)
    assert create(account, name="later", expression="rate(5 minutes)", start_date=later).next_fire_at == later


def test_a_disabled_schedule_is_not_due(account):
    assert create(account, state="DISABLED").next_fire_at is None


def test_a_one_time_schedule_in_the_past_is_kept_but_says_it_will_not_fire(account):
    schedule = create(account, expression="at(2024-12-31T23:00:00)")
    assert schedule.next_fire_at is None
    assert "will not fire" in schedule.last_result


def test_the_console_may_leave_out_the_role(account):
    schedule = services.schedule_create(account=account, name="from-console", expression="rate(1 hour)",
                                        target_arn=function_arn(account), now=NOW)
    assert schedule.target_role_arn == f"arn:aws:iam::{account.account_id}:role/sandcloud-scheduler"


@pytest.mark.parametrize("expression", ["cron(0 1 * * * *)", "rate(1 minutes)", "at(2030-01-01)"])
def test_a_bad_expression_is_refused_in_awss_words_with_a_plain_reason(account, expression):
    error = refusal(lambda: create(account, expression=expression))
    assert (error.code, error.status) == ("ValidationException", 400)
    assert error.message == f"Invalid Schedule Expression {expression}."
    assert error.plain and error.plain != error.message


def test_an_unknown_time_zone_is_refused(account):
    error = refusal(lambda: create(account, timezone="Mars/Olympus_Mons"))
    assert error.code == "ValidationException" and "Mars/Olympus_Mons" in error.message


def test_only_lambda_targets_are_served(account):
    queue = f"arn:aws:sqs:us-east-1:{account.account_id}:jobs"
    error = refusal(lambda: create(account, target_arn=queue))
    assert error.code == "ValidationException"
    assert "Sandcloud fires only Lambda targets" in error.message and queue in error.message
    assert "Lambda functions only" in error.plain


def test_another_accounts_function_is_access_denied(account, other_account):
    theirs = function_arn(other_account)
    error = refusal(lambda: create(account, target_arn=theirs))
    assert (error.code, error.status) == ("AccessDeniedException", 403)
    assert f"is not authorized to perform: lambda:InvokeFunction on resource: {theirs}" in error.message
    assert not Schedule.objects.exists()


def test_another_accounts_role_is_access_denied(account, other_account):
    error = refusal(lambda: create(account, role_arn=role_arn(other_account)))
    assert error.code == "AccessDeniedException" and "iam:PassRole" in error.message


def test_an_input_that_is_not_json_is_refused(account):
    error = refusal(lambda: create(account, target_input="hello"))
    assert error.code == "ValidationException" and "JSON" in error.plain


def test_an_input_over_256_kb_is_refused(account):
    big = json.dumps({"blob": "x" * (256 * 1024)})
    error = refusal(lambda: create(account, target_input=big))
    assert error.code == "ValidationException" and "256 KB" in error.plain


def test_a_name_the_api_would_refuse_is_refused_on_the_console_too(account):
    error = refusal(lambda: create(account, name="my schedule"))
    assert error.message.startswith("1 validation error detected: Value 'my schedule' at 'name' failed to satisfy "
                                    "constraint: Member must satisfy regular expression pattern")


def test_a_taken_name_is_a_conflict(account):
    create(account)
    error = refusal(lambda: create(account))
    assert (error.code, error.status, error.message) == ("ConflictException", 409, "Schedule nightly already exists.")


def test_a_retried_create_with_the_same_client_token_returns_the_same_schedule(account):
    first = create(account, client_token="token-1")
    assert create(account, client_token="token-1").pk == first.pk
    assert refusal(lambda: create(account, client_token="token-2")).code == "ConflictException"


def test_the_same_name_in_two_accounts_is_two_schedules(account, other_account):
    create(account)
    services.schedule_create(account=other_account, name="nightly", expression="rate(1 day)",
                             target_arn=function_arn(other_account), role_arn=role_arn(other_account), now=NOW)
    assert Schedule.objects.filter(name="nightly").count() == 2


def test_an_account_holds_at_most_the_configured_number_of_schedules(account, settings):
    settings.SANDCLOUD_SCHEDULES_PER_ACCOUNT = 2
    create(account, name="one")
    create(account, name="two")
    error = refusal(lambda: create(account, name="three"))
    assert (error.code, error.status) == ("ServiceQuotaExceededException", 402)
    assert "2 schedules" in error.message and "delete one" in error.plain


def test_sandclouds_minimum_interval_refuses_faster_schedules_and_says_so(account, settings):
    settings.SANDCLOUD_SCHEDULE_MIN_INTERVAL_SECONDS = 300
    error = refusal(lambda: create(account, expression="rate(1 minute)"))
    assert error.message == ("Invalid Schedule Expression rate(1 minute). Sandcloud fires a schedule at most once "
                             "every 5 minutes.")
    assert refusal(lambda: create(account, expression="cron(0,1 * * * ? *)")).code == "ValidationException"
    assert create(account, expression="rate(5 minutes)").next_fire_at == NOW


def test_by_default_once_a_minute_is_allowed_as_on_aws(account):
    assert create(account, name="fast-rate", expression="rate(1 minute)").pk
    assert create(account, name="fast-cron", expression="cron(* * * * ? *)").pk


def test_a_start_date_in_the_past_is_refused_for_a_recurring_schedule(account):
    error = refusal(lambda: create(account, expression="rate(1 hour)", start_date=NOW - timedelta(hours=1)))
    assert error.message == "The StartDate you specify cannot be earlier than 5 minutes ago."


def test_a_recurring_schedule_past_its_end_date_is_not_due(account):
    schedule = create(account, expression="cron(0 3 * * ? *)", end_date=NOW + timedelta(hours=1))
    assert schedule.next_fire_at is None


# --- updating and deleting ----------------------------------------------------------------------------------------

def test_an_update_replaces_every_setting_and_reschedules(account):
    create(account, description="old", target_input='{"a": 1}')
    updated = services.schedule_update(account=account, name="nightly", expression="rate(2 hours)",
                                       target_arn=function_arn(account, "other"), role_arn=role_arn(account),
                                       now=NOW + timedelta(minutes=1))
    assert (updated.expression, updated.description, updated.target_input) == ("rate(2 hours)", "", "")
    assert updated.target_arn.endswith(":function:other")
    assert updated.next_fire_at == NOW + timedelta(minutes=1)


def test_disabling_by_update_stops_it_being_due(account):
    create(account)
    updated = services.schedule_update(account=account, name="nightly", expression="cron(0 3 * * ? *)",
                                       target_arn=function_arn(account), role_arn=role_arn(account),
                                       state="DISABLED", now=NOW)
    assert updated.next_fire_at is None and updated.state == "DISABLED"


def test_updating_or_deleting_a_missing_schedule_is_not_found(account):
    error = refusal(lambda: services.schedule_delete(account=account, name="ghost"))
    assert (error.code, error.status, error.message) == ("ResourceNotFoundException", 404,
                                                         "Schedule ghost does not exist.")
    error = refusal(lambda: services.schedule_update(account=account, name="ghost", expression="rate(1 day)",
                                                     target_arn=function_arn(account)))
    assert error.code == "ResourceNotFoundException"


def test_a_learner_cannot_delete_another_learners_schedule(account, other_account):
    create(account)
    assert refusal(lambda: services.schedule_delete(account=other_account, name="nightly")).code == \
        "ResourceNotFoundException"
    services.schedule_delete(account=account, name="nightly")
    assert not Schedule.objects.exists()


def test_a_group_other_than_default_does_not_exist(account):
    error = refusal(lambda: create(account, group_name="reports"))
    assert error.code == "ResourceNotFoundException" and "reports" in error.message


# --- selectors ----------------------------------------------------------------------------------------------------

def test_the_schedules_of_one_function_include_its_qualifiers_and_no_other_function(account, other_account):
    create(account, name="plain", target_arn=function_arn(account, "hello"))
    create(account, name="alias", target_arn=function_arn(account, "hello") + ":prod")
    create(account, name="similar", target_arn=function_arn(account, "hello2"))
    services.schedule_create(account=other_account, name="theirs", expression="rate(1 day)",
                             target_arn=function_arn(other_account, "hello"), role_arn=role_arn(other_account),
                             now=NOW)
    found = selectors.schedules_for_target(account=account, target_arn_prefix=function_arn(account, "hello"))
    assert [s.name for s in found] == ["alias", "plain"]
    assert [s.name for s in selectors.schedules_for(account=account)] == ["alias", "plain", "similar"]
