"""What each invocation leaves behind (its Invocation row and its log lines), written in batches off the invoke path.

One write transaction per invocation would cost the learner a database commit on every call; instead a writer thread
in each process takes what invocations queued in the last few milliseconds and writes them in one transaction. The
queue is bounded: past it an invoke waits for the writer rather than growing this process. A process that exits
normally flushes first (atexit); one killed outright loses at most the last batch of log lines and rows.
"""
from __future__ import annotations

import atexit
import logging
import queue
import threading

from django.db import IntegrityError, close_old_connections, connection, transaction

log = logging.getLogger(__name__)

BATCH_WAIT_SECONDS = 0.02
MAX_QUEUED = 5000
_queue: queue.Queue = queue.Queue(maxsize=MAX_QUEUED)
_writer: threading.Thread | None = None
_lock = threading.Lock()


def record_add(*, invocation, stream, lines: list[tuple[int, str]]) -> None:
    _start()
    _queue.put((invocation, stream, lines))


def records_flush() -> None:
    """Waits until everything queued so far is written (tests, the console's first read, process exit)."""
    if _writer is None:
        return
    _queue.join()


def _start() -> None:
    global _writer
    if _writer is not None and _writer.is_alive():
        return
    with _lock:
        if _writer is None or not _writer.is_alive():
            _writer = threading.Thread(target=_run, name="invocation-records", daemon=True)
            _writer.start()


def _run() -> None:
    while True:
        batch = [_queue.get()]
        try:
            while len(batch) < 500:
                batch.append(_queue.get(timeout=BATCH_WAIT_SECONDS))
        except queue.Empty:
            pass
        try:
            _write(batch)
        except Exception:  # noqa: BLE001 - the writer must outlive one bad batch
            log.exception("could not write %d invocation records", len(batch))
        finally:
            for _ in batch:
                _queue.task_done()
            connection.close()


def _write(batch: list) -> None:
    from sandbox.logs.services import log_events_put

    from .models import Function, Invocation

    close_old_connections()
    # A function deleted meanwhile takes its rows with it; the others are written (one by one if the whole batch
    # cannot be, so one learner's deletion never costs another learner their rows).
    live = set(Function.objects.filter(pk__in={i.function_id for i, _, _ in batch}).values_list("pk", flat=True))
    rows = [invocation for invocation, _, _ in batch if invocation.function_id in live]
    try:
        with transaction.atomic():
            Invocation.objects.bulk_create(rows)
    except IntegrityError:
        for row in rows:
            try:
                with transaction.atomic():
                    row.save()
            except IntegrityError:
                continue
    for _, stream, lines in batch:
        if stream is None or not lines:
            continue
        try:
            with transaction.atomic():
                log_events_put(stream=stream, events=lines)
        except IntegrityError:
            # The learner deleted the log group or stream while the environment was warm: as on AWS, those lines
            # are gone, and the next cold start makes the stream again.
            from . import services

            services.stream_forget(stream)
        except Exception:  # noqa: BLE001 - one invocation's lines must not cost the next ones theirs
            log.exception("could not write the log lines of one invocation")


atexit.register(records_flush)
