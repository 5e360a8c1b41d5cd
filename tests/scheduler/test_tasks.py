"""Firing: the dispatcher claims due schedules and their firing invokes the target once per occurrence, even with
two dispatchers at once, a redelivered task or an outage; what happened is recorded for the console."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection

from sandbox.awsapi.errors import AwsError
from sandbox.scheduler import selectors, services
from sandbox.scheduler.models import Schedule
from sandbox.scheduler.tasks import schedule_fire_task, schedules_dispatch_task

from .conftest import function_arn, role_arn

# Transactional: a claim queues its firing on commit, as in production (tasks run inline in tests).
pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)


def create(account, name="every-minute", expression="rate(1 minute)", **extra) -> Schedule:
    arguments = {"target_arn": function_arn(account), "role_arn": role_arn(account), "now": T0, **extra}
    return services.schedule_create(account=account, name=name, expression=expression, **arguments)


def reread(schedule: Schedule) -> Schedule | None:
    return Schedule.objects.filter(pk=schedule.pk).first()


def test_a_due_schedule_invokes_its_function_with_its_input_and_moves_on(account, invocations):
    schedule = create(account, target_input='{"job": "report"}')
    assert services.schedules_dispatch(now=T0 + timedelta(seconds=5)) == 1
    assert invocations.calls == [{"account_id": account.account_id, "arn": function_arn(account),
                                  "payload": b'{"job": "report"}'}]
    schedule = reread(schedule)
    assert (schedule.last_result, schedule.last_occurrence) == ("Invoked", T0)
    assert schedule.last_fired_at is not None
    assert schedule.next_fire_at == T0 + timedelta(minutes=1)


def test_a_schedule_without_input_sends_an_empty_json_object(account, invocations):
    create(account)
    services.schedules_dispatch(now=T0)
    assert invocations.calls[0]["payload"] == b"{}"


def test_nothing_fires_before_it_is_due(account, invocations):
    create(account, expression="cron(0 10 * * ? *)")
    assert services.schedules_dispatch(now=T0 + timedelta(minutes=59)) == 0
    assert invocations.calls == []


def test_a_disabled_schedule_never_fires(account, invocations):
    schedule = create(account)
    # Even one that was due when it was disabled (the row as an interrupted update might leave it).
    Schedule.objects.filter(pk=schedule.pk).update(state="DISABLED", next_fire_at=T0)
    assert services.schedules_dispatch(now=T0 + timedelta(hours=1)) == 0
    assert invocations.calls == []


def test_a_missed_window_fires_once_not_once_per_missed_occurrence(account, invocations):
    schedule = create(account)
    back = T0 + timedelta(minutes=10, seconds=30)  # the platform was down for ten minutes
    services.schedules_dispatch(now=back)
    services.schedules_dispatch(now=back + timedelta(seconds=10))
    assert len(invocations.calls) == 1
    assert reread(schedule).next_fire_at == T0 + timedelta(minutes=11)


def test_a_missed_window_ending_on_an_occurrence_still_fires_once(account, invocations):
    schedule = create(account)
    back = T0 + timedelta(minutes=10)
    services.schedules_dispatch(now=back)
    services.schedules_dispatch(now=back)
    assert len(invocations.calls) == 1
    assert reread(schedule).next_fire_at == back + timedelta(minutes=1)


def test_each_occurrence_fires_in_turn(account, invocations):
    create(account)
    for minute in range(3):
        services.schedules_dispatch(now=T0 + timedelta(minutes=minute, seconds=2))
    assert len(invocations.calls) == 3


def test_two_dispatchers_at_once_fire_each_due_schedule_exactly_once(account, invocations, monkeypatch):
    schedules = [create(account, name=f"job-{i}") for i in range(5)]
    both_have_read = threading.Barrier(2, timeout=10)
    read_due = selectors.schedules_due

    def due_then_wait(**kwargs):
        # Both dispatchers see the same due schedules before either claims one: the race the claim must win.
        due = read_due(**kwargs)
        both_have_read.wait()
        return due

    monkeypatch.setattr(selectors, "schedules_due", due_then_wait)
    claimed, errors = [], []

    def dispatcher():
        try:
            claimed.append(services.schedules_dispatch(now=T0 + timedelta(seconds=5)))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(claimed) != [0, 0] and sum(claimed) == 5
    assert sorted(call["arn"] for call in invocations.calls) == [function_arn(account)] * 5
    assert all(reread(s).last_result == "Invoked" for s in schedules)


def test_a_stale_dispatcher_cannot_claim_an_occurrence_already_claimed(account, invocations):
    schedule = create(account)
    assert services.occurrence_claim(schedule_id=schedule.pk, occurrence=T0, now=T0) is True
    assert services.occurrence_claim(schedule_id=schedule.pk, occurrence=T0, now=T0) is False
    assert len(invocations.calls) == 1


def test_a_redelivered_firing_invokes_nothing_the_second_time(account, invocations):
    schedule = create(account)
    assert schedule_fire_task.apply(args=(schedule.pk, T0.isoformat())).result == "Invoked"
    assert schedule_fire_task.apply(args=(schedule.pk, T0.isoformat())).result is None
    assert len(invocations.calls) == 1


def test_an_occurrence_read_before_an_update_is_not_fired(account, invocations):
    schedule = create(account)
    services.schedule_update(account=account, name=schedule.name, expression="cron(0 12 * * ? *)",
                             target_arn=function_arn(account), role_arn=role_arn(account), now=T0)
    assert services.occurrence_claim(schedule_id=schedule.pk, occurrence=T0, now=T0) is False
    assert invocations.calls == []


def test_a_firing_for_a_deleted_schedule_does_nothing(account, invocations):
    schedule = create(account)
    services.schedule_delete(account=account, name=schedule.name)
    assert services.schedule_fire(schedule_id=schedule.pk, occurrence=T0) is None
    assert invocations.calls == []


def test_the_periodic_task_dispatches_what_is_due_now(account, invocations):
    create(account, expression="rate(1 hour)", now=datetime.now(timezone.utc) - timedelta(seconds=1))
    assert schedules_dispatch_task.apply().result == 1
    assert len(invocations.calls) == 1


def test_the_minimum_interval_holds_when_firing_too(account, invocations, settings):
    schedule = create(account)  # made while once a minute was allowed
    settings.SANDCLOUD_SCHEDULE_MIN_INTERVAL_SECONDS = 300
    services.schedules_dispatch(now=T0)
    assert reread(schedule).next_fire_at == T0 + timedelta(minutes=5)


# --- one-time schedules and completion ----------------------------------------------------------------------------

def test_a_one_time_schedule_fires_once_then_disables_itself(account, invocations):
    schedule = create(account, name="once", expression="at(2025-01-06T09:05:00)")
    assert schedule.next_fire_at == T0 + timedelta(minutes=5)
    services.schedules_dispatch(now=T0 + timedelta(minutes=5, seconds=3))
    services.schedules_dispatch(now=T0 + timedelta(minutes=6))
    assert len(invocations.calls) == 1
    schedule = reread(schedule)
    assert (schedule.state, schedule.next_fire_at, schedule.last_result) == ("DISABLED", None, "Invoked")


def test_a_one_time_schedule_with_action_delete_is_gone_after_firing(account, invocations):
    schedule = create(account, name="once", expression="at(2025-01-06T09:05:00)", action_after_completion="DELETE")
    services.schedules_dispatch(now=T0 + timedelta(minutes=5))
    assert len(invocations.calls) == 1
    assert reread(schedule) is None


def test_a_recurring_schedule_reaching_its_end_date_completes(account, invocations):
    schedule = create(account, expression="rate(1 hour)", start_date=T0, end_date=T0 + timedelta(minutes=90))
    services.schedules_dispatch(now=T0)
    services.schedules_dispatch(now=T0 + timedelta(hours=1))
    schedule = reread(schedule)
    assert len(invocations.calls) == 2
    assert (schedule.state, schedule.next_fire_at) == ("DISABLED", None)


# --- what is recorded when the target cannot be invoked -----------------------------------------------------------

def test_a_missing_function_is_recorded_in_its_own_words(account, invocations):
    invocations.fail_with = AwsError("ResourceNotFoundException", f"Function not found: {function_arn(account)}",
                                     status=404)
    schedule = create(account)
    services.schedules_dispatch(now=T0)
    assert reread(schedule).last_result == f"Function not found: {function_arn(account)}"
    assert reread(schedule).next_fire_at == T0 + timedelta(minutes=1)  # and it keeps its schedule


def test_a_throttled_function_is_recorded(account, invocations):
    invocations.fail_with = AwsError("TooManyRequestsException", "Rate Exceeded.", status=429)
    schedule = create(account)
    services.schedules_dispatch(now=T0)
    assert reread(schedule).last_result == "Rate Exceeded."


def test_an_invoker_bug_is_recorded_without_its_details(account, invocations):
    invocations.fail_with = RuntimeError("secret internals")
    schedule = create(account)
    services.schedules_dispatch(now=T0)
    assert "secret" not in reread(schedule).last_result
    assert "fault on its side" in reread(schedule).last_result


def test_without_a_lambda_invoker_the_schedule_says_so_instead_of_failing(account, no_lambda):
    schedule = create(account)
    services.schedules_dispatch(now=T0)
    schedule = reread(schedule)
    assert schedule.last_result == "Lambda is not available on this server"
    assert schedule.next_fire_at == T0 + timedelta(minutes=1)
