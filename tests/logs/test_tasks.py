"""The expiry task beat runs every minute: retention, the bound on days, the per-account storage cap (oldest events
first), old empty streams."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from config.celery import app as celery_app
from sandbox.logs import services
from sandbox.logs.models import LogEvent, LogStream
from sandbox.logs.tasks import logs_expire_task

pytestmark = pytest.mark.django_db

DAY_MS = 86_400_000


def days_ago(days: float) -> int:
    return services.now_ms() - int(days * DAY_MS)


def messages(stream) -> list[str]:
    return list(LogEvent.objects.filter(stream=stream).order_by("timestamp", "id").values_list("message", flat=True))


def test_beat_runs_the_registered_task_every_minute():
    entry = settings.CELERY_BEAT_SCHEDULE["logs-expire"]

    assert entry["task"] in celery_app.tasks and entry["schedule"] == 60.0


def test_events_older_than_the_groups_retention_are_deleted(account):
    stream = services.log_stream_ensure(account=account, group_name="/short", stream_name="s")
    services.log_retention_put(group=stream.group, retention_in_days=1)
    services.log_events_put(stream=stream, events=[(days_ago(2), "two days old"), (days_ago(0.5), "half a day")])

    logs_expire_task.delay()

    assert messages(stream) == ["half a day"]


def test_a_group_that_never_expires_keeps_events_at_most_the_days_allowed(account, settings):
    settings.SANDCLOUD_LOGS_MAX_DAYS = 30
    stream = services.log_stream_ensure(account=account, group_name="/forever", stream_name="s")
    services.log_events_put(stream=stream, events=[(days_ago(31), "31 days"), (days_ago(29), "29 days")])

    logs_expire_task.delay()

    assert messages(stream) == ["29 days"]


def test_a_retention_longer_than_the_days_allowed_is_held_to_them(account, settings):
    settings.SANDCLOUD_LOGS_MAX_DAYS = 30
    stream = services.log_stream_ensure(account=account, group_name="/ten-years", stream_name="s")
    services.log_retention_put(group=stream.group, retention_in_days=3653)
    services.log_events_put(stream=stream, events=[(days_ago(40), "40 days"), (days_ago(1), "yesterday")])

    logs_expire_task.delay()

    assert messages(stream) == ["yesterday"]


@pytest.mark.parametrize("batch", [2000, 4], ids=["one-batch", "several-batches"])
def test_an_account_over_its_storage_cap_loses_its_oldest_events_first(account, other_account, settings, monkeypatch,
                                                                       batch):
    # Given a cap of 10,000 bytes and 1,000-byte events (974 characters and CloudWatch's 26) in two groups
    monkeypatch.setattr(services, "_DELETE_BATCH", batch)
    settings.SANDCLOUD_LOGS_MAX_MB_PER_ACCOUNT = 10_000 / (1024 * 1024)
    line, base = "x" * 974, days_ago(1)
    first = services.log_stream_ensure(account=account, group_name="/a", stream_name="s")
    second = services.log_stream_ensure(account=account, group_name="/b", stream_name="s")
    services.log_events_put(stream=first, events=[(base + n * 2, f"{n:02d}" + line[2:]) for n in range(8)])
    services.log_events_put(stream=second, events=[(base + n * 2 + 1, f"{n:02d}" + line[2:]) for n in range(8)])
    bystander = services.log_stream_ensure(account=other_account, group_name="/a", stream_name="s")
    services.log_events_put(stream=bystander, events=[(days_ago(1), line)] * 9)

    result = logs_expire_task.delay().get()

    # Then 16,000 bytes become 10,000: the six oldest, alternating between the groups, are gone
    kept = LogEvent.objects.filter(group__account=account)
    assert sum(kept.values_list("size", flat=True)) == 10_000
    assert [m[:2] for m in messages(first)] == ["03", "04", "05", "06", "07"]
    assert [m[:2] for m in messages(second)] == ["03", "04", "05", "06", "07"]
    # And another account under the cap loses nothing
    assert LogEvent.objects.filter(stream=bystander).count() == 9
    assert result["accounts_over_cap"] == 1 and result["trimmed"] == 6


def test_old_streams_left_empty_are_removed_and_the_others_kept(account, settings):
    settings.SANDCLOUD_LOGS_MAX_DAYS = 30
    old_empty = services.log_stream_ensure(account=account, group_name="/g", stream_name="old-empty")
    old_busy = services.log_stream_ensure(account=account, group_name="/g", stream_name="old-busy")
    new_empty = services.log_stream_ensure(account=account, group_name="/g", stream_name="new-empty")
    LogStream.objects.filter(pk__in=[old_empty.pk, old_busy.pk]).update(created=timezone.now() - timedelta(days=31))
    services.log_events_put(stream=old_busy, events=[(days_ago(1), "still here")])

    logs_expire_task.delay()

    assert set(LogStream.objects.filter(group__account=account).values_list("name", flat=True)) == {
        "old-busy", "new-empty"}


def test_running_it_again_deletes_nothing_more(account, settings):
    settings.SANDCLOUD_LOGS_MAX_MB_PER_ACCOUNT = 0.001
    stream = services.log_stream_ensure(account=account, group_name="/g", stream_name="s")
    services.log_events_put(stream=stream, events=[(days_ago(0.1) + n, "y" * 500) for n in range(5)])
    logs_expire_task.delay()
    left = messages(stream)

    again = logs_expire_task.delay().get()

    assert messages(stream) == left and len(left) == 1
    assert again == {"expired": 0, "trimmed": 0, "accounts_over_cap": 0, "streams_removed": 0}
