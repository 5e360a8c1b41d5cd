"""A small JSON API over the same services as the pages: list, start, show, stop and exec (session-authenticated)."""
from __future__ import annotations

import datetime
import json
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_http_methods

from . import selectors, services
from .models import Runtime, Sandbox
from .engine.docker import EngineError
from .recording import recording_window

MAX_COMMAND_CHARS = 4096


class SandboxNotFound(services.SandboxError):
    pass


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def api_view(view):
    """Session auth, JSON errors in the learner's words for everything the services refuse."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return _error(401, "Sign in first.")
        try:
            return view(request, *args, **kwargs)
        except services.QuotaExceeded as error:
            return _error(429, str(error))
        except SandboxNotFound as error:
            return _error(404, str(error))
        except services.SandboxNotRunning as error:
            return _error(409, str(error))
        except services.SandboxError as error:
            return _error(400, str(error))
        except PermissionDenied as error:
            return _error(403, str(error) or "This sandbox belongs to another learner.")
        except EngineError as error:
            return _error(503, str(error))

    return wrapper


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


@require_http_methods(["GET", "POST"])
@api_view
def sandboxes(request):
    if request.method == "GET":
        return JsonResponse({"sandboxes": [serialize(s) for s in selectors.sandboxes_for_user(user=request.user)[:100]]})
    body = _body(request)
    runtime = body.get("runtime", Runtime.RUNC)
    if not isinstance(runtime, str):
        raise services.SandboxError("runtime must be a string: runc or runsc.")
    lab = body.get("lab", "")
    if not isinstance(lab, str) or len(lab) > 100:
        raise services.SandboxError("lab must be a lab's short name.")
    sandbox = services.sandbox_request(owner=request.user, runtime=runtime, lab_slug=lab)
    return JsonResponse(serialize(sandbox), status=201)


@require_http_methods(["GET"])
@api_view
def sandbox_detail(request, sandbox_id: int):
    return JsonResponse(serialize(_visible(request, sandbox_id)))


@require_http_methods(["POST"])
@api_view
def sandbox_stop(request, sandbox_id: int):
    sandbox = services.SandboxStopAction(_visible(request, sandbox_id), request.user).execute()
    return JsonResponse(serialize(sandbox), status=202)


@require_http_methods(["POST"])
@api_view
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


@require_http_methods(["GET"])
@api_view
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
    cast = recording_window(sandbox=sandbox, until=until, minutes=minutes)
    return HttpResponse(cast, content_type="application/x-asciicast")
