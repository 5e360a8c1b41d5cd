"""Creating cohorts, joining them, and the instructor's actions on a learner's sandbox."""
from __future__ import annotations

import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from labs.services import LabRefused, lab_sandbox_reset
from sandbox import services as sandbox_services
from sandbox.models import Sandbox

from .models import Cohort, Membership
from .selectors import instructs

# No 0/O, 1/I/L: codes are read aloud in class and typed by hand.
INVITE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
INVITE_LENGTH = 8


class CohortError(Exception):
    """A request about cohorts that cannot happen; str() is the message for the user."""


def _invite_code() -> str:
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(INVITE_LENGTH))


def cohort_create(*, instructor: AbstractBaseUser, name: str) -> Cohort:
    if not instructor.is_staff:
        raise PermissionDenied("Only instructors can create cohorts.")
    name = name.strip()
    if not name:
        raise CohortError("Give the cohort a name.")
    if len(name) > 120:
        raise CohortError("A cohort name can be at most 120 characters.")
    for _ in range(5):
        try:
            with transaction.atomic():
                return Cohort.objects.create(instructor=instructor, name=name, invite_code=_invite_code())
        except IntegrityError:
            continue
    raise CohortError("Could not make a unique invite code; please try again.")


def cohort_joinable(*, invite_code: str) -> Cohort:
    """The cohort this code lets a learner join now; CohortError says why not (sign-up checks before the account)."""
    code = "".join(invite_code.split()).upper()
    cohort = Cohort.objects.filter(invite_code=code).first() if code else None
    if cohort is None:
        raise CohortError("No cohort has that invite code (an instructor may have replaced it with a new one). "
                          "Check it with your instructor.")
    if cohort.is_closed:
        raise CohortError(f"“{cohort.name}” is closed to new learners. Ask your instructor to open it.")
    return cohort


def cohort_join(*, learner: AbstractBaseUser, invite_code: str) -> Cohort:
    cohort = cohort_joinable(invite_code=invite_code)
    if cohort.instructor_id == learner.pk:
        raise CohortError("You teach this cohort; learners join it with the code.")
    Membership.objects.get_or_create(cohort=cohort, learner=learner)
    return cohort


class LearnerSandboxAction:
    """An instructor acting on a learner's sandbox: allowed only for learners in one of their cohorts."""

    EXTEND_MINUTES = 30

    def __init__(self, sandbox: Sandbox, instructor: AbstractBaseUser):
        self.sandbox, self.instructor = sandbox, instructor

    def check(self) -> None:
        if not instructs(instructor=self.instructor, learner_id=self.sandbox.owner_id):
            raise PermissionDenied("This learner is not in any of your cohorts.")

    def extend(self) -> Sandbox:
        self.check()
        return sandbox_services.sandbox_extend(sandbox_id=self.sandbox.pk, minutes=self.EXTEND_MINUTES)

    def terminate(self) -> None:
        self.check()
        sandbox_services.sandbox_request_stop(sandbox_id=self.sandbox.pk,
                                              reason="Your instructor stopped this sandbox.")

    def reset(self) -> Sandbox:
        """A fresh sandbox like the old one, which is stopped. A lab's sandbox is reset by the labs app, as the
        learner's own "Reset this step" is: same step set up again, the lab's environment and time limit."""
        self.check()
        old = self.sandbox
        reason = "Your instructor reset this sandbox."
        if old.lab_slug:
            try:
                return lab_sandbox_reset(sandbox=old, reason=reason)
            except LabRefused as refusal:
                raise sandbox_services.SandboxError(str(refusal)) from refusal
        with transaction.atomic():
            # A refused fresh sandbox (quota) rolls the stop back, so the learner keeps the one they had.
            sandbox_services.sandbox_request_stop(sandbox_id=old.pk, reason=reason)
            limits = sandbox_services.default_limits().with_overrides(memory_mb=old.memory_mb, cpus=old.cpus,
                                                                       pids=old.pids_limit)
            return sandbox_services.sandbox_request(owner=old.owner, runtime=old.runtime, image=old.image,
                                                    limits=limits, capabilities=old.capabilities)
