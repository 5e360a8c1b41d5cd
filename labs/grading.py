"""Running a step's check against a live sandbox and turning what happened into words a learner can act on."""
from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass

from sandbox.engine.docker import EngineError, engine
from sandbox.models import Sandbox
from sandbox.services import SandboxNotRunning, describe_exit, sandbox_exec

from .checks import TIMED_OUT_EXIT_CODES, CheckContext, CheckResult, CheckTimedOut
from .models import Attempt, LabStep

log = logging.getLogger(__name__)

FAIL_PREFIX = "FAIL:"
OUTPUT_LIMIT = 20_000


@dataclass(frozen=True)
class CheckOutcome:
    status: str  # an Attempt.Status
    message: str
    fraction: float
    output: str
    duration_ms: int


def fail_lines(output: str) -> list[str]:
    """The lines a script check meant for the learner; everything else it printed stays hidden."""
    return [line[len(FAIL_PREFIX):].strip() for line in output.splitlines() if line.startswith(FAIL_PREFIX)]


def check_run(*, sandbox: Sandbox, step: LabStep) -> CheckOutcome:
    started = time.monotonic()
    try:
        if step.check_python:
            status, message, fraction, output = _run_python(sandbox=sandbox, step=step)
        else:
            status, message, fraction, output = _run_script(sandbox=sandbox, step=step)
    except CheckTimedOut:
        status, message, fraction, output = Attempt.Status.TIMED_OUT, _timed_out(step), 0.0, ""
    except SandboxNotRunning:
        status, message, fraction, output = Attempt.Status.ERROR, _sandbox_gone(sandbox), 0.0, ""
    except EngineError as error:
        status, fraction, output = Attempt.Status.ERROR, 0.0, str(error)
        message = _sandbox_gone(sandbox) if not _container_running(sandbox) else (
            f"The check could not run: {error} This attempt does not count against you.")
    duration_ms = int((time.monotonic() - started) * 1000)
    return CheckOutcome(status=status, message=message, fraction=fraction, output=output[-OUTPUT_LIMIT:],
                        duration_ms=duration_ms)


def _run_script(*, sandbox: Sandbox, step: LabStep) -> tuple[str, str, float, str]:
    started = time.monotonic()
    exit_code, output = sandbox_exec(sandbox=sandbox, command=["bash", "-c", step.check_script],
                                     timeout=step.check_timeout)
    if exit_code in TIMED_OUT_EXIT_CODES and time.monotonic() - started >= step.check_timeout - 0.5:
        if not _container_running(sandbox):
            return Attempt.Status.ERROR, _sandbox_gone(sandbox), 0.0, output
        return Attempt.Status.TIMED_OUT, _timed_out(step), 0.0, output
    if exit_code == 0:
        return Attempt.Status.PASSED, "Check passed.", 1.0, output
    if not _container_running(sandbox):
        return Attempt.Status.ERROR, _sandbox_gone(sandbox), 0.0, output
    lines = fail_lines(output)
    message = "\n".join(lines) if lines else "The check did not pass yet. Re-read the step and try again."
    return Attempt.Status.FAILED, message, 0.0, output


def _run_python(*, sandbox: Sandbox, step: LabStep) -> tuple[str, str, float, str]:
    module_name, function_name = step.check_python.split(":")
    check = getattr(importlib.import_module(module_name), function_name)
    context = CheckContext(sandbox=sandbox, timeout=step.check_timeout)
    try:
        result: CheckResult = check(context)
    except (CheckTimedOut, SandboxNotRunning, EngineError):
        raise
    except Exception:  # noqa: BLE001 - a broken check is the platform's fault, never the learner's
        log.exception("python check %s crashed", step.check_python)
        return (Attempt.Status.ERROR, "The check itself failed (a bug on our side). This attempt does not count "
                                      "against you; please try again later.", 0.0, "\n".join(context.transcript))
    output = "\n".join(context.transcript) + (f"\n{result.output}" if result.output else "")
    status = Attempt.Status.PASSED if result.passed else Attempt.Status.FAILED
    message = result.message or ("Check passed." if result.passed else "The check did not pass yet.")
    return status, message, result.share, output


def _timed_out(step: LabStep) -> str:
    return (f"The check did not finish within {step.check_timeout} seconds, so it counts as not passed. "
            f"Something in your sandbox may be hanging or very slow; fix it and check again.")


def _container_running(sandbox: Sandbox) -> bool:
    try:
        state = engine().state(sandbox.container_id) if sandbox.container_id else None
    except EngineError:
        return True  # the engine is unreachable; do not blame the sandbox for it
    return state is not None and state.running


def _sandbox_gone(sandbox: Sandbox) -> str:
    sandbox.refresh_from_db()
    reason = sandbox.failure_reason
    if not reason and sandbox.container_id:
        try:
            state = engine().state(sandbox.container_id)
        except EngineError:
            state = None
        if state is not None and not state.running:
            reason = describe_exit(oom_killed=state.oom_killed, exit_code=state.exit_code,
                                   memory_mb=sandbox.memory_mb)
        elif state is None:
            reason = "Your sandbox's container no longer exists."
    detail = f" {reason}" if reason else f" It is {sandbox.get_state_display().lower()}."
    return (f"Your sandbox is not running, so the check could not run.{detail} "
            f"Use \u201cReset this step\u201d to get a fresh sandbox; this attempt does not count against you.")
