"""Pages: the lesson catalogue, one lesson (public to read), its quiz (login required) and a learner's results."""
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from . import selectors, services


def catalogue(request):
    lessons = list(selectors.lessons_published())
    best = selectors.best_scores_for_user(user=request.user)
    labs = selectors.lesson_labs_progress(user=request.user, lessons=lessons)
    rows = [{"lesson": lesson, "best": best.get(lesson.pk), "labs": labs[lesson.pk]} for lesson in lessons]
    return render(request, "lessons/catalogue.html", {"rows": rows})


def _lesson_or_404(slug: str):
    lesson = selectors.lesson_published(slug=slug)
    if lesson is None:
        raise Http404("No such lesson.")
    return lesson


def _lesson_page(request, lesson, *, result=None):
    return render(request, "lessons/lesson_detail.html", {
        "lesson": lesson,
        "questions": lesson.questions.all(),
        "prerequisites": selectors.lessons_by_slug(slugs=list(lesson.prerequisites)),
        "labs": selectors.lab_links(lesson=lesson),
        "result": result,
        "history": selectors.submissions_for_user(user=request.user, lesson=lesson)[:5],
    })


def lesson_detail(request, slug: str):
    return _lesson_page(request, _lesson_or_404(slug))


@login_required
@require_POST
def quiz_submit(request, slug: str):
    lesson = _lesson_or_404(slug)
    answers = {question.position: request.POST.get(f"q{question.position}", "") for question in lesson.questions.all()}
    submission = services.quiz_submit(user=request.user, lesson=lesson, answers=answers)
    return redirect("lessons:submission", slug=lesson.slug, submission_id=submission.pk)


@login_required
def submission_detail(request, slug: str, submission_id: int):
    lesson = _lesson_or_404(slug)
    submission = selectors.submission_for_user(user=request.user, lesson=lesson, submission_id=submission_id)
    if submission is None:
        # Another learner's submission is indistinguishable from a missing one.
        raise Http404("No such submission.")
    return _lesson_page(request, lesson, result=submission)
