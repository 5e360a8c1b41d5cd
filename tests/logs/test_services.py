"""The services the functions app writes logs with: streams made on demand and once, events in one INSERT, cut as
Lambda cuts them; deletion; the caps; the reads a console polls with."""
from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from sandbox.logs import selectors, services
from sandbox.logs.errors import InvalidParameter, LimitExceeded, LogGroupNotFound
from sandbox.logs.models import LogEvent, LogGroup, LogStream

GROUP = "/aws/lambda/hello"
STREAM = "2026/01/31/[$LATEST]0123456789abcdef0123456789abcdef"


@pytest.mark.django_db
def test_ensure_creates_the_group_and_the_stream_once(account):
    first = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)
    again = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)

    assert again.pk == first.pk
    assert first.group.name == GROUP and first.group.account_id == account.pk
    assert LogGroup.objects.filter(account=account).count() == 1
    assert LogStream.objects.filter(group__account=account).count() == 1


@pytest.mark.django_db
def test_ensure_puts_a_second_stream_in_the_same_group(account):
    first = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)
    second = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM + "2")

    assert second.pk != first.pk and second.group_id == first.group_id


@pytest.mark.django_db
def test_the_same_names_in_another_account_are_another_group(account, other_account):
    mine = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)
    theirs = services.log_stream_ensure(account=other_account, group_name=GROUP, stream_name=STREAM)

    assert theirs.group_id != mine.group_id


@pytest.mark.django_db(transaction=True)
def test_ensure_is_safe_when_many_workers_ask_at_once(account):
    # Given eight workers starting together, each ensuring the same stream in a group none of them has yet
    start, found, failures = threading.Barrier(8), [], []

    def worker():
        try:
            start.wait(timeout=10)
            found.append(services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM).pk)
        except Exception as error:  # noqa: BLE001 - the test reports every failure
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # Then every one of them gets the one stream, and one group holds it
    assert failures == []
    assert len(found) == 8 and len(set(found)) == 1
    assert LogGroup.objects.filter(account=account, name=GROUP).count() == 1
    assert LogStream.objects.filter(group__account=account).count() == 1


@pytest.mark.django_db
def test_ensure_reads_the_group_another_caller_created_in_between(account, monkeypatch):
    # Given another worker that creates the group just after this one found it missing
    create = services.log_group_create

    def created_first_elsewhere(**kwargs):
        LogGroup.objects.create(account=account, name=GROUP)
        return create(**kwargs)

    monkeypatch.setattr(services, "log_group_create", created_first_elsewhere)

    stream = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)

    assert stream.group.name == GROUP
    assert LogGroup.objects.filter(account=account, name=GROUP).count() == 1


@pytest.mark.django_db
def test_ensure_reads_the_stream_another_caller_created_in_between(account, monkeypatch):
    create = services.log_stream_create

    def created_first_elsewhere(*, group, stream_name):
        LogStream.objects.create(group=group, name=stream_name)
        return create(group=group, stream_name=stream_name)

    monkeypatch.setattr(services, "log_stream_create", created_first_elsewhere)

    stream = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)

    assert LogStream.objects.filter(group__account=account, name=STREAM).get().pk == stream.pk


@pytest.mark.django_db
def test_putting_events_is_one_insert_and_nothing_else(account):
    stream = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)
    events = [(1_700_000_000_000 + n, f"line {n}") for n in range(100)]

    with CaptureQueriesContext(connection) as queries:
        services.log_events_put(stream=stream, events=events)

    statements = [query["sql"] for query in queries.captured_queries]
    assert len(statements) == 1 and statements[0].startswith("INSERT INTO")
    stored = list(LogEvent.objects.filter(stream=stream).order_by("id"))
    assert [(event.timestamp, event.message) for event in stored] == events
    assert {event.group_id for event in stored} == {stream.group_id}
    assert all(event.ingestion_time >= event.timestamp for event in stored)


@pytest.mark.django_db
def test_putting_no_events_sends_no_query(account):
    stream = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)

    with CaptureQueriesContext(connection) as queries:
        services.log_events_put(stream=stream, events=[])

    assert queries.captured_queries == []


@pytest.mark.django_db
def test_a_line_over_256_kb_is_cut_at_256_kb_counting_the_events_26_bytes(account):
    stream = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)

    services.log_events_put(stream=stream, events=[(1, "x" * 300_000), (2, "short")])

    long, short = LogEvent.objects.filter(stream=stream).order_by("timestamp")
    assert long.message == "x" * (256 * 1024 - 26)
    assert long.size == 256 * 1024
    assert short.message == "short"


@pytest.mark.django_db
def test_a_cut_never_splits_a_character(account):
    stream = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)

    services.log_events_put(stream=stream, events=[(1, "é" * 200_000)])  # 2 bytes each, 400,000 bytes

    stored = LogEvent.objects.get(stream=stream).message
    assert stored == "é" * ((256 * 1024 - 26) // 2)


@pytest.mark.django_db
def test_deleting_a_group_deletes_its_streams_and_events(account):
    stream = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)
    services.log_events_put(stream=stream, events=[(1, "a"), (2, "b")])

    services.log_group_delete(account=account, group_name=GROUP)

    assert not LogGroup.objects.filter(account=account).exists()
    assert not LogStream.objects.filter(pk=stream.pk).exists()
    assert not LogEvent.objects.filter(stream_id=stream.pk).exists()


@pytest.mark.django_db
def test_deleting_a_group_the_account_does_not_have_is_not_found(account, other_account):
    services.log_stream_ensure(account=other_account, group_name=GROUP, stream_name=STREAM)

    with pytest.raises(LogGroupNotFound):
        services.log_group_delete(account=account, group_name=GROUP)
    assert LogGroup.objects.filter(account=other_account).count() == 1


@pytest.mark.django_db
def test_removing_an_accounts_groups_leaves_other_accounts_alone(account, other_account):
    for name in ("/aws/lambda/a", "/aws/lambda/b"):
        services.log_stream_ensure(account=account, group_name=name, stream_name=STREAM)
    services.log_stream_ensure(account=other_account, group_name="/aws/lambda/a", stream_name=STREAM)

    assert services.log_groups_remove_for_account(account=account) == 2

    assert not LogGroup.objects.filter(account=account).exists()
    assert LogGroup.objects.filter(account=other_account).count() == 1


@pytest.mark.django_db
def test_an_account_at_its_cap_of_groups_gets_no_new_one(account, monkeypatch):
    monkeypatch.setattr(services, "LOG_GROUPS_PER_ACCOUNT", 2)
    services.log_group_create(account=account, group_name="/one")
    services.log_stream_ensure(account=account, group_name="/two", stream_name=STREAM)

    with pytest.raises(LimitExceeded) as caught:
        services.log_stream_ensure(account=account, group_name="/three", stream_name=STREAM)

    assert (caught.value.code, caught.value.message) == ("LimitExceededException", "Resource limit exceeded.")
    # A stream in a group it has still comes.
    assert services.log_stream_ensure(account=account, group_name="/two", stream_name="another").pk


@pytest.mark.django_db
def test_an_account_at_its_cap_of_streams_gets_no_new_one(account, monkeypatch):
    monkeypatch.setattr(services, "LOG_STREAMS_PER_ACCOUNT", 2)
    services.log_stream_ensure(account=account, group_name="/one", stream_name="a")
    services.log_stream_ensure(account=account, group_name="/two", stream_name="b")

    with pytest.raises(LimitExceeded):
        services.log_stream_ensure(account=account, group_name="/one", stream_name="c")


@pytest.mark.django_db
def test_only_aws_retention_periods_are_accepted(account):
    group = services.log_group_create(account=account, group_name=GROUP)

    with pytest.raises(InvalidParameter) as caught:
        services.log_retention_put(group=group, retention_in_days=2)

    assert caught.value.message == (
        "1 validation error detected: Value '2' at 'retentionInDays' failed to satisfy constraint: Member must "
        "satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, "
        "2557, 2922, 3288, 3653]")
    services.log_retention_put(group=group, retention_in_days=14)
    assert LogGroup.objects.get(pk=group.pk).retention_in_days == 14


# --- what a console page polls with -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_first_poll_gets_the_newest_lines_oldest_first(account):
    stream = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)
    services.log_events_put(stream=stream, events=[(1000 + n, f"line {n}") for n in range(10)])

    events = selectors.log_events_after(account=account, group_name=GROUP, after_id=None, limit=3)

    assert [event.message for event in events] == ["line 7", "line 8", "line 9"]
    assert events[0].stream.name == STREAM


@pytest.mark.django_db
def test_a_later_poll_gets_only_what_was_stored_since(account):
    stream = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)
    services.log_events_put(stream=stream, events=[(1000, "old")])
    seen = selectors.log_events_after(account=account, group_name=GROUP, after_id=None, limit=50)
    services.log_events_put(stream=stream, events=[(900, "late but new"), (2000, "newer")])

    events = selectors.log_events_after(account=account, group_name=GROUP, after_id=seen[-1].pk, limit=50)

    assert [event.message for event in events] == ["late but new", "newer"]


@pytest.mark.django_db
def test_a_poll_is_bounded_whatever_it_asks_for(account):
    stream = services.log_stream_ensure(account=account, group_name=GROUP, stream_name=STREAM)
    services.log_events_put(stream=stream, events=[(n, "x") for n in range(selectors.EVENTS_AFTER_MAX + 5)])

    events = selectors.log_events_after(account=account, group_name=GROUP, after_id=0, limit=10**9)

    assert len(events) == selectors.EVENTS_AFTER_MAX


@pytest.mark.django_db
def test_a_poll_of_another_accounts_group_reads_nothing(account, other_account):
    stream = services.log_stream_ensure(account=other_account, group_name=GROUP, stream_name=STREAM)
    services.log_events_put(stream=stream, events=[(1, "secret")])

    assert selectors.log_events_after(account=account, group_name=GROUP, after_id=None, limit=50) == []
    assert selectors.log_events_after(account=account, group_name=GROUP, after_id=0, limit=50) == []
