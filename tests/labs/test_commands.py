"""The operator's commands start a lab's sandbox only the lab's way: `labs start`, never `sandbox start --lab`."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from labs.models import Lab
from labs.selectors import lab_sandbox_for
from labs.services import labs_load
from sandbox.models import Sandbox


def test_sandbox_start_refuses_a_lab_and_says_how_and_creates_nothing(learner):
    with pytest.raises(CommandError, match="manage.py labs start --user ada --lab resource-limits"):
        call_command("sandbox", "start", "--user", "ada", "--lab", "resource-limits")

    assert not Sandbox.objects.filter(owner=learner).exists()


@pytest.mark.docker
def test_labs_start_gives_the_learner_the_labs_sandbox(lab_sandboxes, learner, capsys):
    labs_load()
    lab = Lab.objects.get(slug="resource-limits")

    call_command("labs", "start", "--user", "ada", "--lab", "resource-limits")

    sandbox = lab_sandbox_for(user=learner, lab=lab)
    assert sandbox is not None and (sandbox.memory_mb, sandbox.pids_limit) == (128, 64)
    assert capsys.readouterr().out.split()[0] == str(sandbox.pk)


def test_labs_start_of_an_unknown_lab_is_refused(learner):
    with pytest.raises(CommandError, match="No published lab 'no-such-lab'"):
        call_command("labs", "start", "--user", "ada", "--lab", "no-such-lab")
