"""Grading on a real worker process killed with SIGKILL mid-check: the reaper frees the step, the learner checks again."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from labs import services as lab_services
from labs.models import Attempt
from sandbox.states import State
from tests.conftest import run_in

from .conftest import attempt_wait, sandbox_wait, wait_until

def test_a_worker_killed_mid_check_costs_the_learner_nothing_and_they_can_check_again(worker_stack, learner,
                                                                                      hanging_lab):
    # Given a learner in the lab whose check is running on a worker that is then killed with SIGKILL.
    worker = worker_stack.shared()
    step = hanging_lab.steps.get(slug="answer")
    sandbox = lab_services.lab_start(user=learner, lab=hanging_lab)
    sandbox = sandbox_wait(sandbox.pk, State.RUNNING, State.FAILED)
    assert sandbox.state == State.RUNNING, sandbox.failure_reason
    assert run_in(sandbox, "touch ~/hang")[0] == 0
    attempt = lab_services.attempt_request(user=learner, sandbox=sandbox, step=step)
    wait_until(lambda: run_in(sandbox, "test -f ~/check-started")[0] == 0, what="the check to start in the sandbox")
    assert attempt_wait(attempt.pk, Attempt.Status.RUNNING)
    worker.kill()
    # While the dead worker's hard time limit might still be running, the check is not taken from it.
    assert lab_services.attempts_reap() == 0
    # When the reaper runs after that limit has passed.
    later = timezone.now() + timedelta(seconds=lab_services.grading_time_limit(step) + 60)
    assert lab_services.attempts_reap(now=later) == 1
    # Then the attempt says it could not run and does not count; nothing is left pending.
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.ERROR and not attempt.passed and attempt.points == 0
    assert "does not count" in attempt.message
    assert not Attempt.objects.filter(status__in=[Attempt.Status.PENDING, Attempt.Status.RUNNING]).exists()
    # And the learner can check again, on a new worker, and pass.
    assert run_in(sandbox, "rm ~/hang && touch ~/answer.txt")[0] == 0
    again = lab_services.attempt_request(user=learner, sandbox=sandbox, step=step)
    worker_stack.shared()
    again = attempt_wait(again.pk, Attempt.Status.PASSED, Attempt.Status.FAILED, Attempt.Status.ERROR)
    assert again.status == Attempt.Status.PASSED, again.message
    assert again.points == 10  # the lost attempt cost no penalty
