"""Lab fixtures: the repository's labs loaded into the database, and small labs written on the fly for one test."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from labs.models import Lab
from labs.services import labs_load


def lab_folder_write(root: Path, slug: str, yaml_text: str, steps: dict[str, str] | None = None) -> Path:
    folder = root / slug
    (folder / "steps").mkdir(parents=True, exist_ok=True)
    (folder / "lab.yaml").write_text(textwrap.dedent(yaml_text).lstrip())
    for name, text in (steps or {"steps/one.md": "Do the thing.\n"}).items():
        (folder / name).write_text(text)
    return folder


PRACTICE_LAB = """
title: Practice
summary: A lab for tests.
difficulty: beginner
estimated_minutes: 5
environment:
  runtime: runc
scoring:
  max_attempts: 3
  penalty_per_failed_attempt: 1
  hint_cost: 2
steps:
  - slug: make-file
    title: Make a file
    instructions: steps/one.md
    setup: |
      mkdir -p ~/answers
    check:
      timeout: 5
      script: |
        echo "secret debugging detail"
        if [ ! -f ~/answers/done.txt ]; then echo "FAIL: ~/answers/done.txt does not exist yet."; exit 1; fi
        if [ "$(cat ~/answers/done.txt)" = slow ]; then sleep 30; fi
    hints: ["Use touch.", "touch ~/answers/done.txt"]
    solution: |
      touch ~/answers/done.txt
    points: 10
  - slug: second
    title: Second step
    instructions: steps/one.md
    setup: |
      echo ready > ~/second-setup.txt
    check:
      script: test -f ~/second.txt
    solution: touch ~/second.txt
    points: 5
"""


@pytest.fixture
def practice_lab(tmp_path) -> Lab:
    lab_folder_write(tmp_path, "practice", PRACTICE_LAB)
    report = labs_load(root=tmp_path)
    assert not report.errors, report.errors
    return Lab.objects.get(slug="practice")


@pytest.fixture
def lab_sandboxes(transactional_db, docker_engine):
    """For tests that start lab sandboxes through the labs services: every sandbox left running is stopped after."""
    from sandbox import services as sandbox_services
    from sandbox.models import Sandbox
    from sandbox.states import ACTIVE

    yield
    for sandbox in Sandbox.objects.filter(state__in=ACTIVE):
        sandbox_services.sandbox_stop(sandbox_id=sandbox.pk)
