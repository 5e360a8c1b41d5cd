"""Reads of lessons and quiz submissions for pages."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.urls import reverse

from .models import Lesson, QuizSubmission


def lessons_published() -> QuerySet[Lesson]:
    return Lesson.objects.filter(is_published=True).order_by("order", "slug")


def lesson_published(*, slug: str) -> Lesson | None:
    return lessons_published().filter(slug=slug).prefetch_related("questions").first()


def submissions_for_user(*, user, lesson: Lesson | None = None) -> QuerySet[QuizSubmission]:
    """A learner's own submissions only: there is deliberately no way to ask for someone else's."""
    if not user.is_authenticated:
        return QuizSubmission.objects.none()
    queryset = QuizSubmission.objects.filter(user=user).select_related("lesson")
    return queryset.filter(lesson=lesson) if lesson is not None else queryset


def submission_for_user(*, user, lesson: Lesson, submission_id: int) -> QuizSubmission | None:
    return submissions_for_user(user=user, lesson=lesson).filter(pk=submission_id).first()


def best_scores_for_user(*, user) -> dict[int, QuizSubmission]:
    """lesson id → the learner's best submission (highest score, then the latest)."""
    best: dict[int, QuizSubmission] = {}
    for submission in submissions_for_user(user=user).order_by("score", "created"):
        best[submission.lesson_id] = submission
    return best


@dataclass(frozen=True)
class LabLink:
    slug: str
    url: str | None  # None: the lab is not written yet ("coming soon")


def _published_lab_urls(slugs: list[str]) -> dict[str, str]:
    """URLs of the named labs that are published; the others read "coming soon"."""
    from labs.models import Lab

    published = Lab.objects.filter(slug__in=slugs, is_published=True).values_list("slug", flat=True)
    return {slug: reverse("labs-detail", kwargs={"slug": slug}) for slug in published}


def lab_links(*, lesson: Lesson) -> list[LabLink]:
    urls = _published_lab_urls(list(lesson.lab_slugs))
    return [LabLink(slug=slug, url=urls.get(slug)) for slug in lesson.lab_slugs]


def lessons_by_slug(*, slugs: list[str]) -> list[Lesson]:
    """Published lessons for the given slugs, in the given order (prerequisite links)."""
    found = {lesson.slug: lesson for lesson in lessons_published().filter(slug__in=slugs)}
    return [found[slug] for slug in slugs if slug in found]


def lesson_labs_progress(*, user, lessons: list[Lesson]) -> dict[int, list]:
    """For each lesson, its published labs with the learner's progress through each (None when signed out)."""
    from labs.models import Lab
    from labs.selectors import lab_progress_for

    slugs = {slug for lesson in lessons for slug in lesson.lab_slugs}
    labs = {lab.slug: lab for lab in Lab.objects.filter(slug__in=slugs, is_published=True)}
    signed_in = user.is_authenticated
    return {lesson.pk: [(labs[slug], lab_progress_for(user=user, lab=labs[slug]) if signed_in else None)
                        for slug in lesson.lab_slugs if slug in labs]
            for lesson in lessons}
