"""Checks about kernels that need the platform's view: the host's kernel cannot be seen from inside gVisor."""
from __future__ import annotations

import logging

from sandbox.engine.docker import engine

from . import CheckContext, CheckResult

log = logging.getLogger(__name__)

GVISOR_IS = "b"  # the statement in the lab's multiple choice that describes gVisor honestly


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""


def kernels_compared(ctx: CheckContext) -> CheckResult:
    """Half the points for naming the host's kernel, half for saying what gVisor is."""
    host = engine().host_kernel()
    named_host = _first_line(ctx.read_file("~/answers/host-kernel.txt"))
    verdict = _first_line(ctx.read_file("~/answers/gvisor-is.txt")).lower().strip("() .")
    problems, fraction = [], 0.0
    if not named_host:
        problems.append("~/answers/host-kernel.txt is missing or empty.")
    elif named_host != host:
        problems.append(f"~/answers/host-kernel.txt says {named_host!r}, which is not the host's kernel release. "
                        f"Run `uname -r` in a standard (runc) sandbox to see it.")
    else:
        fraction += 0.5
    if not verdict:
        problems.append("~/answers/gvisor-is.txt is missing or empty: write a, b or c.")
    elif verdict != GVISOR_IS:
        problems.append(f"~/answers/gvisor-is.txt says {verdict!r}: re-read what `dmesg` and `uname -r` told you.")
    else:
        fraction += 0.5
    if not problems:
        return CheckResult(passed=True, message=f"Right: the host runs Linux {host}, and gVisor answers system calls "
                                                f"itself instead of passing them to it.", fraction=1.0)
    return CheckResult(passed=False, message="\n".join(problems), fraction=fraction)
