"""Writes for lessons: importing the content folder, and grading a learner's quiz submission."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from . import grading
from .models import Lesson, QuizQuestion, QuizSubmission
from .rendering import RENDERER_VERSION, lesson_html
from .sources import CONTENT_DIR, LessonSource, LessonSourceError, read_lessons


class LessonLoadError(Exception):
    """The content has mistakes; nothing was imported. `errors` holds each one as `path:line: message`."""

    def __init__(self, errors: list[LessonSourceError]):
        self.errors = errors
        super().__init__("\n".join(str(error) for error in errors))


@dataclass
class LoadReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unpublished: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.created) + len(self.updated) + len(self.unpublished)


def _questions_replace(*, lesson: Lesson, source: LessonSource) -> None:
    """Updates questions in place by position, so submissions never point at a vanished row."""
    for question in source.questions:
        QuizQuestion.objects.update_or_create(
            lesson=lesson, position=question.position,
            defaults={
                "kind": QuizQuestion.Kind.CHOICE if question.choices else QuizQuestion.Kind.SHORT,
                "prompt": question.prompt, "explanation": question.explanation,
                "choices": list(question.choices), "correct_choice": question.correct_choice,
                "accepted_answers": list(question.accepted_answers),
            },
        )
    lesson.questions.filter(position__gt=len(source.questions)).delete()


def lessons_load(*, content_dir: Path = CONTENT_DIR) -> LoadReport:
    """Imports every lesson folder: creates new lessons, updates changed ones, unpublishes removed ones.

    Idempotent: a lesson whose files (and the renderer) have not changed is left alone. All-or-nothing: any mistake
    in any lesson raises LessonLoadError before a single row is written.
    """
    sources, errors = read_lessons(content_dir, hash_salt=RENDERER_VERSION)
    rendered: dict[str, str] = {}
    existing = {lesson.slug: lesson for lesson in Lesson.objects.all()}
    for source in sources:
        current = existing.get(source.slug)
        if current and current.source_hash == source.source_hash and current.is_published:
            continue
        try:
            rendered[source.slug] = lesson_html(source)
        except LessonSourceError as error:
            errors.append(error)
    if errors:
        raise LessonLoadError(errors)

    report = LoadReport()
    with transaction.atomic():
        for source in sources:
            current = existing.get(source.slug)
            if source.slug not in rendered:
                report.unchanged.append(source.slug)
                continue
            lesson, created = Lesson.objects.update_or_create(slug=source.slug, defaults={
                "title": source.title, "order": source.order, "summary": source.summary,
                "body_html": rendered[source.slug], "prerequisites": list(source.prerequisites),
                "lab_slugs": list(source.lab_slugs), "source_path": source.folder.name,
                "source_hash": source.source_hash, "is_published": True,
            })
            _questions_replace(lesson=lesson, source=source)
            (report.created if created or current is None else report.updated).append(source.slug)
        present = {source.slug for source in sources}
        for slug, lesson in existing.items():
            if slug not in present and lesson.is_published:
                lesson.is_published = False
                lesson.save(update_fields=["is_published", "updated_at"])
                report.unpublished.append(slug)
    return report


@dataclass(frozen=True)
class GradedAnswer:
    position: int
    prompt: str
    given: str
    correct: bool
    correct_answer: str
    explanation: str


def quiz_submit(*, user, lesson: Lesson, answers: dict[int, str]) -> QuizSubmission:
    """Grades `answers` (question position → the choice index or the typed text) and records the submission.

    An unanswered question counts as wrong; answers to positions the quiz does not have are ignored.
    """
    graded = []
    for question in lesson.questions.all():
        given = str(answers.get(question.position, ""))[:500]
        graded.append(GradedAnswer(
            position=question.position, prompt=question.prompt,
            given=grading.answer_display(question=question, given=given),
            correct=grading.answer_is_correct(question=question, given=given),
            correct_answer=grading.correct_answer_display(question),
            explanation=question.explanation,
        ))
    return QuizSubmission.objects.create(
        user=user, lesson=lesson, answers=[answer.__dict__ for answer in graded],
        score=sum(answer.correct for answer in graded), total=len(graded),
    )
