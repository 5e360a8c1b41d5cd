"""Reads for instructors: their cohorts, who they may watch, the progress matrix and the gradebook."""
from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from .models import Cohort, Membership


def instructs(*, instructor: AbstractBaseUser, learner_id: int) -> bool:
    """True when `instructor` teaches a cohort the learner belongs to (superusers operate everything)."""
    if not instructor.is_authenticated or not instructor.is_staff:
        return False
    if instructor.is_superuser:
        return True
    return Membership.objects.filter(learner_id=learner_id, cohort__instructor=instructor).exists()


def cohorts_taught(*, instructor: AbstractBaseUser) -> QuerySet[Cohort]:
    return Cohort.objects.filter(instructor=instructor).prefetch_related("memberships")


def cohorts_joined(*, learner: AbstractBaseUser) -> QuerySet[Cohort]:
    return Cohort.objects.filter(memberships__learner=learner).select_related("instructor")


def cohort_for_instructor(*, instructor: AbstractBaseUser, cohort_id: int) -> Cohort | None:
    cohort = Cohort.objects.filter(pk=cohort_id).first()
    if cohort is None or not (cohort.instructor_id == instructor.pk or instructor.is_superuser):
        return None
    return cohort


def cohort_learners(*, cohort: Cohort) -> list:
    return list(get_user_model().objects.filter(cohort_memberships__cohort=cohort).order_by("username"))


@dataclass(frozen=True)
class MatrixCell:
    status: str  # "passed", "tried", "pending", "none"
    points: int
    attempts: int


def progress_matrix(*, cohort: Cohort):
    """Rows of (learner, [cell per lab step]) and the columns [(lab, [steps])], for the dashboard's grid."""
    from labs.models import Attempt
    from labs.selectors import lab_progress_for, lab_steps, labs_published

    labs = [(lab, lab_steps(lab=lab)) for lab in labs_published()]
    learners = cohort_learners(cohort=cohort)
    pending = set(Attempt.objects.filter(user__in=learners, status__in=[Attempt.Status.PENDING, Attempt.Status.RUNNING])
                  .values_list("user_id", "step_id"))
    rows = []
    for learner in learners:
        cells, total = [], 0
        for lab, _ in labs:
            progress = lab_progress_for(user=learner, lab=lab)
            total += progress.points
            for step in progress.steps:
                if step.passed:
                    status = "passed"
                elif (learner.pk, step.step.pk) in pending:
                    status = "pending"
                elif step.attempts_counted:
                    status = "tried"
                else:
                    status = "none"
                cells.append((step.step, MatrixCell(status=status, points=step.points,
                                                    attempts=step.attempts_counted)))
        rows.append((learner, cells, total))
    return labs, rows


def gradebook(*, cohort: Cohort) -> tuple[list[str], list[list]]:
    """One row per learner, one column per lab, points (partial credit summed per lab)."""
    from labs.selectors import lab_points_for, labs_published

    labs = labs_published()
    header = ["learner", *[lab.slug for lab in labs], "total"]
    rows = []
    for learner in cohort_learners(cohort=cohort):
        points = [lab_points_for(user=learner, lab=lab) for lab in labs]
        rows.append([learner.get_username(), *points, sum(points)])
    return header, rows
