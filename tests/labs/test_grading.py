"""Grading on real sandboxes: pass, fail with FAIL: lines only, timeouts, dead sandboxes, duplicated tasks."""
from __future__ import annotations

import pytest

from labs.models import Attempt
from labs.selectors import lab_progress_for
from labs.services import attempt_grade, attempt_request, lab_start
from sandbox.engine.docker import engine
from sandbox.models import Sandbox
from tests.conftest import run_in

pytestmark = pytest.mark.docker


@pytest.fixture
def sandbox(lab_sandboxes, learner, practice_lab) -> Sandbox:
    sandbox = lab_start(user=learner, lab=practice_lab)
    sandbox.refresh_from_db()
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    return sandbox


def _check(learner, sandbox, lab, slug="make-file") -> Attempt:
    attempt = attempt_request(user=learner, sandbox=sandbox, step=lab.steps.get(slug=slug))
    attempt.refresh_from_db()
    return attempt


def test_lab_start_runs_the_first_steps_setup(sandbox):
    assert run_in(sandbox, "test -d ~/answers") == (0, "")
    assert sandbox.lab_slug == "practice"


def test_a_failing_check_shows_only_its_fail_lines(learner, sandbox, practice_lab):
    attempt = _check(learner, sandbox, practice_lab)

    assert attempt.status == Attempt.Status.FAILED and not attempt.passed
    assert attempt.message == "~/answers/done.txt does not exist yet."
    assert "secret debugging detail" not in attempt.message
    assert "secret debugging detail" in attempt.output  # kept for staff
    assert attempt.points == 0


def test_a_passing_check_scores_unlocks_the_next_step_and_runs_its_setup(learner, sandbox, practice_lab):
    run_in(sandbox, "touch ~/answers/done.txt")

    attempt = _check(learner, sandbox, practice_lab)

    assert attempt.status == Attempt.Status.PASSED and attempt.points == 10
    progress = lab_progress_for(user=learner, lab=practice_lab)
    assert [s.unlocked for s in progress.steps] == [True, True]
    assert progress.points == 10
    assert run_in(sandbox, "cat ~/second-setup.txt") == (0, "ready\n")


def test_a_retry_after_failure_pays_the_penalty(learner, sandbox, practice_lab):
    _check(learner, sandbox, practice_lab)
    run_in(sandbox, "touch ~/answers/done.txt")

    attempt = _check(learner, sandbox, practice_lab)

    assert attempt.passed and attempt.points == 9
    assert lab_progress_for(user=learner, lab=practice_lab).points == 9


def test_a_check_that_times_out_says_so(learner, sandbox, practice_lab):
    run_in(sandbox, "echo slow > ~/answers/done.txt")

    attempt = _check(learner, sandbox, practice_lab)

    assert attempt.status == Attempt.Status.TIMED_OUT and not attempt.passed
    assert "did not finish within 5 seconds" in attempt.message
    assert 5000 <= attempt.duration_ms < 12000


def test_a_check_on_a_dead_sandbox_says_so_and_does_not_count(learner, sandbox, practice_lab):
    engine().api.kill(sandbox.container_id)  # the container dies behind the platform's back

    attempt = _check(learner, sandbox, practice_lab)

    assert attempt.status == Attempt.Status.ERROR
    assert "Your sandbox is not running, so the check could not run" in attempt.message
    assert "Reset this step" in attempt.message
    assert lab_progress_for(user=learner, lab=practice_lab).steps[0].attempts_counted == 0


def test_a_duplicated_grading_task_does_not_count_twice(learner, sandbox, practice_lab):
    run_in(sandbox, "touch ~/answers/done.txt")
    attempt = _check(learner, sandbox, practice_lab)

    again = attempt_grade(attempt_id=attempt.pk)

    assert again.points == 10 and again.finished_at == attempt.finished_at
    assert Attempt.objects.filter(user=learner).count() == 1
    assert lab_progress_for(user=learner, lab=practice_lab).points == 10


def test_each_revealed_hint_costs_points_on_the_passing_check(learner, sandbox, practice_lab):
    from labs.services import hint_reveal

    hint_reveal(user=learner, step=practice_lab.steps.get(slug="make-file"))
    run_in(sandbox, "touch ~/answers/done.txt")

    attempt = _check(learner, sandbox, practice_lab)

    assert attempt.passed and attempt.points == 8


def test_check_progress_and_result_reach_the_sandbox_event_stream(learner, sandbox, practice_lab):
    import asyncio

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from sandbox.events import events_recent, group_name

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(sandbox.pk), channel)

    attempt = _check(learner, sandbox, practice_lab)

    async def events_until_result() -> list[dict]:
        # One event loop for every receive: channels_redis buffers a process's messages per loop.
        received = []
        while not received or received[-1].get("kind") != "attempt.result":
            received.append((await asyncio.wait_for(layer.receive(channel), 10))["event"])
        return received

    events = async_to_sync(events_until_result)()
    kinds = [e.get("kind") for e in events]
    event = events[-1]
    assert kinds == ["attempt.queued", "attempt.running", "attempt.result"]
    assert event["attempt"] == {"id": attempt.pk, "step": "make-file", "status": "failed", "passed": False,
                                "points": 0, "message": "~/answers/done.txt does not exist yet.",
                                "duration_ms": attempt.duration_ms}
    assert event["level"] == "warning" and "output" not in event["attempt"]
    assert [e.get("kind") for e in events_recent(sandbox_id=sandbox.pk)][-3:] == kinds  # replayed on reconnect


def test_a_python_check_awards_partial_credit(lab_sandboxes, learner):
    from labs.models import Lab
    from labs.services import labs_load, step_solve

    labs_load()
    lab = Lab.objects.get(slug="containers-vs-gvisor")
    sandbox = lab_start(user=learner, lab=lab)
    first, second = lab.steps.order_by("position")
    step_solve(sandbox=sandbox, step=first)
    assert _check(learner, sandbox, lab, slug=first.slug).passed
    run_in(sandbox, "echo b > ~/answers/gvisor-is.txt")

    attempt = _check(learner, sandbox, lab, slug=second.slug)

    assert attempt.status == Attempt.Status.FAILED and attempt.points == second.points // 2
    assert attempt.message == "~/answers/host-kernel.txt is missing or empty."
    assert lab_progress_for(user=learner, lab=lab).points == first.points + second.points // 2
