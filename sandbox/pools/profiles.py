"""An environment profile: what makes two sandboxes interchangeable, so one started ahead can serve either request."""
from __future__ import annotations

from dataclasses import dataclass

from ..policy import Limits


@dataclass(frozen=True)
class Profile:
    image: str
    runtime: str
    memory_mb: int
    cpus: float
    pids: int

    @property
    def key(self) -> str:
        """A readable, stable name for the profile: the pool's name in the database and on the dashboard."""
        return f"{self.runtime} {self.image} {self.memory_mb}MB {self.cpus:g}cpu {self.pids}pids"

    def limits(self, defaults: Limits) -> Limits:
        return defaults.with_overrides(memory_mb=self.memory_mb, cpus=self.cpus, pids=self.pids)


def profile_of(*, image: str, runtime: str, limits: Limits, capabilities=()) -> Profile | None:
    """The profile a request needs, or None when no pooled container can serve it (extra capabilities are decided
    per sandbox at creation)."""
    if capabilities:
        return None
    return Profile(image=image, runtime=runtime, memory_mb=limits.memory_mb, cpus=float(limits.cpus), pids=limits.pids)
