"""A small JSON API over the same services as the pages: list, start, show, stop and exec (session-authenticated)."""
from __future__ import annotations

import datetime
import json
import logging
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.core.validators import slug_re
from django.http import Http404, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import selectors, services
from .models import Runtime, Sandbox
from .engine.docker import EngineError
from .recording import RecordingExpired, recording_window
from .terminals import terminal_preopen_for

log = logging.getLogger(__name__)

MAX_COMMAND_CHARS = 4096


class SandboxNotFound(services.SandboxError):
    pass


def api_refusal(status: int, message: str, **headers: str) -> JsonResponse:
    """Every refusal of the API: the sentence is `message`; `error` repeats it for clients written before `message`."""
    response = JsonResponse({"message": message, "error": message}, status=status)
    for name, value in headers.items():
        response[name] = value
    return response


def api_view(*methods: str):
    """Session auth, the allowed methods, and JSON in the learner's words for everything refused or broken."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return api_refusal(405, f"{request.method} is not allowed here; use {' or '.join(methods)}.",
                                   Allow=", ".join(methods))
            if not request.user.is_authenticated:
                return api_refusal(401, "Sign in first.")
            try:
                return view(request, *args, **kwargs)
            except services.QuotaExceeded as error:
                return api_refusal(429, str(error))
            except SandboxNotFound as error:
                return api_refusal(404, str(error))
            except services.SandboxNotRunning as error:
                return api_refusal(409, str(error))
            except services.SandboxError as error:
                return api_refusal(400, str(error))
            except PermissionDenied as error:
                return api_refusal(403, str(error) or "This sandbox belongs to another learner.")
            except Http404:
                return api_refusal(404, "There is nothing at this address.")
            except EngineError as error:
                return api_refusal(503, str(error))
            except Exception:  # noqa: BLE001 - an API client gets JSON even for our bugs; the log gets the trace
                log.exception("API %s %s failed", request.method, request.path)
                return api_refusal(500, "Something went wrong on our side. It has been logged; please try again "
                                        "in a moment.")

        return wrapper

    return decorate


def serialize(sandbox: Sandbox) -> dict:
    return {
        "id": sandbox.pk, "state": sandbox.state, "state_label": sandbox.get_state_display(),
        "failure_reason": sandbox.failure_reason or None, "runtime": sandbox.runtime, "image": sandbox.image,
        "lab": sandbox.lab_slug or None, "memory_mb": sandbox.memory_mb, "cpus": sandbox.cpus,
        "created_at": sandbox.created_at.isoformat(), "expires_at": sandbox.expires_at.isoformat(),
        "seconds_left": sandbox.seconds_left if sandbox.is_active else 0,
        "terminal_url": f"/ws/sandboxes/{sandbox.pk}/terminal/", "stream_url": f"/ws/sandboxes/{sandbox.pk}/stream/",
    }


def _body(request) -> dict:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError as error:
        raise services.SandboxError("The request body is not valid JSON.") from error
    if not isinstance(body, dict):
        raise services.SandboxError("The request body must be a JSON object.")
    return body


def _visible(request, sandbox_id: int) -> Sandbox:
    try:
        return selectors.sandbox_for_viewer(user=request.user, sandbox_id=sandbox_id)
    except Sandbox.DoesNotExist as error:
        raise SandboxNotFound(f"There is no sandbox {sandbox_id}.") from error


def _lab_refusal(lab) -> services.SandboxError:
    """Only the lab's own start gives a sandbox the lab's environment (limits, runtime, time limit) and its setup, and
    only such a sandbox is graded: a start here that names a lab is refused rather than half-done."""
    named = isinstance(lab, str) and len(lab) <= 100 and slug_re.match(lab)
    page = reverse("labs-detail", args=[lab]) if named else reverse("labs-catalog")
    return services.SandboxError(f"A lab's sandbox starts from the lab's page, which gives it the lab's environment "
                                 f"and setup: open {page} and press \u201cStart the lab\u201d.")


@api_view("GET", "POST")
def sandboxes(request):
    if request.method == "GET":
        return JsonResponse({"sandboxes": [serialize(s) for s in selectors.sandboxes_for_user(user=request.user)[:100]]})
    body = _body(request)
    if body.get("lab"):
        raise _lab_refusal(body["lab"])
    runtime = body.get("runtime", Runtime.RUNC)
    if not isinstance(runtime, str):
        raise services.SandboxError("runtime must be a string: runc or runsc.")
    sandbox = services.sandbox_request(owner=request.user, runtime=runtime)
    terminal_preopen_for(sandbox)
    return JsonResponse(serialize(sandbox), status=201)


@api_view("GET")
def sandbox_detail(request, sandbox_id: int):
    return JsonResponse(serialize(_visible(request, sandbox_id)))


@api_view("POST")
def sandbox_stop(request, sandbox_id: int):
    sandbox = services.SandboxStopAction(_visible(request, sandbox_id), request.user).execute()
    return JsonResponse(serialize(sandbox), status=202)


@api_view("POST")
def sandbox_exec(request, sandbox_id: int):
    sandbox = _visible(request, sandbox_id)
    if sandbox.owner_id != request.user.pk:
        raise PermissionDenied("Only the sandbox's owner can run commands in it.")
    body = _body(request)
    command = body.get("command")
    if not isinstance(command, str) or not command.strip():
        raise services.SandboxError('Send {"command": "..."} with the shell command to run.')
    if len(command) > MAX_COMMAND_CHARS:
        raise services.SandboxError(f"The command is longer than {MAX_COMMAND_CHARS} characters.")
    timeout = body.get("timeout", 30)
    if not isinstance(timeout, int) or not 1 <= timeout <= 300:
        raise services.SandboxError("timeout must be a whole number of seconds from 1 to 300.")
    exit_code, output = services.sandbox_exec(sandbox=sandbox, command=["bash", "-c", command], timeout=timeout)
    timed_out = exit_code in (124, 137)  # coreutils' timeout: TERM, then KILL after the grace
    return JsonResponse({"exit_code": exit_code, "output": output[-65536:], "timed_out": timed_out})


def _until_parse(text: str) -> datetime.datetime:
    """The `until` of a replay as an aware time; anything a replay could not sensibly end at is the learner's error."""
    refusal = services.SandboxError("until must be a time like 2026-11-27T21:30:00Z.")
    try:
        # parse_datetime raises ValueError on impossible dates (February 30th) and returns None on other text.
        until = parse_datetime(text)
        if until is None:
            raise refusal
        if timezone.is_naive(until):
            until = timezone.make_aware(until, datetime.timezone.utc)
    except (ValueError, OverflowError) as error:
        raise refusal from error
    # No terminal was recorded before 2000 or is recorded tomorrow; the bounds also keep the window's
    # arithmetic (until minus minutes) clear of datetime's year-1 and year-9999 limits.
    if until.year < 2000 or until > timezone.now() + datetime.timedelta(days=1):
        raise refusal
    return until


@api_view("GET")
def sandbox_recording(request, sandbox_id: int):
    """The owner's terminal in the minutes before `until` (ISO time, default now) as an asciicast v2 document."""
    sandbox = _visible(request, sandbox_id)
    until = _until_parse(request.GET["until"]) if request.GET.get("until") else timezone.now()
    try:
        minutes = int(request.GET.get("minutes", 5))
    except ValueError:
        minutes = 0
    if not 1 <= minutes <= 120:
        raise services.SandboxError("minutes must be a whole number from 1 to 120.")
    try:
        cast = recording_window(sandbox=sandbox, until=until, minutes=minutes)
    except RecordingExpired as error:
        return api_refusal(410, str(error))  # Gone: recorded once, removed for age or space
    return HttpResponse(cast, content_type="application/x-asciicast")
