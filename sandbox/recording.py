"""Terminal recordings in asciicast v2: written while the owner types, kept within caps, cut into windows for replay."""
from __future__ import annotations

import json
import logging
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from .models import Sandbox, TerminalRecording
from .states import FINAL

log = logging.getLogger(__name__)

MB = 1024 * 1024
FLUSH_SECONDS = 2.0


class RecordingExpired(Exception):
    """The replayed minutes were recorded, but the files are gone; str() tells the viewer why."""


def recordings_dir() -> Path:
    path = Path(settings.SANDCLOUD["RECORDINGS_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cap(name: str) -> int:
    return int(settings.SANDCLOUD[name] * MB)


class Recorder:
    """Appends terminal output to an asciicast v2 file. Synchronous and buffered: each call is a memory write.
    Writes stop at `max_bytes` (the session's cap), which is what recording_start reserves for a live session."""

    def __init__(self, recording: TerminalRecording, *, max_bytes: int):
        self.recording = recording
        self.max_bytes = max_bytes
        self.started = time.monotonic()
        self.file = open(recording.path, "a", encoding="utf-8")
        self.size = 0
        self.last_flush = self.started
        header = {"version": 2, "width": recording.width, "height": recording.height,
                  "timestamp": int(recording.started_at.timestamp()), "env": {"TERM": "xterm-256color"}}
        self._write(json.dumps(header) + "\n")

    def _write(self, line: str) -> None:
        # json.dumps escapes everything outside ASCII, so characters are bytes here.
        if self.size + len(line) > self.max_bytes:
            self.recording.truncated = True
            return
        self.size += len(line)
        self.file.write(line)
        now = time.monotonic()
        if now - self.last_flush > FLUSH_SECONDS:
            self.file.flush()
            self.last_flush = now

    def output(self, data: bytes) -> None:
        self._event("o", data.decode("utf-8", "replace"))

    def resize(self, *, cols: int, rows: int) -> None:
        self._event("r", f"{cols}x{rows}")

    def _event(self, kind: str, text: str) -> None:
        self._write(json.dumps([round(time.monotonic() - self.started, 6), kind, text]) + "\n")

    def close(self) -> TerminalRecording:
        self.file.close()
        TerminalRecording.objects.filter(pk=self.recording.pk).update(
            ended_at=timezone.now(), size_bytes=self.size, truncated=self.recording.truncated)
        return self.recording


def recording_start(*, sandbox: Sandbox, cols: int = 120, rows: int = 32) -> Recorder | None:
    """A recorder for a new owner session, or None when the session cannot be recorded.

    A sandbox's recordings stop at RECORDING_MAX_MB (a learner reconnecting in a loop while flooding the screen must
    not fill the disk). The owner's recordings (RECORDING_LEARNER_MAX_MB) and everybody's (RECORDING_TOTAL_MAX_MB)
    make room instead: their oldest finished sessions are removed until one more session fits. Every session being
    written counts as a full RECORDING_SESSION_MAX_MB, where its writes stop, so no total can overshoot its cap."""
    session = _cap("RECORDING_SESSION_MAX_MB")
    if _load(sandbox.recordings.all(), session=session) + session > _cap("RECORDING_MAX_MB"):
        return None
    with transaction.atomic():
        # One learner's sessions start one at a time (the row lock on PostgreSQL; SQLite's writers queue anyway), so
        # two of them cannot both take the last room.
        list(get_user_model().objects.select_for_update().filter(pk=sandbox.owner_id).values_list("pk"))
        for recordings, cap in ((TerminalRecording.objects.filter(sandbox__owner_id=sandbox.owner_id),
                                 _cap("RECORDING_LEARNER_MAX_MB")),
                                (TerminalRecording.objects.all(), _cap("RECORDING_TOTAL_MAX_MB"))):
            if _room_make(recordings, cap=cap, session=session, needed=session) is None:
                log.warning("not recording sandbox %s: recordings in progress fill the %s-byte cap", sandbox.pk, cap)
                transaction.set_rollback(True)  # keep what the learner's scope removed: this session is not recorded
                return None
        started = timezone.now()
        folder = recordings_dir() / f"sandbox-{sandbox.pk}"
        folder.mkdir(exist_ok=True)
        recording = TerminalRecording.objects.create(
            sandbox=sandbox, started_at=started, width=cols, height=rows,
            path=str(folder / f"{started.strftime('%Y%m%dT%H%M%S.%f')}.cast"))
    return Recorder(recording, max_bytes=session)


def _load(recordings: models.QuerySet, *, session: int) -> int:
    """Bytes the recordings hold or may still write: finished sessions by size, sessions in progress at their cap."""
    totals = recordings.aggregate(size=models.Sum("size_bytes", filter=models.Q(ended_at__isnull=False)),
                                  live=models.Count("pk", filter=models.Q(ended_at__isnull=True)))
    return (totals["size"] or 0) + totals["live"] * session


def _room_make(recordings: models.QuerySet, *, cap: int, session: int, needed: int) -> int | None:
    """Removes the oldest finished recordings until `needed` more bytes fit under `cap`; returns how many it removed,
    or None (removing nothing) when the sessions in progress alone leave no room."""
    load = _load(recordings, session=session)
    if load + needed <= cap:
        return 0
    live = recordings.filter(ended_at__isnull=True).count() * session
    if live + needed > cap:
        return None
    excess, doomed = load + needed - cap, []
    for recording in (recordings.filter(ended_at__isnull=False).exclude(path="").order_by("started_at", "pk")
                      .only("pk", "path", "size_bytes").iterator()):
        if excess <= 0:
            break
        doomed.append(recording)
        excess -= recording.size_bytes
    _forget(doomed)
    return len(doomed)


def _forget(recordings: list[TerminalRecording]) -> None:
    """Removes the files but keeps the rows, emptied, so a replay of those minutes can say they expired."""
    if not recordings:
        return
    TerminalRecording.objects.filter(pk__in=[r.pk for r in recordings]).update(path="", size_bytes=0)
    paths = [r.path for r in recordings]
    transaction.on_commit(lambda: [_unlink(path) for path in paths])
    log.info("removed %d terminal recordings (%d bytes) to stay under the recording caps",
             len(recordings), sum(r.size_bytes for r in recordings))


def _unlink(path: str) -> None:
    if not path:
        return
    Path(path).unlink(missing_ok=True)
    try:
        os.rmdir(Path(path).parent)  # the sandbox's folder, once its last session is gone
    except OSError:
        pass


@receiver(post_delete, sender=TerminalRecording, dispatch_uid="terminal-recording-file")
def _recording_deleted(sender, instance: TerminalRecording, **kwargs) -> None:
    # Whatever deletes the row (a deleted user or sandbox cascading, the reaper), the file goes with it once the
    # deletion has committed.
    path = instance.path
    transaction.on_commit(lambda: _unlink(path))


def recordings_expire(*, before: datetime) -> int:
    """The reaper's pass over recordings; returns how many it removed. Deletes the recordings (files and rows) of
    sandboxes that ended before `before`; settles sessions whose writer died with its sandbox (so they stop counting
    as in progress); and removes the oldest files of every learner, and of everybody, above their caps (caps lowered
    since, or sessions started while they were higher)."""
    count, _ = TerminalRecording.objects.filter(sandbox__ended_at__lt=before).delete()
    _recordings_settle()
    session = _cap("RECORDING_SESSION_MAX_MB")
    learner_cap = _cap("RECORDING_LEARNER_MAX_MB")
    loads = (TerminalRecording.objects.values("sandbox__owner_id").order_by()
             .annotate(load=models.Sum("size_bytes", filter=models.Q(ended_at__isnull=False), default=0)
                       + models.Count("pk", filter=models.Q(ended_at__isnull=True)) * session)
             .filter(load__gt=learner_cap))
    scopes = [(TerminalRecording.objects.filter(sandbox__owner_id=row["sandbox__owner_id"]), learner_cap)
              for row in loads] + [(TerminalRecording.objects.all(), _cap("RECORDING_TOTAL_MAX_MB"))]
    for recordings, cap in scopes:
        count += _room_make(recordings, cap=cap, session=session, needed=0) or 0
    return count


def _recordings_settle() -> None:
    """Sessions still open although their sandbox is gone (the web process died before closing them) get the size of
    what their file holds, so they stop reserving a whole session."""
    for recording in TerminalRecording.objects.filter(ended_at__isnull=True, sandbox__state__in=FINAL).select_related(
            "sandbox"):
        try:
            size = Path(recording.path).stat().st_size
        except OSError:
            size = 0
        TerminalRecording.objects.filter(pk=recording.pk, ended_at__isnull=True).update(
            ended_at=recording.sandbox.ended_at or timezone.now(), size_bytes=size)


def _window_sessions(*, sandbox: Sandbox, until: datetime, minutes: int) -> list[TerminalRecording]:
    since = until - timedelta(minutes=minutes)
    return [r for r in sandbox.recordings.filter(started_at__lte=until).order_by("started_at")
            if r.ended_at is None or r.ended_at >= since]


def recording_expired(*, sandbox: Sandbox, until: datetime, minutes: int = 5) -> str | None:
    """Why the `minutes` before `until` can no longer be replayed, for the viewer; None when they can (even in part).
    They expired when every session in them lost its file to the caps (or an operator), or when the sandbox ended
    longer ago than recordings are kept."""
    sessions = _window_sessions(sandbox=sandbox, until=until, minutes=minutes)
    days = settings.SANDCLOUD["RECORDING_RETENTION_DAYS"]
    if sessions:
        gone = all(not session.path or not Path(session.path).exists() for session in sessions)
    else:
        gone = sandbox.ended_at is not None and sandbox.ended_at < timezone.now() - timedelta(days=days)
    if not gone:
        return None
    return (f"This recording expired: terminal recordings are kept for {days} days after the sandbox ends, and the "
            f"oldest are removed sooner when the space for recordings is full.")


def recording_window(*, sandbox: Sandbox, until: datetime, minutes: int = 5) -> str:
    """One asciicast v2 document of the owner's terminal in the `minutes` before `until`, sessions joined in order.
    Raises RecordingExpired when those minutes were recorded but their files are gone."""
    if reason := recording_expired(sandbox=sandbox, until=until, minutes=minutes):
        raise RecordingExpired(reason)
    since = until - timedelta(minutes=minutes)
    sessions = _window_sessions(sandbox=sandbox, until=until, minutes=minutes)
    width = max([r.width for r in sessions] or [120])
    height = max([r.height for r in sessions] or [32])
    header = {"version": 2, "width": width, "height": height, "timestamp": int(since.timestamp()),
              "title": f"Sandbox {sandbox.pk}: {minutes} minutes before {until:%H:%M:%S} UTC"}
    lines = [json.dumps(header)]
    for session in sessions:
        offset = (session.started_at - since).total_seconds()
        for event in _events(Path(session.path)) if session.path else ():
            at = offset + event[0]
            if at < 0 or at > minutes * 60:
                continue
            lines.append(json.dumps([round(at, 6), event[1], event[2]]))
    return "\n".join(lines) + "\n"


def _events(path: Path):
    try:
        with path.open(encoding="utf-8") as handle:
            next(handle, None)  # the session's own header
            for line in handle:
                try:
                    event = json.loads(line)
                except ValueError:
                    break  # a session cut off mid-write ends here
                if isinstance(event, list) and len(event) == 3:
                    yield event
    except FileNotFoundError:
        return
