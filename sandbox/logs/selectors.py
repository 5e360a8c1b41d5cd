"""Reads of CloudWatch Logs, always within one account: groups, streams with their event times, events."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Max, Min, Q, QuerySet, Sum

from sandbox.awsapi.models import AwsAccount

from .models import LogEvent, LogGroup, LogStream
from .patterns import FilterPattern

# A console page polling for new lines gets at most this many per poll.
EVENTS_AFTER_MAX = 1000
# A page of events carries at most 1 MB of them, as GetLogEvents' and FilterLogEvents' pages do.
PAGE_MAX_BYTES = 1_048_576
# How much of a group one FilterLogEvents call reads before it answers with what it found and a nextToken (AWS's
# pages too may be "partially full, or even empty"): enough for any page of a learner's log, little enough that a
# pattern matching nothing in a full account returns in well under a second.
SCAN_MAX_ROWS = 20_000
SCAN_MAX_BYTES = 16 * 1_048_576
# Rows fetched from the database at a time while reading: events can be 1 MB each.
_FETCH = 100

Position = tuple[int, int]  # (timestamp, id): where an event sits in a stream or a group read by time


def log_group_for(*, account: AwsAccount, name: str) -> LogGroup | None:
    return LogGroup.objects.filter(account=account, name=name).first()


def log_groups_for(*, account: AwsAccount, prefix: str = "", pattern: str = "") -> list[LogGroup]:
    """The account's groups whose name starts with `prefix` and contains `pattern`, by name (at most
    LOG_GROUPS_PER_ACCOUNT, so a list). Compared here, case-sensitively as AWS does: SQLite's LIKE is not."""
    groups = LogGroup.objects.filter(account=account)
    if prefix:
        groups = groups.filter(name__startswith=prefix)
    if pattern:
        groups = groups.filter(name__contains=pattern)
    found = [group for group in groups if group.name.startswith(prefix) and pattern in group.name]
    return sorted(found, key=lambda group: group.name)


def log_groups_stored_bytes(*, groups: list[LogGroup]) -> dict[int, int]:
    """Bytes stored per group id (messages plus CloudWatch's 26 bytes per event)."""
    totals = (LogEvent.objects.filter(group__in=[group.pk for group in groups]).values("group_id")
              .annotate(total=Sum("size")).values_list("group_id", "total"))
    return dict(totals)


def log_stream_for(*, group: LogGroup, name: str) -> LogStream | None:
    stream = LogStream.objects.filter(group=group, name=name).first()
    if stream is not None:
        stream.group = group
    return stream


def log_streams_for(*, group: LogGroup, prefix: str = "") -> list[LogStream]:
    """The group's streams whose name starts with `prefix` (case-sensitively), unordered."""
    streams = LogStream.objects.filter(group=group)
    if prefix:
        streams = streams.filter(name__startswith=prefix)
    return [stream for stream in streams.only("pk", "name", "created", "group_id") if stream.name.startswith(prefix)]


def log_streams_event_times(*, group: LogGroup, stream_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """Per stream id (of the group, or only of `stream_ids`): first and last event timestamp and last ingestion
    time; streams without events are absent."""
    events = LogEvent.objects.filter(group=group)
    if stream_ids is not None:
        events = events.filter(stream_id__in=stream_ids)
    rows = (events.values("stream_id")
            .annotate(first=Min("timestamp"), last=Max("timestamp"), ingested=Max("ingestion_time")))
    return {row["stream_id"]: row for row in rows}


def _after(position: Position) -> Q:
    timestamp, pk = position
    return Q(timestamp__gt=timestamp) | Q(timestamp=timestamp, pk__gt=pk)


def _before(position: Position) -> Q:
    timestamp, pk = position
    return Q(timestamp__lt=timestamp) | Q(timestamp=timestamp, pk__lt=pk)


def _by_time(events: QuerySet, *, ascending: bool) -> QuerySet:
    return events.order_by("timestamp", "id") if ascending else events.order_by("-timestamp", "-id")


def _taken(events: Iterable[LogEvent], *, limit: int, max_bytes: int) -> list[LogEvent]:
    """The first events, up to `limit` of them and `max_bytes` (always at least one)."""
    out, used = [], 0
    for event in events:
        if len(out) >= limit or (out and used + event.size > max_bytes):
            break
        out.append(event)
        used += event.size
    return out


def log_stream_events(*, stream: LogStream, start_time: int | None, end_time: int | None, after: Position | None,
                      before: Position | None, from_head: bool, limit: int) -> list[LogEvent]:
    """GetLogEvents' read of one stream, oldest first: events with start_time <= timestamp < end_time, those just
    after `after`, else just before `before`, else the first (`from_head`) or the last ones; at most `limit` and
    PAGE_MAX_BYTES."""
    events = LogEvent.objects.filter(stream=stream)
    if start_time is not None:
        events = events.filter(timestamp__gte=start_time)
    if end_time is not None:
        events = events.filter(timestamp__lt=end_time)
    ascending = from_head
    if after is not None:
        events, ascending = events.filter(_after(after)), True
    elif before is not None:
        events, ascending = events.filter(_before(before)), False
    read = _by_time(events, ascending=ascending).iterator(chunk_size=_FETCH)
    page = _taken(read, limit=limit, max_bytes=PAGE_MAX_BYTES)
    return page if ascending else page[::-1]


@dataclass
class Scan:
    """What one FilterLogEvents call found, and where the next call goes on (None: the group is read to the end)."""

    events: list[LogEvent]
    resume_after: Position | None


def log_group_events_scan(*, group: LogGroup, stream_names: list[str] | None, stream_prefix: str,
                          start_time: int | None, end_time: int | None, pattern: FilterPattern,
                          after: Position | None, newest_first: bool, limit: int) -> Scan:
    """FilterLogEvents' read of a group by time (streams interleaved): matching events with start_time <= timestamp
    <= end_time after `after`, at most `limit` and PAGE_MAX_BYTES, reading at most SCAN_MAX_ROWS / SCAN_MAX_BYTES."""
    events = LogEvent.objects.filter(group=group).filter(pattern.prefilter()).select_related("stream")
    if stream_names is not None:
        events = events.filter(stream__name__in=stream_names)
    if stream_prefix:
        events = events.filter(stream__name__startswith=stream_prefix)
    if start_time is not None:
        events = events.filter(timestamp__gte=start_time)
    if end_time is not None:
        events = events.filter(timestamp__lte=end_time)
    if after is not None:
        events = events.filter(_before(after) if newest_first else _after(after))
    found, used, scanned, scanned_bytes, last = [], 0, 0, 0, None
    for event in _by_time(events, ascending=not newest_first).iterator(chunk_size=_FETCH):
        if len(found) >= limit or scanned >= SCAN_MAX_ROWS or scanned_bytes >= SCAN_MAX_BYTES:
            return Scan(found, last)
        # The database's prefix and pattern tests may ignore case (SQLite's LIKE); these do not.
        if event.stream.name.startswith(stream_prefix) and pattern.matches(event.message):
            if found and used + event.size > PAGE_MAX_BYTES:
                return Scan(found, last)
            found.append(event)
            used += event.size
        scanned += 1
        scanned_bytes += event.size
        last = (event.timestamp, event.pk)
    return Scan(found, None)


def log_events_after(*, account: AwsAccount, group_name: str, after_id: int | None, limit: int) -> list[LogEvent]:
    """For a page that polls a group for new lines: the events stored after event `after_id`, in the order they
    were stored (with their stream), at most `limit` (itself at most EVENTS_AFTER_MAX). With no `after_id`, the
    group's newest events, oldest first, to start from. A page holds at most PAGE_MAX_BYTES of messages. Another
    account's group reads as empty."""
    limit = max(1, min(int(limit), EVENTS_AFTER_MAX))
    events = LogEvent.objects.filter(group__account=account, group__name=group_name).select_related("stream")
    if after_id is None:
        newest = _taken(_by_time(events, ascending=False).iterator(chunk_size=_FETCH), limit=limit,
                        max_bytes=PAGE_MAX_BYTES)
        return sorted(newest, key=lambda event: event.pk)
    read = events.filter(pk__gt=after_id).order_by("id").iterator(chunk_size=_FETCH)
    return _taken(read, limit=limit, max_bytes=PAGE_MAX_BYTES)
