"""Creating cohorts, joining them, and the instructor's actions on a learner's sandbox."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import PasswordChangeRequired

from labs.models import Lab
from labs.services import LabRefused, lab_environment, lab_sandbox_reset
from sandbox import services as sandbox_services
from sandbox.engine.docker import engine
from sandbox.models import PoolReservation, Sandbox

from .models import ClassSession, Cohort, Membership
from .roster import RosterLine, RosterTooLong, roster_read
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


# --- The instructor's roster ---------------------------------------------------------------------------------------

ONE_TIME_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off paper


def one_time_password() -> str:
    """Twelve characters in three groups (about 59 random bits), e.g. k7wq-m3nd-x2pf."""
    chars = [secrets.choice(ONE_TIME_ALPHABET) for _ in range(12)]
    return "-".join("".join(chars[i:i + 4]) for i in range(0, 12, 4))


def _one_time_hash(password: str) -> str:
    return make_password(password, hasher="pbkdf2_sha256_onetime")


def _check_teaches(*, cohort: Cohort, instructor: AbstractBaseUser) -> None:
    if not instructor.is_staff or not (cohort.instructor_id == instructor.pk or instructor.is_superuser):
        raise PermissionDenied("Only this cohort's instructor can change its roster.")


@dataclass
class RosterResult:
    lines: list[RosterLine]
    passwords: list[tuple[str, str, str]] = field(default_factory=list)  # (username, email, one-time password)

    @property
    def refused(self) -> list[RosterLine]:
        return [line for line in self.lines if line.problem]


def roster_add(*, cohort: Cohort, instructor: AbstractBaseUser, text: str) -> RosterResult:
    """Creates an account for every line, joins them to the cohort and gives each a one-time password, all in one
    transaction; when any line is refused nothing is created, and every line says what happened or would happen."""
    _check_teaches(cohort=cohort, instructor=instructor)
    try:
        lines = roster_read(text=text)
    except RosterTooLong as error:
        raise CohortError(str(error)) from error
    if not lines:
        raise CohortError("The list is empty: paste one username per line, optionally followed by a comma and an "
                          "e-mail address.")
    result = RosterResult(lines=lines)
    if result.refused:
        return result
    User = get_user_model()
    passwords = [(line.username, line.email, one_time_password()) for line in lines]
    try:
        with transaction.atomic():
            User.objects.bulk_create([User(username=name, email=email, password=_one_time_hash(password))
                                      for name, email, password in passwords], batch_size=500)
            users = list(User.objects.filter(username__in=[name for name, _, _ in passwords]))
            Membership.objects.bulk_create([Membership(cohort=cohort, learner=user) for user in users],
                                           batch_size=500)
            PasswordChangeRequired.objects.bulk_create([PasswordChangeRequired(user=user) for user in users],
                                                       batch_size=500)
    except IntegrityError as error:  # somebody took one of the usernames since they were checked
        raise CohortError("One of these usernames was taken a moment ago; nothing was created. "
                          "Add the list again to see which.") from error
    result.passwords = passwords
    return result


def cohort_learner_remove(*, cohort: Cohort, instructor: AbstractBaseUser, learner_id: int) -> str:
    """Takes the learner out of the cohort; their account, sandboxes and attempts stay theirs. Returns the username."""
    _check_teaches(cohort=cohort, instructor=instructor)
    membership = Membership.objects.filter(cohort=cohort, learner_id=learner_id).select_related("learner").first()
    if membership is None:
        raise CohortError("That learner is not in this cohort (any more).")
    membership.delete()
    return membership.learner.get_username()


def learner_password_reset(*, cohort: Cohort, instructor: AbstractBaseUser, learner_id: int) -> tuple[str, str]:
    """A new one-time password for a learner of the cohort, to be changed at their next sign-in; signs them out
    everywhere. Returns (username, password)."""
    _check_teaches(cohort=cohort, instructor=instructor)
    membership = Membership.objects.filter(cohort=cohort, learner_id=learner_id).select_related("learner").first()
    if membership is None:
        raise CohortError("That learner is not in this cohort (any more).")
    learner = membership.learner
    if learner.is_staff:
        raise PermissionDenied("A staff account's password is reset by an operator.")
    if not learner.is_active:
        raise CohortError(f"{learner.get_username()} is an account its learner deleted (or an operator "
                          f"deactivated); it cannot be given a password.")
    password = one_time_password()
    with transaction.atomic():
        learner.password = _one_time_hash(password)
        learner.save(update_fields=["password"])
        PasswordChangeRequired.objects.update_or_create(user=learner)
    return learner.get_username(), password


def cohort_invite_regenerate(*, cohort: Cohort, instructor: AbstractBaseUser) -> Cohort:
    """A new invite code; the old one stops working at once. Learners already in stay in."""
    _check_teaches(cohort=cohort, instructor=instructor)
    for _ in range(5):
        try:
            with transaction.atomic():
                cohort.invite_code = _invite_code()
                cohort.save(update_fields=["invite_code"])
                return cohort
        except IntegrityError:
            continue
    raise CohortError("Could not make a unique invite code; please try again.")


def cohort_joins_set(*, cohort: Cohort, instructor: AbstractBaseUser, closed: bool) -> Cohort:
    """Closes the cohort to new joins (by code or sign-up) or opens it again; the roster still adds learners."""
    _check_teaches(cohort=cohort, instructor=instructor)
    cohort.is_closed = closed
    cohort.save(update_fields=["is_closed"])
    return cohort


# --- class sessions -------------------------------------------------------------------------------------------------

MAX_CLASS_LEARNERS = 200
MAX_CLASS_MINUTES = 8 * 60


@dataclass(frozen=True)
class ClassSessionScheduled:
    session: ClassSession
    # How many of the expected sandboxes fit in the host's memory budget right now, when fewer than expected.
    preparable: int | None = None


def class_session_schedule(*, instructor: AbstractBaseUser, cohort: Cohort, lab: Lab, starts_at: datetime,
                           minutes: int = 60, expected: int | None = None) -> ClassSessionScheduled:
    """Schedules a class session and reserves its warm sandboxes: from CLASS_LEAD_MINUTES before `starts_at` the lab's
    pool is filled to the expected count, kept for `minutes`, then drained."""
    _check_teaches(cohort=cohort, instructor=instructor)
    now = timezone.now()
    if starts_at < now - timedelta(minutes=1):
        raise CohortError("That start time has already passed: choose a time from now on.")
    if not 5 <= minutes <= MAX_CLASS_MINUTES:
        raise CohortError(f"A class session lasts between 5 and {MAX_CLASS_MINUTES} minutes.")
    members = list(cohort.memberships.values_list("learner_id", flat=True))
    expected = len(members) if expected is None else expected
    if not 1 <= expected <= MAX_CLASS_LEARNERS:
        raise CohortError(f"Expect between 1 and {MAX_CLASS_LEARNERS} learners"
                          + (" (this cohort has no learners yet: add them, or say how many to expect)."
                             if not members and expected == 0 else "."))
    if not lab.is_published:
        raise CohortError("That lab is not published.")
    environment = lab_environment(lab)
    profile = environment.profile
    if profile is None:
        raise CohortError("This lab's sandboxes are made one by one for each learner, so they cannot be started ahead.")
    if not engine().has_image(profile.image):
        raise CohortError(f"This lab's image {profile.image} is not built on this host, so its sandboxes cannot "
                          f"start: ask the operator to run `python manage.py sandbox images`.")
    ends_at = starts_at + timedelta(minutes=minutes)
    lead = timedelta(minutes=settings.SANDCLOUD["CLASS_LEAD_MINUTES"])
    with transaction.atomic():
        overlapping = (ClassSession.objects.select_for_update()
                       .filter(cohort=cohort, cancelled_at__isnull=True, starts_at__lt=ends_at, ends_at__gt=starts_at)
                       .select_related("lab").first())
        if overlapping is not None:
            raise CohortError(f"This cohort already has a class session then: {overlapping.lab.title} from "
                              f"{timezone.localtime(overlapping.starts_at):%H:%M} to "
                              f"{timezone.localtime(overlapping.ends_at):%H:%M}. Cancel it first, or choose "
                              f"another time.")
        reservation = PoolReservation.objects.create(
            instance=settings.SANDCLOUD["INSTANCE"], label=f"{lab.title} for {cohort.name}",
            profile_key=profile.key, image=profile.image, runtime=profile.runtime, memory_mb=profile.memory_mb,
            cpus=profile.cpus, pids_limit=profile.pids, expected=expected, owner_ids=members, lab_slug=lab.slug,
            ramp_from=starts_at - lead, ready_by=starts_at, until=ends_at)
        session = ClassSession.objects.create(cohort=cohort, lab=lab, starts_at=starts_at, ends_at=ends_at,
                                              expected_learners=expected, reservation=reservation,
                                              created_by=instructor)
    preparable = sandbox_services.memory_preparable(memory_mb=profile.memory_mb)
    return ClassSessionScheduled(session=session, preparable=preparable if preparable < expected else None)


def class_session_cancel(*, instructor: AbstractBaseUser, session: ClassSession) -> ClassSession:
    """Cancels a session; its containers not yet claimed are removed by the pools' next pass."""
    _check_teaches(cohort=session.cohort, instructor=instructor)
    with transaction.atomic():
        if session.reservation_id:
            PoolReservation.objects.filter(pk=session.reservation_id).delete()
        ClassSession.objects.filter(pk=session.pk).update(cancelled_at=timezone.now())
    session.refresh_from_db()
    return session
