"""The editor's JSON endpoints under /sandboxes/<id>/files/: thin wrappers over services.py, errors as sentences."""
from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from urllib.parse import quote

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from ..models import Sandbox
from ..selectors import sandbox_for_viewer
from . import services
from .services import MAX_FILE_BYTES, FileRefused

# A JSON string may escape every byte of a 1 MB file as \\u00XX: six times its size, plus the rest of the request.
MAX_JSON_BODY = 6 * MAX_FILE_BYTES + 64 * 1024
MAX_UPLOAD_BODY = MAX_FILE_BYTES + 64 * 1024


def _refusal(message: str, status: int, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def file_endpoint(view: Callable) -> Callable:
    """Finds the sandbox the viewer may see (404 otherwise) and turns every refusal into JSON with its sentence."""
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, sandbox_id: int) -> HttpResponse:
        try:
            sandbox = sandbox_for_viewer(user=request.user, sandbox_id=sandbox_id)
        except Sandbox.DoesNotExist:
            return _refusal("No such sandbox.", 404)
        except PermissionDenied as refusal:
            return _refusal(str(refusal), 403)
        try:
            return view(request, sandbox)
        except FileRefused as refusal:
            return _refusal(refusal.message, refusal.status, **refusal.extra)
    return wrapper


def _check_length(request: HttpRequest, *, limit: int) -> None:
    """Refuses a body over `limit` by its Content-Length, before Django reads (or stores) any of it."""
    try:
        length = int(request.headers.get("Content-Length", ""))
    except ValueError:
        raise FileRefused("The request has no length.", status=411) from None
    if length > limit:
        raise FileRefused(f"That file is over {MAX_FILE_BYTES // (1024 * 1024)} MB, the editor's limit: use the "
                          f"terminal instead.", status=413)


def _json_body(request: HttpRequest) -> dict:
    _check_length(request, limit=MAX_JSON_BODY)
    try:
        data = json.loads(request.body)
    except ValueError:
        raise FileRefused("The request is not valid JSON.") from None
    if not isinstance(data, dict):
        raise FileRefused("The request is not a JSON object.")
    return data


def _text(data: dict, key: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise FileRefused(f"“{key}” must be text.")
    return value


@require_GET
@file_endpoint
def file_list(request: HttpRequest, sandbox: Sandbox) -> HttpResponse:
    return JsonResponse(services.file_list(sandbox=sandbox, path=request.GET.get("path", "")))


@require_GET
@file_endpoint
def file_read(request: HttpRequest, sandbox: Sandbox) -> HttpResponse:
    text = services.file_read(sandbox=sandbox, path=request.GET.get("path", ""))
    answer = {"path": text.path, "size": text.size, "mtime": text.mtime, "editable": text.content is not None}
    answer.update({"content": text.content} if text.content is not None else {"reason": text.reason})
    return JsonResponse(answer)


@require_GET
@file_endpoint
def file_download(request: HttpRequest, sandbox: Sandbox) -> HttpResponse:
    name, data = services.file_download(sandbox=sandbox, path=request.GET.get("path", ""))
    response = HttpResponse(data, content_type="application/octet-stream")
    response["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name, safe='')}"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_POST
@file_endpoint
def file_write(request: HttpRequest, sandbox: Sandbox) -> HttpResponse:
    data = _json_body(request)
    mtime = data.get("mtime")
    return JsonResponse(services.file_write(sandbox=sandbox, user=request.user, path=_text(data, "path"),
                                            content=data.get("content"), mtime=mtime, force=data.get("force") is True))


@require_POST
@file_endpoint
def file_create(request: HttpRequest, sandbox: Sandbox) -> HttpResponse:
    data = _json_body(request)
    return JsonResponse(services.file_create(sandbox=sandbox, user=request.user, path=_text(data, "path"),
                                             kind=_text(data, "kind") or "file"), status=201)


@require_POST
@file_endpoint
def file_rename(request: HttpRequest, sandbox: Sandbox) -> HttpResponse:
    data = _json_body(request)
    return JsonResponse(services.file_rename(sandbox=sandbox, user=request.user, path=_text(data, "path"),
                                             to=_text(data, "to")))


@require_POST
@file_endpoint
def file_delete(request: HttpRequest, sandbox: Sandbox) -> HttpResponse:
    data = _json_body(request)
    services.file_delete(sandbox=sandbox, user=request.user, path=_text(data, "path"))
    return JsonResponse({})


@require_POST
@file_endpoint
def file_upload(request: HttpRequest, sandbox: Sandbox) -> HttpResponse:
    _check_length(request, limit=MAX_UPLOAD_BODY)  # an upload over the limit is never stored anywhere
    upload = request.FILES.get("file")
    if upload is None:
        raise FileRefused("Choose a file to upload.")
    return JsonResponse(services.file_upload(
        sandbox=sandbox, user=request.user, folder=request.POST.get("dir", ""), name=upload.name,
        data=upload.read(MAX_FILE_BYTES + 1), overwrite=request.POST.get("overwrite") == "1"), status=201)
