"""Each learner's names on the shared engine: what they call `web` or `hello:1` is stored under a prefix of theirs.

Every learner shares one Docker Engine, whose container, volume and image names are one namespace: two learners who
both follow the lab and run `docker build -t hello:1` must each get their own `hello:1`. The proxy keeps the names a
learner uses and the names on the engine apart:

- containers and volumes: `web` is `lrn-<instance>-<owner>.web` on the engine;
- images named without a registry: `hello:1` is `lrn-<instance>-<owner>/hello:1`;
- images in the learner's private registry (`127.0.0.1:5000/<account>/hello:1`) keep their name: the account in it
  is already theirs, and the engine pushes and pulls by exactly that name;
- the shared base images (`sandcloud/python:3.11`) keep theirs and are read-only.

Requests are translated name by name (`to_engine_*`); answers by removing the learner's own prefix wherever it occurs
(`answer_strip`), which is safe because an answer only ever holds the learner's own objects.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

_HEX_ID = re.compile(r"(sha256:)?[0-9a-f]{4,64}")


@dataclass(frozen=True)
class Namespace:
    instance: str
    owner: str

    @property
    def tag(self) -> str:
        # Lower-case letters and digits only: this is also an image repository's first path component.
        instance = re.sub(r"[^a-z0-9]", "", self.instance.lower()) or "x"
        return f"lrn-{instance}-{self.owner}"

    @property
    def object_prefix(self) -> str:
        return f"{self.tag}."

    @property
    def image_prefix(self) -> str:
        return f"{self.tag}/"

    # -- learner -> engine ------------------------------------------------------------------------------------------

    def to_engine_object(self, name: str) -> str:
        """A container or volume name as the engine knows it."""
        return self.object_prefix + name.removeprefix("/")

    def to_engine_image(self, ref: str, *, shared: frozenset[str] | tuple[str, ...] = ()) -> str:
        """An image reference as the engine knows it: a registry's and a shared image's as given, an id as given."""
        if _HEX_ID.fullmatch(ref) or ref in shared or _has_registry(ref):
            return ref
        if ref.startswith("docker.io/library/"):
            ref = ref.removeprefix("docker.io/library/")
        return self.image_prefix + ref

    def to_engine_repo(self, repo: str) -> str:
        """The `repo` of a tag request (no tag part)."""
        return repo if _has_registry(repo) else self.image_prefix + repo

    # -- engine -> learner ------------------------------------------------------------------------------------------

    def owns_engine_object(self, name: str) -> bool:
        return name.removeprefix("/").startswith(self.object_prefix)

    def to_learner_object(self, name: str) -> str:
        slash = "/" if name.startswith("/") else ""
        return slash + name.removeprefix("/").removeprefix(self.object_prefix)

    def owns_engine_image(self, ref: str) -> bool:
        return ref.removeprefix("docker.io/").startswith(self.image_prefix)

    def to_learner_image(self, ref: str) -> str:
        return ref.removeprefix("docker.io/").removeprefix(self.image_prefix)

    def answer_strip(self, text: str) -> str:
        """Any text of an answer with the learner's prefixes taken out (JSON, or a build's progress lines)."""
        return (text.replace("docker.io/" + self.image_prefix, "").replace(self.image_prefix, "")
                .replace(self.object_prefix, ""))

    def answer_json(self, value):
        """A decoded JSON answer with the prefixes taken out of every string, keys included (labels, networks)."""
        if isinstance(value, str):
            return self.answer_strip(value)
        if isinstance(value, list):
            return [self.answer_json(v) for v in value]
        if isinstance(value, dict):
            return {self.answer_strip(k): self.answer_json(v) for k, v in value.items()}
        return value

    def answer_bytes(self, data: bytes) -> bytes:
        return self.answer_strip(data.decode("utf-8", "replace")).encode()


def _has_registry(ref: str) -> bool:
    first, slash, _ = ref.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def json_lines_strip(namespace: Namespace, data: bytes) -> bytes:
    """A piece of a JSON-lines stream (build, pull, push progress) with the prefixes out; split lines stay split."""
    return namespace.answer_bytes(data)


def dumps(value) -> bytes:
    return json.dumps(value).encode() + b"\n"
