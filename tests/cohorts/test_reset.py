"""An instructor's "Reset" of a learner's lab sandbox: the learner lands on the step they were on, set up again, in the
lab's environment, exactly as with their own "Reset this step"."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client

from labs.models import Attempt, Lab
from labs.selectors import lab_sandbox_for
from labs.services import attempt_request, lab_start, labs_load
from sandbox.models import Sandbox
from tests.conftest import run_in
from tests.labs.conftest import lab_sandboxes, practice_lab  # noqa: F401 - fixtures

pytestmark = pytest.mark.docker


def _reset_by(instructor, sandbox: Sandbox) -> Sandbox:
    client = Client()
    client.force_login(instructor)
    cohort = instructor.cohorts_taught.get()
    client.post(f"/cohorts/{cohort.pk}/sandboxes/{sandbox.pk}/reset/")
    return Sandbox.objects.filter(owner=sandbox.owner).exclude(pk=sandbox.pk).get(state=Sandbox.State.RUNNING)


def test_a_reset_lands_the_learner_on_their_step_set_up_again(lab_sandboxes, learner, instructor, practice_lab):
    # Given a learner who passed the first step and is on the second, whose setup wrote ~/second-setup.txt
    old = lab_start(user=learner, lab=practice_lab)
    run_in(old, "touch ~/answers/done.txt")
    first, second = practice_lab.steps.order_by("position")
    passed = attempt_request(user=learner, sandbox=old, step=first)
    passed.refresh_from_db()
    assert passed.status == Attempt.Status.PASSED

    # When their instructor resets the sandbox
    fresh = _reset_by(instructor, old)

    # Then the fresh sandbox is the lab's, set up for the second step (and only that: nothing of the old one is left)
    old.refresh_from_db()
    assert old.state == Sandbox.State.STOPPED
    assert lab_sandbox_for(user=learner, lab=practice_lab) == fresh
    assert run_in(fresh, "cat ~/second-setup.txt") == (0, "ready\n")
    assert run_in(fresh, "test -e ~/answers/done.txt")[0] != 0
    # and the learner can check the second step in it
    run_in(fresh, "touch ~/second.txt")
    attempt = attempt_request(user=learner, sandbox=fresh, step=second)
    attempt.refresh_from_db()
    assert attempt.status == Attempt.Status.PASSED


def test_a_reset_keeps_the_labs_environment_and_time_limit(lab_sandboxes, learner, other_learner, instructor):
    labs_load()
    lab = Lab.objects.get(slug="resource-limits")
    old = lab_start(user=learner, lab=lab)
    bystander = lab_start(user=other_learner, lab=lab)

    fresh = _reset_by(instructor, old)

    # The lab's 128 MB, 64 processes and 30 minutes, not the platform's defaults
    assert (fresh.memory_mb, fresh.pids_limit) == (128, 64)
    assert fresh.expires_at - fresh.created_at == timedelta(minutes=30)
    assert run_in(fresh, "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max") == (0, "64\n")
    # Another learner of the same lab is untouched
    bystander.refresh_from_db()
    assert bystander.state == Sandbox.State.RUNNING
