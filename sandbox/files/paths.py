"""What a path typed or sent by a learner means: a list of names under their home directory, or a refusal."""
from __future__ import annotations

MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255
HOME_PREFIXES = ("/home/learner/", "~/")


class PathRefused(ValueError):
    """A path the editor will not use; the message is for the learner."""


def home_parts(raw: str) -> list[str]:
    """The names of `raw` under the home directory. `~/a`, `/home/learner/a` and `a` are the same file; `..`, any
    other absolute path, control characters and over-long names are refused before the sandbox is asked anything."""
    if not isinstance(raw, str):
        raise PathRefused("A path must be text.")
    if len(raw) > MAX_PATH_CHARS:
        raise PathRefused(f"That path is longer than {MAX_PATH_CHARS} characters.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise PathRefused("A path cannot contain control characters.")
    path = raw.strip()
    if path in ("~", "/home/learner"):
        return []
    for prefix in HOME_PREFIXES:
        if path.startswith(prefix):
            path = path[len(prefix):]
            break
    else:
        if path.startswith(("/", "~")):
            raise PathRefused("The editor works in your home directory (~) only; that path is outside it.")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise PathRefused("The editor works in your home directory (~) only; \u201c..\u201d would lead outside it.")
    for part in parts:
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise PathRefused(f"A file or folder name can be at most {MAX_NAME_BYTES} bytes long.")
    return parts


def file_name(raw: str) -> str:
    """One name for a new or uploaded file: no folder, no `..`."""
    parts = home_parts(raw)
    if len(parts) != 1:
        raise PathRefused("Give a file name without folders.")
    return parts[0]
