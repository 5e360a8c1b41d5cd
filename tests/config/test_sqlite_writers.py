"""SQLite writers take turns (config/sqlite/base.py): a transaction holds the turn from BEGIN to commit, rollback or
close, across threads and processes, and a writer kept waiting too long gets SQLite's own error instead of a hang."""
import multiprocessing
import subprocess
import sys
import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection, transaction

from config.sqlite import base

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the turns are SQLite's")


def _turn_free(database: str) -> bool:
    """Asks another process whether it could take the turn right now."""
    probe = ("import fcntl, os, sys\n"
             "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
             "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(1)\n")
    return subprocess.run([sys.executable, "-c", probe, f"{database}.writers"], timeout=10).returncode == 0


class Holder(threading.Thread):
    """Opens a write transaction in its own thread (its own connection) and keeps it until told to end it."""

    def __init__(self, *, fail: bool = False):
        super().__init__(daemon=True)
        self.inside, self.end, self.fail = threading.Event(), threading.Event(), fail

    def run(self):
        try:
            with transaction.atomic():
                get_user_model().objects.create(username=f"holder-{id(self)}")
                self.inside.set()
                self.end.wait(20)
                if self.fail:
                    raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        finally:
            connection.close()


@pytest.mark.parametrize("ending", ["commit", "rollback"])
def test_a_transaction_holds_the_turn_until_it_ends(transactional_db, ending):
    database = connection.settings_dict["NAME"]
    assert _turn_free(database)
    holder = Holder(fail=ending == "rollback")
    holder.start()
    assert holder.inside.wait(10)
    assert not _turn_free(database)  # another process waits for its turn
    holder.end.set()
    holder.join(10)
    assert _turn_free(database)
    assert get_user_model().objects.filter(username__startswith="holder-").exists() is (ending == "commit")


def test_a_writer_kept_waiting_past_its_timeout_gets_the_databases_error_not_a_hang(transactional_db, monkeypatch):
    holder = Holder()
    holder.start()
    assert holder.inside.wait(10)
    try:
        connection.close()  # reconnects with SQLite's own wait shortened too
        monkeypatch.setitem(connection.settings_dict["OPTIONS"], "timeout", 0.5)
        began = time.monotonic()
        with pytest.raises(OperationalError, match="locked"):
            with transaction.atomic():
                get_user_model().objects.create(username="waiter")
        assert time.monotonic() - began < 5
    finally:
        holder.end.set()
        holder.join(10)
        connection.close()
    # The queue is not left taken by the writer that went on without its turn.
    with transaction.atomic():
        get_user_model().objects.create(username="after")


def _child_takes_turn(database: str, took, release) -> None:
    took.put(base._queue_for(database).take(5))
    release.wait(20)


def test_a_forked_process_takes_turns_with_its_parent_rather_than_sharing_them(transactional_db):
    database = connection.settings_dict["NAME"]
    holder = Holder()
    holder.start()
    assert holder.inside.wait(10)
    # Celery's pool forks while a thread of the parent holds the turn.
    context = multiprocessing.get_context("fork")
    took, release = context.Queue(), context.Event()
    child = context.Process(target=_child_takes_turn, args=(database, took, release))
    child.start()
    try:
        time.sleep(0.5)
        assert took.empty()  # the child waits for the parent's turn to end ...
        holder.end.set()
        holder.join(10)
        assert took.get(timeout=10) is True  # ... then takes its own
        assert not _turn_free(database)  # which holds off everyone else, the parent included
        assert base._queue_for(database).take(0.3) is False
    finally:
        release.set()
        child.join(10)
    assert _turn_free(database)
