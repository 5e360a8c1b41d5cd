"""Reads about labs: the catalogue, a learner's progress through a lab, their attempts and their lab sandbox."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied

from sandbox.models import Sandbox
from sandbox.states import ACTIVE

from .models import Attempt, HintReveal, Lab, LabStep
from .rendering import inline_html
from .scoring import attempts_left, step_points


@dataclass
class StepProgress:
    step: LabStep
    unlocked: bool
    passed: bool
    points: int
    attempts_counted: int
    attempts_left: int | None  # None: unlimited
    hints_revealed: list[str]
    latest: Attempt | None
    pending: Attempt | None

    @property
    def hints_total(self) -> int:
        return len(self.step.hints)

    @property
    def has_more_hints(self) -> bool:
        return len(self.hints_revealed) < self.hints_total


@dataclass
class LabProgress:
    lab: Lab
    steps: list[StepProgress] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(s.points for s in self.steps)

    @property
    def max_points(self) -> int:
        return sum(s.step.points for s in self.steps)

    @property
    def passed_count(self) -> int:
        return sum(1 for s in self.steps if s.passed)

    @property
    def completed(self) -> bool:
        return bool(self.steps) and all(s.passed for s in self.steps)

    @property
    def started(self) -> bool:
        return any(s.passed or s.latest for s in self.steps)

    @property
    def current(self) -> StepProgress | None:
        return next((s for s in self.steps if not s.passed), self.steps[-1] if self.steps else None)

    @property
    def percent(self) -> int:
        return int(100 * self.passed_count / len(self.steps)) if self.steps else 0


def labs_published() -> list[Lab]:
    return list(Lab.objects.filter(is_published=True))


def lab_steps(*, lab: Lab) -> list[LabStep]:
    return list(lab.steps.filter(is_active=True).order_by("position"))


def lab_progress_for(*, user: AbstractBaseUser, lab: Lab) -> LabProgress:
    """Where the learner stands in a lab: which steps are unlocked and passed, points per step and in total."""
    attempts = list(Attempt.objects.filter(user=user, lab=lab).order_by("created_at", "pk"))
    reveals = HintReveal.objects.filter(user=user, step__lab=lab).order_by("index")
    revealed: dict[int, list[int]] = {}
    for reveal in reveals:
        revealed.setdefault(reveal.step_id, []).append(reveal.index)
    progress = LabProgress(lab=lab)
    unlocked = True
    for step in lab_steps(lab=lab):
        mine = [a for a in attempts if a.step_id == step.pk]
        passed = any(a.status == Attempt.Status.PASSED for a in mine)
        counted = sum(1 for a in mine if a.status in (Attempt.Status.FAILED, Attempt.Status.TIMED_OUT))
        progress.steps.append(StepProgress(
            step=step, unlocked=unlocked, passed=passed,
            points=step_points([a.points for a in mine if a.is_finished]),
            attempts_counted=counted, attempts_left=attempts_left(rules=lab.scoring, counted=counted),
            hints_revealed=[inline_html(step.hints[i]) for i in revealed.get(step.pk, []) if i < len(step.hints)],
            latest=mine[-1] if mine else None,
            pending=next((a for a in mine if not a.is_finished), None),
        ))
        unlocked = unlocked and passed
    return progress


def labs_progress_for(*, user: AbstractBaseUser) -> list[LabProgress]:
    return [lab_progress_for(user=user, lab=lab) for lab in labs_published()]


def lab_points_for(*, user: AbstractBaseUser, lab: Lab) -> int:
    return lab_progress_for(user=user, lab=lab).points


def steps_current(*, user: AbstractBaseUser, lab: Lab) -> LabStep:
    return lab_progress_for(user=user, lab=lab).current.step


def step_is_passed(*, user: AbstractBaseUser, step: LabStep) -> bool:
    return Attempt.objects.filter(user=user, step=step, status=Attempt.Status.PASSED).exists()


def step_is_unlocked(*, user: AbstractBaseUser, step: LabStep) -> bool:
    earlier = LabStep.objects.filter(lab_id=step.lab_id, is_active=True, position__lt=step.position)
    passed = (Attempt.objects.filter(user=user, step__in=earlier, status=Attempt.Status.PASSED)
              .values("step").distinct().count())
    return passed == earlier.count()


def lab_sandbox_for(*, user: AbstractBaseUser, lab: Lab) -> Sandbox | None:
    """The learner's active sandbox that the lab started (a sandbox merely labelled with the lab's name is not it)."""
    return (Sandbox.objects.filter(owner=user, lab_sandbox__lab=lab, state__in=ACTIVE)
            .order_by("-created_at").first())


def attempt_for_viewer(*, user: AbstractBaseUser, attempt_id: int) -> Attempt:
    """An attempt its learner (or their instructor) may see; anybody else gets PermissionDenied."""
    from cohorts.selectors import instructs

    attempt = Attempt.objects.select_related("step", "lab").get(pk=attempt_id)
    if attempt.user_id != user.pk and not instructs(instructor=user, learner_id=attempt.user_id):
        raise PermissionDenied("You can only see your own attempts.")
    return attempt
