"""The labs' reaper: checks lost with their worker or queue end as "could not run" (never counted, the learner checks
again) only once no worker can still be grading them; lost step setups are queued again and run."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from labs import services as labs_services
from labs.grading import CheckOutcome
from labs.models import Attempt, LabSandbox
from labs.selectors import lab_progress_for
from labs.services import (GRADING_MARGIN_SECONDS, LOST_CHECK_MESSAGE, REAP_GRACE_SECONDS, SETUP_STALE_SECONDS,
                           attempt_grade, attempt_request, attempts_reap, lab_start, step_setup, step_setups_reap)
from sandbox.models import Sandbox
from tests.conftest import run_in

from .test_scoring import sandbox  # noqa: F401 - a lab sandbox row without a container (the grading never starts)


def _limit(step) -> timedelta:
    return timedelta(seconds=step.check_timeout + GRADING_MARGIN_SECONDS)


def _running(learner, step, *, started_ago: timedelta, sandbox=None) -> Attempt:
    started = timezone.now() - started_ago
    return Attempt.objects.create(user=learner, lab=step.lab, step=step, sandbox=sandbox, status=Attempt.Status.RUNNING,
                                  created_at=started, started_at=started)


# --- lost checks ------------------------------------------------------------------------------------------------------

def test_a_check_lost_in_the_queue_ends_not_counted_and_the_learner_checks_again(learner, sandbox, practice_lab,
                                                                                 client):
    # Given a check whose grading task never reached a worker (in this test nothing is ever queued: no commit)
    step = practice_lab.steps.get(slug="make-file")
    lost = attempt_request(user=learner, sandbox=sandbox, step=step)

    # When the reaper runs once the check's time limit (and the grace after it) has passed
    reaped = attempts_reap(now=timezone.now() + _limit(step) + timedelta(seconds=REAP_GRACE_SECONDS + 1))

    # Then the check could not run, does not count, and the page stops waiting for it
    lost.refresh_from_db()
    assert reaped == 1
    assert lost.status == Attempt.Status.ERROR and lost.message == LOST_CHECK_MESSAGE and lost.points == 0
    assert lab_progress_for(user=learner, lab=practice_lab).steps[0].attempts_counted == 0
    client.force_login(learner)
    shown = client.get(f"/labs/attempts/{lost.pk}/").content.decode()
    assert "The check could not run" in shown and 'hx-trigger="every 1s"' not in shown
    # and the learner may check again
    assert attempt_request(user=learner, sandbox=sandbox, step=step).status == Attempt.Status.PENDING


def test_a_check_is_not_taken_from_a_worker_that_may_still_be_grading_it(learner, practice_lab):
    step = practice_lab.steps.get(slug="make-file")  # a 5 s check: its worker is killed 95 s after claiming it
    within = _running(learner, step, started_ago=_limit(step) + timedelta(seconds=REAP_GRACE_SECONDS - 2))
    past = _running(learner, step, started_ago=_limit(step) + timedelta(seconds=REAP_GRACE_SECONDS + 2))

    assert attempts_reap() == 1

    within.refresh_from_db()
    past.refresh_from_db()
    assert within.status == Attempt.Status.RUNNING
    assert past.status == Attempt.Status.ERROR


def test_the_cutoff_follows_the_steps_own_timeout(learner, other_learner, practice_lab):
    # Given two checks claimed 150 s ago: one of a 5 s check, one of a check allowed 120 s (as long as labs allow)
    short = practice_lab.steps.get(slug="make-file")
    long = practice_lab.steps.get(slug="second")
    long.check_timeout = 120
    long.save()
    ago = timedelta(seconds=150)
    short_check = _running(learner, short, started_ago=ago)
    long_check = _running(other_learner, long, started_ago=ago)

    attempts_reap()

    # Then only the short one, whose worker is surely dead by now, is finished
    short_check.refresh_from_db()
    long_check.refresh_from_db()
    assert short_check.status == Attempt.Status.ERROR
    assert long_check.status == Attempt.Status.RUNNING


def test_a_redelivered_grading_task_after_the_reaper_changes_nothing(learner, sandbox, practice_lab):
    step = practice_lab.steps.get(slug="make-file")
    attempt = _running(learner, step, sandbox=sandbox, started_ago=timedelta(hours=1))
    attempts_reap()
    attempt.refresh_from_db()

    # When the task the dead worker held is delivered again (acks_late) and graded
    again = attempt_grade(attempt_id=attempt.pk)

    assert again.status == Attempt.Status.ERROR and again.message == LOST_CHECK_MESSAGE
    assert again.finished_at == attempt.finished_at
    assert Attempt.objects.filter(user=learner, step=step).count() == 1
    assert lab_progress_for(user=learner, lab=practice_lab).steps[0].attempts_counted == 0


def test_a_worker_finishing_after_the_reaper_took_its_check_does_not_overwrite_it(learner, sandbox, practice_lab,
                                                                                  monkeypatch):
    step = practice_lab.steps.get(slug="make-file")
    attempt = Attempt.objects.create(user=learner, lab=practice_lab, step=step, sandbox=sandbox)

    def check_outlived_by_the_reaper(**kwargs):
        # The check runs so long that, as far as the reaper can tell, its worker is dead
        attempts_reap(now=timezone.now() + timedelta(hours=1))
        return CheckOutcome(status=Attempt.Status.PASSED, message="Check passed.", fraction=1.0, output="",
                            duration_ms=10)

    monkeypatch.setattr(labs_services, "check_run", check_outlived_by_the_reaper)

    result = attempt_grade(attempt_id=attempt.pk)

    assert result.status == Attempt.Status.ERROR and result.message == LOST_CHECK_MESSAGE and result.points == 0
    progress = lab_progress_for(user=learner, lab=practice_lab)
    assert not progress.steps[0].passed and progress.points == 0
    assert LabSandbox.objects.get(sandbox=sandbox).step == step  # the next step was not set up


def test_the_grading_task_is_queued_with_the_hard_time_limit_the_reaper_counts_on(learner, sandbox, practice_lab,
                                                                                  monkeypatch):
    from labs.tasks import attempt_grade_task

    queued = {}
    monkeypatch.setattr(attempt_grade_task, "apply_async", lambda args, **options: queued.update(options))
    step = practice_lab.steps.get(slug="make-file")
    attempt = Attempt.objects.create(user=learner, lab=practice_lab, step=step, sandbox=sandbox)

    labs_services._attempt_queue(attempt)

    assert queued["time_limit"] == step.check_timeout + GRADING_MARGIN_SECONDS
    assert queued["task_id"] == str(attempt.task_id)


def test_beat_runs_the_labs_reaper(learner, practice_lab):
    from config.celery import app

    entries = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()]
    step = practice_lab.steps.get(slug="make-file")
    _running(learner, step, started_ago=timedelta(hours=1))

    result = app.tasks["labs.tasks.attempts_reap_task"].apply().get()

    assert "labs.tasks.attempts_reap_task" in entries
    assert result == {"attempts": 1, "setups": 0}


# --- lost step setups -------------------------------------------------------------------------------------------------

@pytest.mark.docker
def test_a_lost_step_setup_is_queued_again_and_runs(lab_sandboxes, learner, practice_lab, monkeypatch):
    # Given a lab sandbox whose setup task was lost (a worker killed, the queue lost)
    with monkeypatch.context() as lost_queue:
        lost_queue.setattr(labs_services, "_setup_queue", lambda **kwargs: None)
        sandbox = lab_start(user=learner, lab=practice_lab)
    sandbox.refresh_from_db()
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    assert run_in(sandbox, "test -d ~/answers")[0] != 0

    # When the reaper runs: too early it leaves the setup to its task; once the task must be lost, it queues it again
    assert step_setups_reap() == 0
    requeued = step_setups_reap(now=timezone.now() + timedelta(seconds=SETUP_STALE_SECONDS + 1))

    # Then the step's setup has run in the sandbox, and is not run a second time
    assert requeued == 1
    assert run_in(sandbox, "test -d ~/answers") == (0, "")
    assert LabSandbox.objects.get(sandbox=sandbox).setup == LabSandbox.Setup.DONE
    assert step_setups_reap(now=timezone.now() + timedelta(hours=1)) == 0


def test_a_setup_that_failed_on_its_own_is_not_run_again(learner, sandbox, practice_lab):
    tie = LabSandbox.objects.get(sandbox=sandbox)
    long_ago = timezone.now() - timedelta(hours=1)
    Sandbox.objects.filter(pk=sandbox.pk).update(started_at=long_ago)
    LabSandbox.objects.filter(pk=tie.pk).update(setup=LabSandbox.Setup.FAILED, setup_queued_at=long_ago)

    assert step_setups_reap() == 0


def test_a_setup_still_pending_in_a_sandbox_that_stopped_is_left_alone(learner, sandbox, practice_lab):
    long_ago = timezone.now() - timedelta(hours=1)
    Sandbox.objects.filter(pk=sandbox.pk).update(state=Sandbox.State.STOPPED, started_at=long_ago)
    LabSandbox.objects.filter(sandbox=sandbox).update(setup_queued_at=long_ago)

    assert step_setups_reap() == 0


def test_a_late_setup_task_for_a_step_the_sandbox_moved_past_does_nothing(learner, sandbox, practice_lab):
    first, second = practice_lab.steps.order_by("position")
    LabSandbox.objects.filter(sandbox=sandbox).update(step=second)

    # The sandbox row has no container: running the first step's setup would fail loudly
    assert step_setup(sandbox_id=sandbox.pk, step_id=first.pk) is False

    tie = LabSandbox.objects.get(sandbox=sandbox)
    assert tie.step == second and tie.setup == LabSandbox.Setup.PENDING
