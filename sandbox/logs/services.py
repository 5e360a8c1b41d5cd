"""Writes to CloudWatch Logs: groups and streams (made on demand for functions), events in bulk, retention, expiry."""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet, Sum

from sandbox.awsapi.models import AwsAccount

from .errors import (InvalidParameter, LimitExceeded, LogGroupAlreadyExists, LogGroupNotFound, LogStreamAlreadyExists,
                     LogStreamNotFound)
from .models import LogEvent, LogGroup, LogStream

log = logging.getLogger(__name__)

# CloudWatch counts 26 bytes for every event on top of its message's UTF-8 bytes, both for PutLogEvents' batch size
# and for the size of one event.
EVENT_OVERHEAD_BYTES = 26
# PutLogEvents' limits: a batch of at most 10,000 events and 1 MB counted as above; since April 2025 one event may be
# as large as the whole batch (1 MB; it was 256 KB before).
BATCH_MAX_BYTES = 1_048_576
BATCH_MAX_EVENTS = 10_000
EVENT_MAX_BYTES = 1_048_576
# Lambda delivers a function's log lines itself and still cuts each one at 256 KB, counted as above.
LAMBDA_EVENT_MAX_BYTES = 256 * 1024
# How far from now PutLogEvents accepts an event's timestamp, and how long a batch may span.
EVENT_MAX_AGE_MS = 14 * 86_400_000
EVENT_MAX_AHEAD_MS = 2 * 3_600_000
BATCH_MAX_SPAN_MS = 86_400_000
# AWS allows a million log groups per Region and any number of streams; a learner needs a few dozen, and these caps
# are what keep the rows one account can make bounded (the storage cap bounds their events).
LOG_GROUPS_PER_ACCOUNT = 200
LOG_STREAMS_PER_ACCOUNT = 10_000
# The only retention periods PutRetentionPolicy accepts.
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
                  3653)

_DAY_MS = 86_400_000
# Rows deleted per statement by the expiry task, so that it never holds SQLite's write lock for long: a function
# writing its log waits for it.
_DELETE_BATCH = 2000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def event_size(message: str) -> int:
    """How many bytes CloudWatch counts for an event with this message."""
    return len(message.encode("utf-8", "replace")) + EVENT_OVERHEAD_BYTES


# --- Groups and streams -------------------------------------------------------------------------------------------

def _account_lock(account: AwsAccount) -> None:
    """Makes a count and the insert after it one step (two requests at once cannot both pass a cap); call it inside
    transaction.atomic(). SQLite's transactions here begin IMMEDIATE, which serialises them already."""
    AwsAccount.objects.select_for_update().filter(pk=account.pk).first()


def log_group_create(*, account: AwsAccount, group_name: str, log_group_class: str = "STANDARD") -> LogGroup:
    """A new, empty log group that never expires. Raises LogGroupAlreadyExists, or LimitExceeded when the account
    has LOG_GROUPS_PER_ACCOUNT groups already."""
    with transaction.atomic():
        _account_lock(account)
        if LogGroup.objects.filter(account=account).count() >= LOG_GROUPS_PER_ACCOUNT:
            raise LimitExceeded()
        try:
            with transaction.atomic():
                group = LogGroup.objects.create(account=account, name=group_name, log_group_class=log_group_class)
        except IntegrityError:
            raise LogGroupAlreadyExists() from None
    log.info("log group %s created in AWS account %s", group_name, account.account_id)
    return group


def log_stream_create(*, group: LogGroup, stream_name: str) -> LogStream:
    """A new, empty stream in the group. Raises LogStreamAlreadyExists, or LimitExceeded when the account has
    LOG_STREAMS_PER_ACCOUNT streams already."""
    with transaction.atomic():
        _account_lock(group.account)
        if LogStream.objects.filter(group__account_id=group.account_id).count() >= LOG_STREAMS_PER_ACCOUNT:
            raise LimitExceeded()
        try:
            with transaction.atomic():
                stream = LogStream.objects.create(group=group, name=stream_name)
        except IntegrityError:
            raise LogStreamAlreadyExists() from None
    return stream


def log_stream_ensure(*, account: AwsAccount, group_name: str, stream_name: str) -> LogStream:
    """The stream, creating it and its group when missing, as Lambda does before it writes a function's log.

    Safe to call from many workers at once: one of them creates each row and the others read it. Raises
    LimitExceeded when the account is at its cap of groups or streams; Lambda then drops the log lines (the
    invocation itself goes on), which is what a caller should do too.
    """
    stream = (LogStream.objects.select_related("group")
              .filter(group__account=account, group__name=group_name, name=stream_name).first())
    if stream is not None:
        return stream
    group = LogGroup.objects.filter(account=account, name=group_name).first()
    if group is None:
        try:
            group = log_group_create(account=account, group_name=group_name)
        except LogGroupAlreadyExists:
            group = LogGroup.objects.get(account=account, name=group_name)
    group.account = account
    try:
        return log_stream_create(group=group, stream_name=stream_name)
    except LogStreamAlreadyExists:
        return LogStream.objects.select_related("group").get(group=group, name=stream_name)


def log_group_delete(*, account: AwsAccount, group_name: str) -> None:
    """Deletes the group with its streams and events. Raises LogGroupNotFound when the account has no such group."""
    deleted, _ = LogGroup.objects.filter(account=account, name=group_name).delete()
    if not deleted:
        raise LogGroupNotFound()
    log.info("log group %s deleted from AWS account %s", group_name, account.account_id)


def log_stream_delete(*, group: LogGroup, stream_name: str) -> None:
    """Deletes the stream and its events. Raises LogStreamNotFound."""
    deleted, _ = LogStream.objects.filter(group=group, name=stream_name).delete()
    if not deleted:
        raise LogStreamNotFound()


def log_groups_remove_for_account(*, account: AwsAccount) -> int:
    """Deletes every log group of the account (when the account goes); returns how many there were."""
    groups = LogGroup.objects.filter(account=account)
    count = groups.count()
    groups.delete()
    return count


def log_retention_put(*, group: LogGroup, retention_in_days: int) -> None:
    """Events older than this many days are deleted by the expiry task. Only AWS's own periods are accepted."""
    if retention_in_days not in RETENTION_DAYS:
        allowed = ", ".join(str(days) for days in RETENTION_DAYS)
        raise InvalidParameter(f"1 validation error detected: Value '{retention_in_days}' at 'retentionInDays' "
                               f"failed to satisfy constraint: Member must satisfy enum value set: [{allowed}]")
    LogGroup.objects.filter(pk=group.pk).update(retention_in_days=retention_in_days)
    group.retention_in_days = retention_in_days


def log_retention_delete(*, group: LogGroup) -> None:
    """Back to "Never expire" (which Sandcloud bounds with SANDCLOUD_LOGS_MAX_DAYS)."""
    LogGroup.objects.filter(pk=group.pk).update(retention_in_days=None)
    group.retention_in_days = None


# --- Events -------------------------------------------------------------------------------------------------------

def _clean(message: str, limit: int | None = None) -> str:
    """The message as valid UTF-8 (a lone surrogate, which JSON can carry, becomes "?"), at most `limit` bytes long,
    cut on a character boundary: a character cut in half is dropped, not mangled."""
    raw = message.encode("utf-8", "replace")
    return raw[:limit].decode("utf-8", "ignore")


def log_events_put(*, stream: LogStream, events: list[tuple[int, str]]) -> None:
    """Stores `events` ((timestamp in ms, message) pairs) in the stream, with one bulk INSERT and no other query.

    This is how functions write their log, on the path of every invocation, so it checks nothing that would need
    a query: the caller owns the stream (log_stream_ensure). A message longer than 256 KB (262,144 bytes counting
    the 26 bytes CloudWatch adds to every event) is cut there, as Lambda cuts a line its function printed: the
    line is kept, shortened, never refused or split. (PutLogEvents itself now takes events up to 1 MB; Lambda's
    own delivery keeps the 256 KB cut.) On SQLite, Django sends at most 166 rows per INSERT (999 parameters), so
    only a batch larger than that takes more than one statement, all in one transaction.
    """
    _events_insert(stream, [(timestamp, _clean(message, LAMBDA_EVENT_MAX_BYTES - EVENT_OVERHEAD_BYTES))
                            for timestamp, message in events])


def _events_insert(stream: LogStream, events: list[tuple[int, str]]) -> None:
    if not events:
        return
    ingested = now_ms()
    LogEvent.objects.bulk_create([
        LogEvent(stream_id=stream.pk, group_id=stream.group_id, timestamp=int(timestamp), ingestion_time=ingested,
                 message=message, size=event_size(message)) for timestamp, message in events])


@dataclass
class Rejected:
    """PutLogEvents' rejectedLogEventsInfo: indexes into the batch (start inclusive, ends exclusive)."""

    too_new_start: int | None = None
    too_old_end: int | None = None
    expired_end: int | None = None

    def as_output(self) -> dict | None:
        out = {"tooNewLogEventStartIndex": self.too_new_start, "tooOldLogEventEndIndex": self.too_old_end,
               "expiredLogEventEndIndex": self.expired_end}
        out = {key: value for key, value in out.items() if value is not None}
        return out or None


def log_events_submit(*, stream: LogStream, events: list[tuple[int, str]], now: int | None = None) -> Rejected:
    """PutLogEvents: checks the batch as CloudWatch does, stores the events it accepts, says which it rejected.

    A batch out of chronological order, over 1,048,576 bytes (26 bytes counted per event) or whose accepted events
    span more than 24 hours is refused whole (InvalidParameter). Events more than 14 days old, older than the
    group's retention, or more than 2 hours ahead are rejected one by one and the others stored.
    """
    now = now_ms() if now is None else now
    if len(events) > BATCH_MAX_EVENTS:
        raise InvalidParameter(f"The maximum number of log events in a batch is {BATCH_MAX_EVENTS}.")
    events = [(int(timestamp), _clean(message)) for timestamp, message in events]
    total = 0
    for index, (timestamp, message) in enumerate(events):
        size = event_size(message)
        if size > EVENT_MAX_BYTES:
            raise InvalidParameter(f"Log event too large: {size} bytes exceeds limit of {EVENT_MAX_BYTES}")
        total += size
        if index and timestamp < events[index - 1][0]:
            raise InvalidParameter("Log events in a single PutLogEvents request must be in chronological order.")
    if total > BATCH_MAX_BYTES:
        raise InvalidParameter(f"Upload too large: {total} bytes exceeds limit of {BATCH_MAX_BYTES}")

    rejected = Rejected()
    oldest, newest = now - EVENT_MAX_AGE_MS, now + EVENT_MAX_AHEAD_MS
    retention = stream.group.retention_in_days
    expired_before = now - retention * _DAY_MS if retention else None
    accepted = []
    # The batch is in order, so what is rejected is a run at its start (too old, or past the group's retention)
    # and one at its end (too new).
    for index, (timestamp, message) in enumerate(events):
        if timestamp > newest:
            rejected.too_new_start = index
            break
        if timestamp < oldest:
            rejected.too_old_end = index + 1
        elif expired_before is not None and timestamp < expired_before:
            rejected.expired_end = index + 1
        else:
            accepted.append((timestamp, message))
    if accepted and accepted[-1][0] - accepted[0][0] > BATCH_MAX_SPAN_MS:
        raise InvalidParameter("The batch of log events in a single PutLogEvents request cannot span more than "
                               "24 hours.")
    _events_insert(stream, accepted)
    return rejected


# --- Expiry: retention, the storage cap, old empty streams ---------------------------------------------------------

def _max_days() -> int:
    return int(settings.SANDCLOUD_LOGS_MAX_DAYS)


def _cap_bytes() -> int:
    return round(float(settings.SANDCLOUD_LOGS_MAX_MB_PER_ACCOUNT) * 1024 * 1024)


def _delete_in_batches(events: QuerySet) -> int:
    deleted = 0
    while True:
        ids = list(events.values_list("pk", flat=True)[:_DELETE_BATCH])
        if not ids:
            return deleted
        deleted += LogEvent.objects.filter(pk__in=ids).delete()[0]


def _expire_by_retention(now: int) -> int:
    """Deletes events older than their group's retention, and any older than SANDCLOUD_LOGS_MAX_DAYS."""
    max_days = _max_days()
    shorter = set(LogGroup.objects.filter(retention_in_days__lt=max_days)
                  .values_list("retention_in_days", flat=True).distinct())
    deleted = 0
    for days in sorted(shorter):
        groups = LogGroup.objects.filter(retention_in_days=days)
        deleted += _delete_in_batches(LogEvent.objects.filter(group__in=groups, timestamp__lt=now - days * _DAY_MS))
    # Everything else ("Never expire" and periods beyond the bound) is kept SANDCLOUD_LOGS_MAX_DAYS.
    unbounded = LogGroup.objects.exclude(retention_in_days__lt=max_days)
    deleted += _delete_in_batches(LogEvent.objects.filter(group__in=unbounded,
                                                          timestamp__lt=now - max_days * _DAY_MS))
    return deleted


def _trim_to_cap() -> tuple[int, int]:
    """Deletes each account's oldest events (by timestamp) until the account holds at most the cap. Returns the
    number of accounts that were over it and the number of events deleted.

    One aggregate over every event each run: about a second per few million events on SQLite. Should Sandcloud
    outgrow that, keep a running byte count per group instead.
    """
    cap = _cap_bytes()
    per_group = dict(LogEvent.objects.values("group_id").annotate(total=Sum("size")).values_list("group_id", "total"))
    accounts: dict[tuple[int, str], int] = defaultdict(int)
    for group_id, account_pk, account_id in LogGroup.objects.values_list("pk", "account_id", "account__account_id"):
        accounts[account_pk, account_id] += per_group.get(group_id, 0)
    over = {account: total - cap for account, total in accounts.items() if total > cap}
    deleted = 0
    for (account_pk, account_id), excess in over.items():
        oldest = LogEvent.objects.filter(group__account_id=account_pk).order_by("timestamp", "id")
        freed = removed = 0
        # A batch at a time, so that a flood of small events never becomes one huge list of ids.
        while freed < excess:
            doomed = []
            for pk, size in oldest.values_list("pk", "size")[:_DELETE_BATCH]:
                doomed.append(pk)
                freed += size
                if freed >= excess:
                    break
            if not doomed:
                break
            removed += LogEvent.objects.filter(pk__in=doomed).delete()[0]
        deleted += removed
        log.info("AWS account %s was %s bytes over its log storage cap: %s oldest events deleted", account_id,
                 excess, removed)
    return len(over), deleted


def _remove_old_empty_streams(now: int) -> int:
    """Streams whose events have all expired and that are older than SANDCLOUD_LOGS_MAX_DAYS: what is left of a
    function's old execution environments. (AWS keeps them; the bound on an account's rows needs them gone.)"""
    before = datetime.fromtimestamp((now - _max_days() * _DAY_MS) / 1000, tz=dt_timezone.utc)
    empty = (LogStream.objects.filter(created__lt=before)
             .filter(~Exists(LogEvent.objects.filter(stream=OuterRef("pk")))))
    count = 0
    for ids in _chunks(list(empty.values_list("pk", flat=True)), _DELETE_BATCH):
        count += LogStream.objects.filter(pk__in=ids).delete()[0]
    return count


def _chunks(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def logs_expire(*, now: int | None = None) -> dict[str, int]:
    """What the periodic task runs: retention, then the per-account storage cap (oldest events first), then old
    empty streams. Safe to run twice at once or again after a crash: it only ever deletes what is past a bound."""
    now = now_ms() if now is None else now
    expired = _expire_by_retention(now)
    accounts_over, trimmed = _trim_to_cap()
    streams = _remove_old_empty_streams(now)
    if expired or trimmed or streams:
        log.info("logs expiry: %s events past retention, %s over the storage cap of %s accounts, %s empty streams",
                 expired, trimmed, accounts_over, streams)
    return {"expired": expired, "trimmed": trimmed, "accounts_over_cap": accounts_over, "streams_removed": streams}


__all__ = ["log_group_create", "log_stream_create", "log_stream_ensure", "log_group_delete", "log_stream_delete",
           "log_groups_remove_for_account", "log_retention_put", "log_retention_delete", "log_events_put",
           "log_events_submit", "logs_expire", "Rejected", "event_size", "now_ms"]
