"""Check progress on the page: attempt events ride the sandbox's own event stream (group `sandbox-<id>`)."""
from __future__ import annotations

from cohorts.events import cohort_attempt_publish
from sandbox.events import event_publish

from .models import Attempt

LEVELS = {Attempt.Status.PASSED: "success", Attempt.Status.FAILED: "warning", Attempt.Status.TIMED_OUT: "warning",
          Attempt.Status.ERROR: "error"}


def attempt_payload(attempt: Attempt) -> dict:
    """What the lab page needs to redraw a step after a check; never includes the check's hidden output."""
    return {"id": attempt.pk, "step": attempt.step.slug, "status": attempt.status, "passed": attempt.passed,
            "points": attempt.points, "message": attempt.message, "duration_ms": attempt.duration_ms}


def _headline(attempt: Attempt, kind: str) -> str:
    title = attempt.step.title
    if kind == "attempt.queued":
        return f"Check for \u201c{title}\u201d queued"
    if kind == "attempt.running":
        return f"Checking \u201c{title}\u201d\u2026"
    return {
        Attempt.Status.PASSED: f"\u201c{title}\u201d passed: +{attempt.points} points",
        Attempt.Status.FAILED: f"\u201c{title}\u201d is not done yet"
                               + (f" ({attempt.points} partial points)" if attempt.points else ""),
        Attempt.Status.TIMED_OUT: f"The check for \u201c{title}\u201d timed out",
        Attempt.Status.ERROR: f"The check for \u201c{title}\u201d could not run",
    }.get(attempt.status, title)


def attempt_event_publish(*, attempt: Attempt, kind: str) -> dict:
    """Sends `attempt.queued`, `attempt.running` or `attempt.result` to everyone watching the attempt's sandbox.

    Call after the change has committed. The database stays the truth: the page re-reads the step when a result
    arrives and polls while a check is pending, because the channel layer may drop messages.
    """
    sandbox = attempt.sandbox
    if sandbox is None:
        return {}
    level = LEVELS.get(attempt.status, "info") if kind == "attempt.result" else "info"
    event = event_publish(sandbox_id=sandbox.pk, state=sandbox.state, message=_headline(attempt, kind), level=level,
                          extra={"kind": kind, "lab": attempt.lab.slug, "attempt": attempt_payload(attempt)})
    # The instructor's dashboard hears of it too (its cell turns "checking", then passed or tried).
    cohort_attempt_publish(attempt=attempt)
    return event
