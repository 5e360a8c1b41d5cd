"""Scoring rules and the refusals around a check: penalties, hint costs, partial credit, max attempts, locked steps."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from labs.format import Scoring
from labs.models import Attempt, HintReveal, LabSandbox
from labs.scoring import attempt_points
from labs.selectors import lab_progress_for, lab_sandbox_for
from labs.services import LabRefused, attempt_grade, attempt_request, hint_reveal, labs_load
from sandbox.models import Sandbox

RULES = Scoring(max_attempts=3, penalty_per_failed_attempt=1, hint_cost=2)


def test_a_first_time_pass_earns_all_the_points():
    assert attempt_points(step_points=10, fraction=1.0, failed_before=0, hints_revealed=0, rules=RULES) == 10


def test_each_failed_attempt_and_each_hint_costs_points():
    assert attempt_points(step_points=10, fraction=1.0, failed_before=2, hints_revealed=1, rules=RULES) == 6


def test_partial_credit_is_a_share_of_the_step_and_penalties_never_go_below_zero():
    assert attempt_points(step_points=20, fraction=0.5, failed_before=0, hints_revealed=0, rules=RULES) == 10
    assert attempt_points(step_points=10, fraction=1.0, failed_before=5, hints_revealed=5, rules=RULES) == 0
    assert attempt_points(step_points=10, fraction=0.0, failed_before=0, hints_revealed=0, rules=RULES) == 0


@pytest.fixture
def sandbox(db, learner, practice_lab) -> Sandbox:
    """A lab sandbox as lab_start records it (the row and its tie to the lab), without a container behind it."""
    now = timezone.now()
    sandbox = Sandbox.objects.create(owner=learner, lab_slug="practice", image="sandcloud/workstation:1",
                                     memory_mb=256, cpus=0.5, pids_limit=256, uid=20001, state=Sandbox.State.RUNNING,
                                     container_id="not-started", expires_at=now + timedelta(hours=1))
    LabSandbox.objects.create(sandbox=sandbox, lab=practice_lab, step=practice_lab.steps.get(position=1))
    return sandbox


def _finished(learner, step, status, points=0, **fields) -> Attempt:
    return Attempt.objects.create(user=learner, lab=step.lab, step=step, status=status, points=points,
                                  passed=status == Attempt.Status.PASSED, **fields)


def test_partial_credit_is_summed_per_lab_from_each_steps_best_attempt(learner, practice_lab):
    first, second = practice_lab.steps.order_by("position")
    _finished(learner, first, Attempt.Status.FAILED, points=4)
    _finished(learner, first, Attempt.Status.PASSED, points=8)
    _finished(learner, second, Attempt.Status.FAILED, points=2)

    progress = lab_progress_for(user=learner, lab=practice_lab)

    assert [s.points for s in progress.steps] == [8, 2]
    assert progress.points == 10 and progress.max_points == 15
    assert [s.unlocked for s in progress.steps] == [True, True] and not progress.completed


def test_a_check_is_refused_once_the_maximum_attempts_are_used(learner, sandbox, practice_lab):
    step = practice_lab.steps.get(slug="make-file")
    for _ in range(3):
        _finished(learner, step, Attempt.Status.FAILED)

    with pytest.raises(LabRefused, match="You have used all 3 attempts"):
        attempt_request(user=learner, sandbox=sandbox, step=step)


def test_attempts_that_could_not_run_do_not_use_up_the_maximum(learner, sandbox, practice_lab):
    step = practice_lab.steps.get(slug="make-file")
    for _ in range(3):
        _finished(learner, step, Attempt.Status.ERROR)

    attempt = attempt_request(user=learner, sandbox=sandbox, step=step)

    assert attempt.status == Attempt.Status.PENDING


def test_a_locked_step_cannot_be_checked_or_hinted(learner, sandbox, practice_lab):
    second = practice_lab.steps.get(slug="second")
    with pytest.raises(LabRefused, match="locked"):
        attempt_request(user=learner, sandbox=sandbox, step=second)
    with pytest.raises(LabRefused, match="previous steps"):
        hint_reveal(user=learner, step=second)


def test_a_second_check_is_refused_while_one_is_running(learner, sandbox, practice_lab):
    step = practice_lab.steps.get(slug="make-file")
    attempt_request(user=learner, sandbox=sandbox, step=step)
    with pytest.raises(LabRefused, match="already running"):
        attempt_request(user=learner, sandbox=sandbox, step=step)


def test_a_sandbox_the_lab_did_not_start_cannot_be_checked(learner, practice_lab):
    # Given a sandbox labelled with the lab but started elsewhere, as the JSON API used to make them: the platform's
    # limits instead of the lab's, and without the step's setup
    sandbox = Sandbox.objects.create(owner=learner, lab_slug="practice", image="sandcloud/workstation:1",
                                     memory_mb=256, cpus=0.5, pids_limit=256, uid=20002, state=Sandbox.State.RUNNING,
                                     container_id="not-started", expires_at=timezone.now() + timedelta(hours=2))
    step = practice_lab.steps.get(slug="make-file")

    with pytest.raises(LabRefused, match="not started from this lab's page"):
        attempt_request(user=learner, sandbox=sandbox, step=step)

    assert not Attempt.objects.filter(user=learner).exists()
    assert lab_sandbox_for(user=learner, lab=practice_lab) is None  # nor does the lab page offer it


def test_nobody_can_check_someone_elses_sandbox(other_learner, sandbox, practice_lab):
    with pytest.raises(PermissionDenied):
        attempt_request(user=other_learner, sandbox=sandbox, step=practice_lab.steps.get(slug="make-file"))


def test_hints_are_revealed_one_at_a_time_until_there_are_none_left(learner, practice_lab):
    step = practice_lab.steps.get(slug="make-file")
    assert hint_reveal(user=learner, step=step).index == 0
    assert lab_progress_for(user=learner, lab=practice_lab).steps[0].hints_revealed == ["Use touch."]
    assert hint_reveal(user=learner, step=step).index == 1
    with pytest.raises(LabRefused, match="no more hints"):
        hint_reveal(user=learner, step=step)
    assert HintReveal.objects.filter(user=learner, step=step).count() == 2


def test_a_grading_task_for_an_attempt_another_worker_is_grading_changes_nothing(learner, sandbox, practice_lab):
    step = practice_lab.steps.get(slug="make-file")
    started = timezone.now()
    attempt = _finished(learner, step, Attempt.Status.RUNNING, started_at=started)

    again = attempt_grade(attempt_id=attempt.pk)

    assert again.status == Attempt.Status.RUNNING and again.started_at == started and again.points == 0


def test_loading_twice_changes_nothing_the_second_time(db):
    first = labs_load()
    second = labs_load()
    assert first.created and not first.errors
    assert second.unchanged == sorted(first.created) and not second.created and not second.updated
