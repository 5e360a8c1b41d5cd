"""Python checks: graders the platform runs against a learner's resources (the sandbox, later their functions and
containers). A lab names one as `check: {python: "package.module:function"}`; the function takes a CheckContext and
returns a CheckResult."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from sandbox.models import Sandbox
from sandbox.services import sandbox_exec

TIMED_OUT_EXIT_CODES = (124, 137)  # coreutils timeout: the command overran, then was killed


class CheckTimedOut(Exception):
    """A command a check ran did not finish in the check's time."""


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    message: str = ""
    # The share of the step's points earned, 0..1; None means all of them when passed and none otherwise.
    fraction: float | None = None
    output: str = ""  # kept for staff, never shown to the learner

    @property
    def share(self) -> float:
        if self.fraction is None:
            return 1.0 if self.passed else 0.0
        return min(1.0, max(0.0, self.fraction))


@dataclass
class CheckContext:
    """What a check may look at: the learner's sandbox (run commands as the learner, read their files) and the clock."""

    sandbox: Sandbox
    timeout: int
    started: float = field(default_factory=time.monotonic)
    transcript: list[str] = field(default_factory=list)

    def seconds_left(self) -> int:
        return max(1, int(self.timeout - (time.monotonic() - self.started)))

    def run(self, script: str) -> tuple[int, str]:
        """Runs a shell script in the sandbox as the learner, within what is left of the check's timeout."""
        started = time.monotonic()
        left = self.seconds_left()
        exit_code, output = sandbox_exec(sandbox=self.sandbox, command=["bash", "-c", script], timeout=left)
        self.transcript.append(f"$ {script}\n{output}(exit {exit_code})")
        if exit_code in TIMED_OUT_EXIT_CODES and time.monotonic() - started >= left - 0.5:
            raise CheckTimedOut()
        return exit_code, output

    def read_file(self, path: str) -> str | None:
        """A file in the learner's sandbox (relative paths are under their home), or None if it is not there."""
        exit_code, output = self.run(f"cat -- {_quote(path)} 2>/dev/null")
        return output if exit_code == 0 else None


def _quote(path: str) -> str:
    if path.startswith("~/"):
        return '"$HOME"/' + _quote(path[2:])
    return "'" + path.replace("'", "'\\''") + "'"
