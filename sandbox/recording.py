"""Terminal recordings in asciicast v2: written while the owner types, cut into windows for replay."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import models
from django.utils import timezone

from .models import Sandbox, TerminalRecording

MAX_BYTES = 8 * 1024 * 1024  # per session: an output flood cannot fill the disk through the recorder
FLUSH_SECONDS = 2.0


def recordings_dir() -> Path:
    path = Path(settings.BASE_DIR) / "var" / "recordings"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Recorder:
    """Appends terminal output to an asciicast v2 file. Synchronous and buffered: each call is a memory write."""

    def __init__(self, recording: TerminalRecording):
        self.recording = recording
        self.started = time.monotonic()
        self.file = open(recording.path, "a", encoding="utf-8")
        self.size = 0
        self.last_flush = self.started
        header = {"version": 2, "width": recording.width, "height": recording.height,
                  "timestamp": int(recording.started_at.timestamp()), "env": {"TERM": "xterm-256color"}}
        self._write(json.dumps(header) + "\n")

    def _write(self, line: str) -> None:
        if self.size + len(line) > MAX_BYTES:
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
    """A recorder for a new owner session, or None once the sandbox's recordings reach RECORDING_MAX_MB (a learner
    reconnecting in a loop while flooding the screen must not fill the disk)."""
    used = sandbox.recordings.aggregate(total=models.Sum("size_bytes"))["total"] or 0
    open_sessions = sandbox.recordings.filter(ended_at__isnull=True).count()
    if used + open_sessions * MAX_BYTES >= settings.SANDCLOUD["RECORDING_MAX_MB"] * 1024 * 1024:
        return None
    started = timezone.now()
    folder = recordings_dir() / f"sandbox-{sandbox.pk}"
    folder.mkdir(exist_ok=True)
    recording = TerminalRecording.objects.create(
        sandbox=sandbox, started_at=started, width=cols, height=rows,
        path=str(folder / f"{started.strftime('%Y%m%dT%H%M%S.%f')}.cast"))
    return Recorder(recording)


def recordings_expire(*, before: datetime) -> int:
    """Deletes the recordings (files and rows) of sandboxes that ended before `before`; returns how many."""
    expired = TerminalRecording.objects.filter(sandbox__ended_at__lt=before)
    count = 0
    for recording in expired:
        Path(recording.path).unlink(missing_ok=True)
        count += 1
    expired.delete()
    return count


def recording_window(*, sandbox: Sandbox, until: datetime, minutes: int = 5) -> str:
    """One asciicast v2 document of the owner's terminal in the `minutes` before `until`, sessions joined in order."""
    since = until - timedelta(minutes=minutes)
    sessions = [r for r in sandbox.recordings.filter(started_at__lte=until).order_by("started_at")
                if r.ended_at is None or r.ended_at >= since]
    width = max([r.width for r in sessions] or [120])
    height = max([r.height for r in sessions] or [32])
    header = {"version": 2, "width": width, "height": height, "timestamp": int(since.timestamp()),
              "title": f"Sandbox {sandbox.pk}: {minutes} minutes before {until:%H:%M:%S} UTC"}
    lines = [json.dumps(header)]
    for session in sessions:
        offset = (session.started_at - since).total_seconds()
        for event in _events(Path(session.path)):
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
