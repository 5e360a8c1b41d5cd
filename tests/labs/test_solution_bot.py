"""The solution bot: in a real sandbox, every step's check fails before its solution runs and passes after it."""
from __future__ import annotations

import pytest

from labs.format import CONTENT_DIR
from labs.models import Attempt, Lab
from labs.selectors import lab_progress_for
from labs.services import attempt_request, lab_start, labs_load, step_solve
from sandbox.models import Sandbox

pytestmark = pytest.mark.docker

LAB_SLUGS = sorted(p.name for p in CONTENT_DIR.iterdir() if (p / "lab.yaml").is_file())


def test_every_lab_folder_loads(db):
    report = labs_load()
    assert not report.errors, "\n".join(map(str, report.errors))
    assert sorted(report.created + report.updated + report.unchanged) == LAB_SLUGS


@pytest.mark.parametrize("slug", LAB_SLUGS)
def test_solutions_pass_every_check_that_failed_before_them(slug, lab_sandboxes, learner):
    labs_load()
    lab = Lab.objects.get(slug=slug)
    sandbox = lab_start(user=learner, lab=lab)
    sandbox.refresh_from_db()
    assert sandbox.state == Sandbox.State.RUNNING, sandbox.failure_reason
    assert sandbox.runtime == lab.runtime

    for step in lab.steps.filter(is_active=True).order_by("position"):
        before = attempt_request(user=learner, sandbox=sandbox, step=step)
        before.refresh_from_db()
        assert before.status == Attempt.Status.FAILED, (
            f"{slug}/{step.slug}: the check must fail before the solution, got {before.status}: {before.message}")
        assert before.message, f"{slug}/{step.slug}: a failing check should tell the learner something"

        exit_code, output = step_solve(sandbox=sandbox, step=step)
        assert exit_code == 0, f"{slug}/{step.slug}: solution exited {exit_code}: {output}"

        after = attempt_request(user=learner, sandbox=sandbox, step=step)
        after.refresh_from_db()
        assert after.status == Attempt.Status.PASSED, (
            f"{slug}/{step.slug}: the check must pass after the solution: {after.message}\n{after.output}")

    progress = lab_progress_for(user=learner, lab=lab)
    assert progress.completed
    assert progress.points > 0
