"""Importing lessons: idempotency, updates, unpublishing, and `path:line: message` errors."""
import shutil

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from lessons.models import Lesson, QuizQuestion, QuizSubmission
from lessons.services import LessonLoadError, lessons_load, quiz_submit
from lessons.sources import CONTENT_DIR

pytestmark = pytest.mark.django_db


def test_loading_the_real_content_twice_changes_nothing_the_second_time():
    first = lessons_load(content_dir=CONTENT_DIR)
    second = lessons_load(content_dir=CONTENT_DIR)

    assert first.changed == 7 and len(first.created) == 7
    assert second.changed == 0 and len(second.unchanged) == 7


def test_the_command_reports_zero_changed_on_the_second_run(capsys):
    call_command("lessons", "load")
    call_command("lessons", "load")

    assert capsys.readouterr().out.splitlines()[-1].startswith("0 changed")


def test_an_edited_lesson_is_updated_and_its_questions_follow(content):
    folder = content.lesson("01-intro")
    lessons_load(content_dir=content.root)
    (folder / "lesson.md").write_text((folder / "lesson.md").read_text().replace("Some **text**", "New words"))
    (folder / "quiz.yaml").write_text((folder / "quiz.yaml").read_text().replace("Do containers", "Do all containers"))

    report = lessons_load(content_dir=content.root)

    lesson = Lesson.objects.get(slug="intro")
    assert report.updated == ["intro"] and report.changed == 1
    assert "New words" in lesson.body_html
    assert lesson.questions.get(position=1).prompt == "Do all containers share the host kernel?"


def test_a_removed_lesson_is_unpublished_not_deleted_and_keeps_its_submissions(content, learner):
    content.lesson("01-intro")
    folder = content.lesson("02-gone")
    lessons_load(content_dir=content.root)
    gone = Lesson.objects.get(slug="gone")
    quiz_submit(user=learner, lesson=gone, answers={1: "0"})
    shutil.rmtree(folder)

    report = lessons_load(content_dir=content.root)
    again = lessons_load(content_dir=content.root)

    gone.refresh_from_db()
    assert report.unpublished == ["gone"] and again.changed == 0
    assert gone.is_published is False
    assert QuizSubmission.objects.filter(lesson=gone).count() == 1


def test_a_lesson_that_returns_is_published_again(content):
    folder = content.lesson("01-intro")
    lessons_load(content_dir=content.root)
    moved = folder.rename(content.root / "_hidden")
    lessons_load(content_dir=content.root)
    moved.rename(folder)

    report = lessons_load(content_dir=content.root)

    assert report.updated == ["intro"]
    assert Lesson.objects.get(slug="intro").is_published


def _load_error(content_root) -> str:
    with pytest.raises(LessonLoadError) as caught:
        lessons_load(content_dir=content_root)
    return str(caught.value)


def test_invalid_front_matter_yaml_is_reported_at_its_line_in_lesson_md(content):
    folder = content.lesson("01-intro", front="title: Fargate: containers\norder: 1\nsummary: s\n")

    message = _load_error(content.root)

    # line 1 is '---', so the title is on line 2 of lesson.md
    assert message.startswith(f"{folder / 'lesson.md'}:2: invalid YAML")


def test_a_missing_title_names_the_file_and_line(content):
    folder = content.lesson("01-intro", front="order: 1\nsummary: s\n")

    assert _load_error(content.root) == f"{folder / 'lesson.md'}:2: front matter needs 'title' as non-empty text"


def test_an_unknown_front_matter_key_points_at_its_line(content):
    folder = content.lesson("01-intro", front="title: T\norder: 1\nsummary: s\nprerequisite: [x]\n")

    assert _load_error(content.root).startswith(f"{folder / 'lesson.md'}:5: unknown front matter key 'prerequisite'")


def test_a_quiz_answer_that_is_not_one_of_the_choices_points_at_the_answer_line(content):
    quiz = """\
    questions:
      - prompt: A?
        choices: [one, two]
        answer: three
        explanation: because
      - prompt: B?
        accept: [b]
        explanation: because
      - prompt: C?
        accept: [c]
        explanation: because
    """
    folder = content.lesson("01-intro", quiz=quiz)

    assert _load_error(content.root) == (f"{folder / 'quiz.yaml'}:4: question 1: 'answer' must repeat one of the "
                                         f"choices exactly")


def test_invalid_quiz_yaml_and_an_unknown_prerequisite_are_reported_together(content):
    bad_quiz = content.lesson("01-intro", quiz="questions:\n  - prompt: [unclosed\n")
    other = content.lesson("02-next", front="title: T\norder: 2\nsummary: s\nprerequisites: [nowhere]\n")

    message = _load_error(content.root)

    assert f"{bad_quiz / 'quiz.yaml'}:" in message and "invalid YAML" in message
    assert f"{other / 'lesson.md'}:5: prerequisite 'nowhere' is not a lesson" in message


def test_a_missing_diagram_file_is_reported_at_the_markdown_line(content):
    folder = content.lesson("01-intro", body="Intro.\n\n![A diagram](nope.svg)\n")

    # '---', 5 front matter lines, '---' → the body starts on line 8; the diagram is its third line
    assert _load_error(content.root) == f"{folder / 'lesson.md'}:10: diagram nope.svg not found beside lesson.md"


def test_nothing_is_imported_when_any_lesson_has_an_error(content):
    content.lesson("01-good")
    content.lesson("02-bad", front="title: T\norder: one\nsummary: s\n")

    _load_error(content.root)

    assert not Lesson.objects.exists() and not QuizQuestion.objects.exists()


def test_the_command_prints_each_error_and_fails(content, capsys):
    folder = content.lesson("01-intro", quiz=None)

    with pytest.raises(CommandError, match="1 problem"):
        call_command("lessons", "load", "--content-dir", str(content.root))

    assert f"{folder / 'quiz.yaml'}:1: every lesson ends with a quiz" in capsys.readouterr().err
