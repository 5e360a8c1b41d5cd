"""Terminal recordings on disk: the session, sandbox, learner and global caps, the reaper, expiry and user deletion.

Real files in a temporary recordings folder; sandboxes are rows only, since recording needs no container."""
from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from sandbox.models import Sandbox, TerminalRecording
from sandbox.recording import recording_start, recordings_expire

KB = 1024
SESSION = 8 * KB
_uids = itertools.count(61000)


@pytest.fixture
def recordings(tmp_path, monkeypatch, transactional_db):
    """A fresh recordings folder and small caps: 8 KB a session, 32 KB a sandbox, 40 KB a learner, 1 MB in all.
    Transactional, because files are removed once the removal of their rows has committed."""
    folder = tmp_path / "recordings"
    for name, value in (("RECORDINGS_DIR", str(folder)), ("RECORDING_SESSION_MAX_MB", SESSION / 2**20),
                        ("RECORDING_MAX_MB", 32 * KB / 2**20), ("RECORDING_LEARNER_MAX_MB", 40 * KB / 2**20),
                        ("RECORDING_TOTAL_MAX_MB", 1.0)):
        monkeypatch.setitem(settings.SANDCLOUD, name, value)
    return folder


def caps(monkeypatch, **kilobytes):
    for name, kb in kilobytes.items():
        monkeypatch.setitem(settings.SANDCLOUD, f"RECORDING_{name.upper()}_MAX_MB", kb * KB / 2**20)


def sandbox_row(owner, **fields) -> Sandbox:
    now = timezone.now()
    return Sandbox.objects.create(**{"owner": owner, "image": "sandcloud/workstation:1", "memory_mb": 256,
                                     "cpus": 0.5, "pids_limit": 256, "uid": next(_uids), "expires_at": now,
                                     "state": Sandbox.State.STOPPED, "ended_at": now, **fields})


def record(sandbox: Sandbox, nbytes: int = 20 * KB, *, close: bool = True):
    """One owner session that prints `nbytes` (more than a session holds, by default)."""
    recorder = recording_start(sandbox=sandbox)
    assert recorder is not None, "the session was not recorded"
    for _ in range(nbytes // 500):
        recorder.output(b"y" * 500)
    if close:
        recorder.close()
    else:
        recorder.file.flush()
    return recorder


def on_disk(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*.cast"))


def test_a_session_stops_writing_at_its_cap(recordings, learner):
    recorder = record(sandbox_row(learner), 100 * KB)

    assert Path(recorder.recording.path).stat().st_size <= SESSION
    row = TerminalRecording.objects.get(pk=recorder.recording.pk)
    assert row.truncated and row.size_bytes == Path(row.path).stat().st_size


def test_a_learner_starting_sandboxes_in_a_loop_keeps_only_their_newest_recordings(recordings, learner,
                                                                                   other_learner):
    # Given another learner's recording
    theirs = record(sandbox_row(other_learner))

    # When a learner starts and floods twelve sandboxes, one after the other
    sessions = []
    for _ in range(12):
        sessions.append(record(sandbox_row(learner), close=False))
        # Then, even with the newest session still being written, their files never pass their 40 KB cap
        assert on_disk(recordings) - Path(theirs.recording.path).stat().st_size <= 40 * KB
        sessions[-1].close()

    # And the oldest went first: the newest five (5 × 8 KB) are kept, with their rows
    kept = [Path(s.recording.path).exists() for s in sessions]
    assert kept == [False] * 7 + [True] * 5
    assert Path(theirs.recording.path).exists()  # the other learner lost nothing
    assert TerminalRecording.objects.filter(sandbox__owner=learner).count() == 12  # removed ones stay as rows


def test_all_recordings_stay_under_the_global_cap_by_removing_anybodys_oldest(recordings, monkeypatch, learner,
                                                                              other_learner):
    caps(monkeypatch, learner=1024, total=24)
    first = record(sandbox_row(learner))
    second = record(sandbox_row(other_learner))
    third = record(sandbox_row(learner))

    fourth = record(sandbox_row(other_learner))

    assert on_disk(recordings) <= 24 * KB
    assert [Path(r.recording.path).exists() for r in (first, second, third, fourth)] == [False, True, True, True]


def test_sessions_being_written_are_never_removed_and_one_that_cannot_fit_is_not_recorded(recordings, monkeypatch,
                                                                                          learner):
    caps(monkeypatch, learner=16)
    live = [record(sandbox_row(learner), close=False) for _ in range(2)]

    refused = recording_start(sandbox=sandbox_row(learner))

    assert refused is None
    assert all(Path(r.recording.path).exists() for r in live)
    assert TerminalRecording.objects.filter(sandbox__owner=learner).count() == 2


def test_a_sandbox_stops_recording_at_its_own_cap(recordings, learner):
    sandbox = sandbox_row(learner)
    for _ in range(4):
        record(sandbox)  # 4 × 8 KB fill the sandbox's 32 KB

    assert recording_start(sandbox=sandbox) is None
    assert recording_start(sandbox=sandbox_row(learner)) is not None  # the learner's next sandbox records again


def test_the_reaper_brings_recordings_back_under_lowered_caps_oldest_first(recordings, monkeypatch, learner,
                                                                           other_learner):
    mine = [record(sandbox_row(learner)) for _ in range(4)]
    theirs = record(sandbox_row(other_learner))
    caps(monkeypatch, learner=16)

    removed = recordings_expire(before=timezone.now() - timedelta(days=30))

    assert removed == 2
    assert [Path(r.recording.path).exists() for r in mine] == [False, False, True, True]
    assert Path(theirs.recording.path).exists()


def test_the_reaper_settles_a_session_whose_web_process_died(recordings, monkeypatch, learner):
    caps(monkeypatch, learner=16)
    sandbox = sandbox_row(learner, state=Sandbox.State.RUNNING, ended_at=None)
    orphan = record(sandbox, 2 * KB, close=False)  # the process holding it is gone: close() never runs
    Sandbox.objects.filter(pk=sandbox.pk).update(state=Sandbox.State.FAILED, ended_at=timezone.now())
    live = record(sandbox_row(learner), close=False)
    assert recording_start(sandbox=sandbox_row(learner)) is None  # two "live" sessions fill 16 KB

    recordings_expire(before=timezone.now() - timedelta(days=30))

    row = TerminalRecording.objects.get(pk=orphan.recording.pk)
    assert row.ended_at is not None and row.size_bytes == Path(row.path).stat().st_size
    assert recording_start(sandbox=sandbox_row(learner)) is not None  # it no longer holds a whole session
    assert Path(live.recording.path).exists()


def test_the_replay_says_recording_expired_once_the_files_are_gone(recordings, learner, instructor):
    # Given a session in one sandbox, pushed out by five newer sessions of the same learner
    old_sandbox = sandbox_row(learner)
    old = record(old_sandbox)
    for _ in range(5):
        newest = record(sandbox_row(learner))
    assert not Path(old.recording.path).exists()
    teacher = Client()
    teacher.force_login(instructor)

    def replay(recorder):
        row = TerminalRecording.objects.get(pk=recorder.recording.pk)
        query = {"until": row.ended_at.isoformat(), "minutes": 5}
        sandbox_id = row.sandbox_id
        return (teacher.get(f"/cohorts/recordings/{sandbox_id}/", query),
                teacher.get(f"/api/sandboxes/{sandbox_id}/recording.cast", query))

    # When the instructor replays the minutes of the removed session, and of the newest one
    page, cast = replay(old)
    kept_page, kept_cast = replay(newest)

    # Then the page and the API say it expired instead of playing an empty terminal
    assert page.status_code == 200
    assert "This recording expired" in page.content.decode() and "data-cast" not in page.content.decode()
    assert cast.status_code == 410 and "This recording expired" in cast.json()["message"]
    # while a kept session still plays
    assert "data-cast" in kept_page.content.decode()
    assert kept_cast.status_code == 200 and '"o", "yyy' in kept_cast.content.decode()


def test_the_replay_of_a_sandbox_older_than_the_retention_says_it_expired(recordings, learner, instructor):
    ended = timezone.now() - timedelta(days=31)
    sandbox = sandbox_row(learner, ended_at=ended)
    record(sandbox)
    assert recordings_expire(before=timezone.now() - timedelta(days=30)) == 1
    teacher = Client()
    teacher.force_login(instructor)

    cast = teacher.get(f"/api/sandboxes/{sandbox.pk}/recording.cast", {"until": ended.isoformat()})

    assert cast.status_code == 410 and "kept for 30 days" in cast.json()["message"]


def test_deleting_a_learner_deletes_their_recording_files(recordings, learner, other_learner):
    mine = [record(sandbox_row(learner)) for _ in range(2)]
    theirs = record(sandbox_row(other_learner))

    learner.delete()

    assert not any(Path(r.recording.path).exists() for r in mine)
    assert not any(Path(r.recording.path).parent.exists() for r in mine)  # nor their sandboxes' folders
    assert Path(theirs.recording.path).exists()
    assert list(TerminalRecording.objects.values_list("pk", flat=True)) == [theirs.recording.pk]
