"""A build's Dockerfile seen through the learner's names: every image a FROM (or COPY --from) names is checked and
given its engine name, so `FROM hello:1` builds on the learner's own hello:1 and never on anybody else's.

The context arrives as a tar (already size- and link-checked by policy.build_context_check); the Dockerfile in it is
rewritten and the tar copied with that one member replaced.
"""
from __future__ import annotations

import io
import re
import tarfile
import tempfile
from collections.abc import Callable
from typing import IO

from .policy import ProxyRefusal

_FROM = re.compile(r"^(\s*FROM\s+)((?:--\S+\s+)*)(\S+)(\s+AS\s+(\S+))?(\s*)$", re.IGNORECASE)
_COPY_FROM = re.compile(r"(^\s*COPY\s+(?:--\S+\s+)*?--from=)(\S+)", re.IGNORECASE)


def dockerfile_rewrite(text: str, image_for: Callable[[str], str]) -> str:
    """The Dockerfile with each base image replaced by `image_for(ref)` (which refuses what the learner may not use);
    build stage names and `scratch` are left as they are."""
    stages: set[str] = set()
    lines = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        body = line.rstrip("\r\n")
        ending = line[len(body):]
        if match := _FROM.match(body):
            ref = match[3]
            if ref.lower() not in stages and ref != "scratch":
                if "$" in ref:
                    raise ProxyRefusal(f"Dockerfile line {number}: FROM {ref} uses a build argument; name the base "
                                       f"image directly so Sandcloud can check it is one you may use.", status=400)
                ref = image_for(ref)
            if match[5]:
                stages.add(match[5].lower())
            body = f"{match[1]}{match[2]}{ref}{match[4] or ''}{match[6]}"
        elif match := _COPY_FROM.match(body):
            source = match[2]
            if not source.isdigit() and source.lower() not in stages:
                if "$" in source:
                    raise ProxyRefusal(f"Dockerfile line {number}: COPY --from={source} uses a build argument; name "
                                       f"the image or stage directly.", status=400)
                body = match[1] + image_for(source) + body[match.end():]
        lines.append(body + ending)
    return "".join(lines)


def context_with_dockerfile(context: IO[bytes], *, dockerfile: str, image_for: Callable[[str], str],
                            max_dockerfile_bytes: int = 1024 * 1024) -> IO[bytes]:
    """A copy of the context tar whose Dockerfile is rewritten by dockerfile_rewrite; refuses a context without it."""
    wanted = tuple(p for p in dockerfile.split("/") if p not in ("", "."))
    out = tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024)
    found = False
    try:
        with tarfile.open(fileobj=context, mode="r:*") as source, tarfile.open(fileobj=out, mode="w") as target:
            for member in source:
                parts = tuple(p for p in member.name.split("/") if p not in ("", "."))
                data = source.extractfile(member) if member.isfile() else None
                if parts == wanted and member.isfile():
                    if member.size > max_dockerfile_bytes:
                        raise ProxyRefusal("the Dockerfile is larger than 1 MB.", status=400)
                    text = data.read().decode("utf-8", "replace")
                    payload = dockerfile_rewrite(text, image_for).encode()
                    member.size = len(payload)
                    target.addfile(member, io.BytesIO(payload))
                    found = True
                else:
                    target.addfile(member, data)
    except tarfile.TarError as error:
        raise ProxyRefusal(f"the build context is not a readable tar archive: {error}", status=400) from None
    if not found:
        raise ProxyRefusal(f"Cannot locate specified Dockerfile: {dockerfile}", status=400)
    size = out.tell()
    out.seek(0)
    out.size = size  # type: ignore[attr-defined]
    return out
