"""The generated secret key in var/: created once, private from its first byte, the same for every process."""
from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path


def secret_key_read_or_create(*, path: Path) -> str:
    """The key kept at `path`, generated there first if there is none yet.

    The key is written whole to a temporary file that mkstemp creates with mode 0600, then hard-linked to `path`, which
    fails if `path` exists. So nobody else can ever read it, a reader never sees half a key, and of several processes
    starting together the first link wins and every process reads that one key.
    """
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(50))
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process linked its key first: use that one
    finally:
        os.unlink(temporary)
    return path.read_text().strip()
