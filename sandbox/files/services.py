"""The editor's file operations on a learner's running sandbox: each runs `inside.py` there once, as the learner."""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser

from ..engine.docker import EngineError, engine
from ..engine.images import LEARNER_GID
from ..events import redis_client
from ..models import Sandbox
from ..services import sandbox_touch
from ..states import State
from .paths import PathRefused, file_name, home_parts

MAX_FILE_BYTES = 1024 * 1024
HOME_LABEL = "your home directory"
EXEC_TIMEOUT = 10
# What inside.py answers on stdout at most: the JSON line of a listing (500 entries) or a file of MAX_FILE_BYTES.
MAX_ANSWER_BYTES = MAX_FILE_BYTES + 256 * 1024
# Each operation holds a web server thread for up to EXEC_TIMEOUT: a learner who fires many at once waits for their
# own, and cannot take the threads other learners need.
MAX_BUSY_PER_SANDBOX = 3


class FileRefused(Exception):
    """An operation that did not happen; `message` is for the learner, `status` the HTTP status that carries it."""

    def __init__(self, message: str, *, status: int = 400, **extra):
        super().__init__(message)
        self.message, self.status, self.extra = message, status, extra


@dataclass(frozen=True)
class FileText:
    path: str
    size: int
    mtime: float
    content: str | None  # None when the file cannot be edited here; `reason` says why
    reason: str = ""


@cache
def _program() -> str:
    return Path(__file__).with_name("inside.py").read_text()


# Codes inside.py answers with, and the HTTP status each becomes.
STATUS = {"missing": 404, "exists": 409, "conflict": 409, "link": 400, "outside": 400, "not_file": 400,
          "not_dir": 400, "bad_path": 400, "too_large": 413, "disk_full": 507, "denied": 403, "os_error": 500}
REASONS = {
    "binary": "Binary file, not editable here: download it instead.",
    "too_large": f"Over {MAX_FILE_BYTES // (1024 * 1024)} MB, too large to edit here: use the terminal "
                 f"(nano or vim) or download it.",
}


def _parts(raw: str) -> list[str]:
    try:
        return home_parts(raw)
    except PathRefused as refusal:
        raise FileRefused(str(refusal)) from refusal


def _check_running(sandbox: Sandbox) -> None:
    if sandbox.state != State.RUNNING or not sandbox.container_id:
        words = "still starting" if sandbox.state in (State.REQUESTED, State.PROVISIONING) else \
            sandbox.get_state_display().lower()
        raise FileRefused(f"This sandbox is {words}, so its files cannot be opened or saved. "
                          + ("Wait until it runs." if words == "still starting" else
                             "Its files went with it: start a new one to keep working."), status=409)


def _check_owner(sandbox: Sandbox, user: AbstractBaseUser) -> None:
    if sandbox.owner_id != user.pk:
        raise FileRefused("You are watching this sandbox read-only: only its learner can change its files.",
                          status=403)


@contextmanager
def _busy_slot(sandbox: Sandbox):
    key = f"sandcloud:{settings.SANDCLOUD['INSTANCE']}:files:{sandbox.pk}:busy"
    client = redis_client()
    busy = client.incr(key)
    client.expire(key, EXEC_TIMEOUT * 3)  # a web process killed mid-operation cannot hold its slot for ever
    try:
        if busy > MAX_BUSY_PER_SANDBOX:
            raise FileRefused("Too many file operations are running in this sandbox at once; wait a moment and "
                              "try again.", status=429)
        yield
    finally:
        client.decr(key)


def _run(sandbox: Sandbox, request: dict, body: bytes = b"") -> tuple[dict, bytes]:
    """Runs one operation in the sandbox and answers inside.py's JSON and the bytes after it."""
    _check_running(sandbox)
    with _busy_slot(sandbox):
        return _run_inside(sandbox, request, body)


def _run_inside(sandbox: Sandbox, request: dict, body: bytes) -> tuple[dict, bytes]:
    stdin = json.dumps(request).encode() + b"\n" + body
    try:
        result = engine().exec_with_input(
            sandbox.container_id, ["/usr/bin/python3", "-I", "-S", "-c", _program()],
            user=f"{sandbox.uid}:{LEARNER_GID}", stdin=stdin, timeout=EXEC_TIMEOUT, max_output=MAX_ANSWER_BYTES)
    except EngineError as error:
        sandbox.refresh_from_db()
        _check_running(sandbox)
        raise FileRefused("The sandbox did not answer; try again in a moment.", status=503) from error
    line, _, data = result.stdout.partition(b"\n")
    try:
        answer = json.loads(line)
    except ValueError:
        if result.exit_code in (124, 137):
            raise FileRefused("The sandbox took too long to answer (it may be very busy); try again.", status=503)
        raise FileRefused("The sandbox could not run the editor's file program: this sandbox's image needs "
                          "python3 for the editor. The terminal still works.", status=500)
    if not answer.get("ok"):
        code = answer.get("code", "os_error")
        extra = {key: answer[key] for key in ("conflict", "mtime") if key in answer}
        if code == "exists":
            extra["exists"] = True  # the editor asks "replace it?" for this 409, not for a stopped sandbox's
        raise FileRefused(_words(code, answer.get("message", ""), request), status=STATUS.get(code, 500), **extra)
    sandbox_touch(sandbox_id=sandbox.pk)
    return answer, data


def _words(code: str, message: str, request: dict) -> str:
    if code == "disk_full":
        return ("Your home directory is full, so nothing was saved and the file on disk is unchanged. Free some "
                "space in the terminal (`du -sh ~/* ~/.[!.]*` shows what is big), then save again.")
    if code == "too_large":
        return f"That file is over {MAX_FILE_BYTES // (1024 * 1024)} MB, the editor's limit: use the terminal."
    if code == "denied":
        return f"Permission denied: {message.lower() if message else 'the sandbox refused'}."
    if code == "os_error":
        return f"The sandbox could not do that: {message}."
    return message


def file_list(*, sandbox: Sandbox, path: str) -> dict:
    answer, _ = _run(sandbox, {"op": "list", "path": _parts(path)})
    return {key: answer[key] for key in ("path", "entries", "truncated")}


def file_read(*, sandbox: Sandbox, path: str) -> FileText:
    answer, data = _run(sandbox, {"op": "read", "path": _parts(path)})
    if not answer.get("editable"):
        return FileText(path=answer["path"], size=answer["size"], mtime=answer["mtime"], content=None,
                        reason=REASONS.get(answer.get("reason", ""), "This file cannot be edited here."))
    return FileText(path=answer["path"], size=answer["size"], mtime=answer["mtime"], content=data.decode("utf-8"))


def file_download(*, sandbox: Sandbox, path: str) -> tuple[str, bytes]:
    """(name, bytes) of one file of at most MAX_FILE_BYTES, binary or not."""
    answer, data = _run(sandbox, {"op": "read", "path": _parts(path), "raw": True})
    if answer.get("editable") is False and answer.get("reason") == "too_large":
        raise FileRefused(_words("too_large", "", {}), status=413)
    return answer["path"].rsplit("/", 1)[-1], data


def file_write(*, sandbox: Sandbox, user: AbstractBaseUser, path: str, content: str, mtime: float | None,
               force: bool = False) -> dict:
    """Saves text the learner edited. `mtime` is the file's when it was opened (None for a new file): a file changed
    since then is not overwritten unless `force`, so a change made in the terminal is never lost silently."""
    _check_owner(sandbox, user)
    if not isinstance(content, str):
        raise FileRefused("The file's text is missing.")
    try:
        body = content.encode("utf-8")
    except UnicodeEncodeError as error:
        raise FileRefused("The text holds a character that is not valid Unicode; nothing was saved.") from error
    if len(body) > MAX_FILE_BYTES:
        raise FileRefused(_words("too_large", "", {}), status=413)
    if mtime is not None and not isinstance(mtime, (int, float)):
        raise FileRefused("The file's time stamp is not a number.")
    answer, _ = _run(sandbox, {"op": "write", "path": _parts(path), "mtime": mtime, "force": bool(force)}, body)
    return {key: answer[key] for key in ("path", "size", "mtime")}


def file_upload(*, sandbox: Sandbox, user: AbstractBaseUser, folder: str, name: str, data: bytes,
                overwrite: bool = False) -> dict:
    _check_owner(sandbox, user)
    try:
        parts = [*_parts(folder), file_name(name)]
    except PathRefused as refusal:
        raise FileRefused(str(refusal)) from refusal
    if len(data) > MAX_FILE_BYTES:
        raise FileRefused(_words("too_large", "", {}), status=413)
    answer, _ = _run(sandbox, {"op": "write", "path": parts, "mtime": None, "force": bool(overwrite),
                               "exclusive": not overwrite}, data)
    return {key: answer[key] for key in ("path", "size", "mtime")}


def file_create(*, sandbox: Sandbox, user: AbstractBaseUser, path: str, kind: str) -> dict:
    _check_owner(sandbox, user)
    if kind not in ("file", "dir"):
        raise FileRefused("Create a file or a folder.")
    answer, _ = _run(sandbox, {"op": "create", "path": _parts(path), "kind": kind})
    return {"path": answer["path"], "mtime": answer["mtime"]}


def file_rename(*, sandbox: Sandbox, user: AbstractBaseUser, path: str, to: str) -> dict:
    _check_owner(sandbox, user)
    answer, _ = _run(sandbox, {"op": "rename", "path": _parts(path), "to": _parts(to)})
    return {"path": answer["path"]}


def file_delete(*, sandbox: Sandbox, user: AbstractBaseUser, path: str) -> None:
    _check_owner(sandbox, user)
    _run(sandbox, {"op": "delete", "path": _parts(path)})
