"""Fixtures for lesson tests: a throwaway content folder that tests write lesson folders into."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

DEFAULT_QUIZ = """\
questions:
  - prompt: Do containers share the host kernel?
    choices: ["Yes", "No"]
    answer: "Yes"
    explanation: Containers are isolated processes on the host's kernel.
  - prompt: Maximum Lambda timeout in minutes?
    accept: ["15", "15 minutes", "fifteen minutes"]
    explanation: 900 seconds is 15 minutes.
  - prompt: Which kernel feature limits memory?
    choices: [namespaces, cgroups]
    answer: cgroups
    explanation: cgroups limit resources; namespaces limit what is visible.
"""


class ContentDir:
    """Writes lesson folders the way an author would."""

    def __init__(self, root: Path):
        self.root = root

    def lesson(self, folder: str, *, front: str | None = None, body: str = "Some **text**.\n",
               quiz: str | None = DEFAULT_QUIZ, files: dict[str, str] | None = None) -> Path:
        path = self.root / folder
        path.mkdir(parents=True, exist_ok=True)
        slug = folder.split("-", 1)[1] if folder[0].isdigit() else folder
        if front is None:
            front = f"title: Lesson {slug}\norder: 1\nsummary: About {slug}.\nprerequisites: []\nlabs: [{slug}-lab]\n"
        (path / "lesson.md").write_text("---\n" + textwrap.dedent(front) + "---\n" + textwrap.dedent(body))
        if quiz is not None:
            (path / "quiz.yaml").write_text(textwrap.dedent(quiz))
        for name, text in (files or {}).items():
            (path / name).write_text(text)
        return path


@pytest.fixture
def content(tmp_path) -> ContentDir:
    return ContentDir(tmp_path / "content")
