"""Cohort pages: create and join, the instructor dashboard, a learner's history, the gradebook and replays."""
from __future__ import annotations

import csv
import datetime

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_POST

from sandbox import selectors as sandbox_selectors
from sandbox.models import Sandbox
from sandbox.recording import recording_expired
from sandbox.services import SandboxError

from . import selectors, services
from .models import ClassSession
from .roster import csv_cell_safe


@login_required
def cohort_index(request):
    if request.method == "POST":
        try:
            if request.POST.get("action") == "create":
                cohort = services.cohort_create(instructor=request.user, name=request.POST.get("name", ""))
                messages.success(request, f"Cohort “{cohort.name}” created. Its invite code is {cohort.invite_code}.")
                return redirect("cohort-dashboard", cohort_id=cohort.pk)
            cohort = services.cohort_join(learner=request.user, invite_code=request.POST.get("invite_code", ""))
            messages.success(request, f"You joined “{cohort.name}”.")
        except services.CohortError as error:
            messages.error(request, str(error))
        except PermissionDenied as error:
            messages.error(request, str(error))
        return redirect("cohort-index")
    return render(request, "cohorts/index.html", {
        "taught": selectors.cohorts_taught(instructor=request.user) if request.user.is_staff else [],
        "joined": selectors.cohorts_joined(learner=request.user),
    })


def _cohort_or_403(request, cohort_id: int):
    cohort = selectors.cohort_for_instructor(instructor=request.user, cohort_id=cohort_id)
    if cohort is None:
        raise PermissionDenied("Only this cohort's instructor can see its dashboard.")
    return cohort


@login_required
def cohort_dashboard(request, cohort_id: int):
    cohort = _cohort_or_403(request, cohort_id)
    labs, rows = selectors.progress_matrix(cohort=cohort)
    return render(request, "cohorts/dashboard.html", {"labs": labs, "rows": rows,
                                                      **_class_sessions_context(request, cohort)})


@login_required
def cohort_matrix_partial(request, cohort_id: int):
    cohort = _cohort_or_403(request, cohort_id)
    labs, rows = selectors.progress_matrix(cohort=cohort)
    return render(request, "cohorts/_matrix.html", {"cohort": cohort, "labs": labs, "rows": rows})


@login_required
def cohort_sandboxes_partial(request, cohort_id: int):
    """Active sandboxes of the cohort with CPU and memory from Docker (one sample per sandbox shared by all viewers)."""
    cohort = _cohort_or_403(request, cohort_id)
    sandboxes = list(sandbox_selectors.sandboxes_active().filter(owner__cohort_memberships__cohort=cohort))
    running = [s for s in sandboxes if s.state == Sandbox.State.RUNNING]
    stats = selectors.sandboxes_stats(sandboxes=running)
    rows = [(s, stats.get(s.pk)) for s in sandboxes]
    return render(request, "cohorts/_sandboxes.html", {"cohort": cohort, "rows": rows})


@login_required
@require_POST
def cohort_sandbox_action(request, cohort_id: int, sandbox_id: int, action: str):
    cohort = _cohort_or_403(request, cohort_id)
    sandbox = get_object_or_404(Sandbox, pk=sandbox_id)
    act = services.LearnerSandboxAction(sandbox, request.user)
    try:
        if action == "extend":
            act.extend()
            messages.success(request, f"{sandbox.owner.get_username()}'s sandbox got "
                                      f"{act.EXTEND_MINUTES} more minutes.")
        elif action == "terminate":
            act.terminate()
            messages.info(request, f"{sandbox.owner.get_username()}'s sandbox is stopping.")
        elif action == "reset":
            fresh = act.reset()
            messages.info(request, f"{sandbox.owner.get_username()} has a fresh sandbox ({fresh.pk}).")
        else:
            raise Http404("Unknown action.")
    except SandboxError as error:
        messages.error(request, str(error))
    return redirect("cohort-dashboard", cohort_id=cohort.pk)


@login_required
def cohort_learner(request, cohort_id: int, learner_id: int):
    from labs.models import Attempt

    cohort = _cohort_or_403(request, cohort_id)
    learner = get_object_or_404(get_user_model(), pk=learner_id, cohort_memberships__cohort=cohort)
    attempts = (Attempt.objects.filter(user=learner).select_related("lab", "step", "sandbox")
                .order_by("-created_at")[:200])
    return render(request, "cohorts/learner.html", {"cohort": cohort, "learner": learner, "attempts": attempts})


@login_required
def cohort_gradebook_csv(request, cohort_id: int):
    cohort = _cohort_or_403(request, cohort_id)
    header, rows = selectors.gradebook(cohort=cohort)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y-%m-%d")
    response["Content-Disposition"] = f'attachment; filename="gradebook-{cohort.invite_code}-{stamp}.csv"'
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        # A username like "=HYPERLINK(...)" must not become a formula in the instructor's spreadsheet.
        writer.writerow([csv_cell_safe(value) for value in row])
    return response


# --- The roster ---------------------------------------------------------------------------------------------------

ROSTER_FILE_MAX_BYTES = 1024 * 1024


def _passwords_key(cohort) -> str:
    return f"roster-passwords-{cohort.pk}"


def _roster_text(request) -> str:
    """The pasted list, or the uploaded CSV's text; CohortError says what is wrong with the file."""
    upload = request.FILES.get("file")
    if upload is None:
        return request.POST.get("names", "")
    if upload.size > ROSTER_FILE_MAX_BYTES:
        raise services.CohortError("That file is larger than 1 MB; a roster of usernames and e-mails is far smaller.")
    try:
        return upload.read().decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise services.CohortError("That file is not text in UTF-8: save it from your spreadsheet as "
                                   "“CSV UTF-8”.") from error


@login_required
def cohort_roster(request, cohort_id: int):
    cohort = _cohort_or_403(request, cohort_id)
    result, names = None, ""
    if request.method == "POST":
        # A refused list comes back to be fixed; a created one does not (it would only be refused as taken).
        names = request.POST.get("names", "")
        try:
            result = services.roster_add(cohort=cohort, instructor=request.user, text=_roster_text(request))
        except services.CohortError as error:
            messages.error(request, str(error))
        else:
            if result.passwords:
                request.session[_passwords_key(cohort)] = [list(row) for row in result.passwords]
                names = ""
    return render(request, "cohorts/roster.html", {
        "cohort": cohort, "result": result, "names": names, "learners": selectors.cohort_memberships(cohort=cohort),
        "passwords_waiting": _passwords_key(cohort) in request.session,
    }, status=400 if result is not None and result.refused else 200)


@login_required
def cohort_roster_passwords_csv(request, cohort_id: int):
    """The one-time passwords of the last roster added, once: the download takes them out of the session."""
    cohort = _cohort_or_403(request, cohort_id)
    rows = request.session.pop(_passwords_key(cohort), None)
    if rows is None:
        messages.error(request, "Those passwords were already downloaded, or you signed out since. Reset a "
                                "learner's password on the roster to give them a new one.")
        return redirect("cohort-roster", cohort_id=cohort.pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="passwords-{cohort.invite_code}.csv"'
    response["Cache-Control"] = "no-store"
    writer = csv.writer(response)
    writer.writerow(["username", "email", "one-time password"])
    for row in rows:
        writer.writerow([csv_cell_safe(value) for value in row])
    return response


@login_required
@require_POST
def cohort_roster_action(request, cohort_id: int, action: str):
    cohort = _cohort_or_403(request, cohort_id)
    learner_id = request.POST.get("learner", "")
    try:
        if action == "remove" and learner_id.isdigit():
            name = services.cohort_learner_remove(cohort=cohort, instructor=request.user, learner_id=int(learner_id))
            messages.success(request, f"{name} is no longer in “{cohort.name}”. Their account stays.")
        elif action == "password" and learner_id.isdigit():
            name, password = services.learner_password_reset(cohort=cohort, instructor=request.user,
                                                             learner_id=int(learner_id))
            messages.success(request, f"New one-time password for {name}: {password} (shown only now; they "
                                      f"choose their own when they sign in).")
        elif action == "invite":
            services.cohort_invite_regenerate(cohort=cohort, instructor=request.user)
            messages.success(request, f"The new invite code is {cohort.invite_code}; the old one no longer works.")
        elif action in ("close", "open"):
            services.cohort_joins_set(cohort=cohort, instructor=request.user, closed=action == "close")
            messages.success(request, f"“{cohort.name}” is closed to new learners: the invite code no longer joins "
                                      f"it." if cohort.is_closed else f"“{cohort.name}” takes new learners again.")
        else:
            raise Http404("Unknown action.")
    except (services.CohortError, PermissionDenied) as error:
        messages.error(request, str(error))
    return redirect("cohort-roster", cohort_id=cohort.pk)


@login_required
def recording_player(request, sandbox_id: int):
    try:
        sandbox = sandbox_selectors.sandbox_for_viewer(user=request.user, sandbox_id=sandbox_id)
    except Sandbox.DoesNotExist as error:
        raise Http404("No such sandbox.") from error
    until = request.GET.get("until", "")
    minutes = request.GET.get("minutes", "5")
    return render(request, "cohorts/recording.html", {"sandbox": sandbox, "until": until, "minutes": minutes,
                                                       "expired": _replay_expired(sandbox, until, minutes)})


def _replay_expired(sandbox: Sandbox, until: str, minutes: str) -> str | None:
    """The sentence that replaces the player when the replayed minutes' files are gone. A window the API would refuse
    (a malformed time) is left to the player, which shows the API's own explanation."""
    try:
        moment = parse_datetime(until) if until else timezone.now()
        window = int(minutes)
    except ValueError:
        return None
    if moment is None or not 1 <= window <= 120:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, datetime.timezone.utc)
    return recording_expired(sandbox=sandbox, until=moment, minutes=window)


# --- class sessions -------------------------------------------------------------------------------------------------

def _class_sessions_context(request, cohort) -> dict:
    from labs.selectors import labs_published

    return {"cohort": cohort, "class_sessions": selectors.class_sessions_for(cohort=cohort),
            "class_labs": labs_published(), "learner_count": cohort.memberships.count(),
            "lead_minutes": settings.SANDCLOUD["CLASS_LEAD_MINUTES"],
            "default_start": (timezone.localtime() + datetime.timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M")}


@login_required
def cohort_class_sessions(request, cohort_id: int):
    """GET: the sessions panel (polled while the dashboard is open). POST: schedule a session."""
    cohort = _cohort_or_403(request, cohort_id)
    if request.method == "POST":
        try:
            scheduled = services.class_session_schedule(
                instructor=request.user, cohort=cohort, lab=_published_lab(request.POST.get("lab", "")),
                starts_at=_local_datetime(request.POST.get("starts_at", "")),
                minutes=_whole_number(request.POST.get("minutes", ""), "The length"),
                expected=_whole_number(request.POST.get("expected", ""), "The number of learners", blank=None))
        except services.CohortError as error:
            messages.error(request, str(error))
        else:
            session = scheduled.session
            note = (f" The host's memory admits only {scheduled.preparable} of the {session.expected_learners} "
                    f"sandboxes right now; the others start when each learner arrives."
                    if scheduled.preparable is not None else "")
            messages.success(request, f"Class session scheduled: {session.lab.title} at "
                                      f"{timezone.localtime(session.starts_at):%H:%M}. Its sandboxes start "
                                      f"{settings.SANDCLOUD['CLASS_LEAD_MINUTES']} minutes before.{note}")
        return redirect("cohort-dashboard", cohort_id=cohort.pk)
    return render(request, "cohorts/_class_sessions.html", _class_sessions_context(request, cohort))


@login_required
@require_POST
def cohort_class_session_cancel(request, cohort_id: int, session_id: int):
    cohort = _cohort_or_403(request, cohort_id)
    session = get_object_or_404(ClassSession, pk=session_id, cohort=cohort)
    services.class_session_cancel(instructor=request.user, session=session)
    messages.info(request, f"Class session cancelled: {session.lab.title}. Its sandboxes not yet taken are removed.")
    return redirect("cohort-dashboard", cohort_id=cohort.pk)


def _published_lab(slug: str):
    from labs.models import Lab

    lab = Lab.objects.filter(slug=slug[:100], is_published=True).first()
    if lab is None:
        raise services.CohortError("Choose a lab.")
    return lab


def _local_datetime(text: str) -> datetime.datetime:
    try:
        value = datetime.datetime.fromisoformat(text.strip()[:40])
    except ValueError:
        raise services.CohortError("Give the start as a date and time, e.g. 2026-12-07 09:00.") from None
    return timezone.make_aware(value) if timezone.is_naive(value) else value


def _whole_number(text: str, what: str, blank: int | None = 60):
    text = text.strip()
    if not text:
        return blank
    if not text.isdigit() or len(text) > 6:
        raise services.CohortError(f"{what} must be a whole number.")
    return int(text)
