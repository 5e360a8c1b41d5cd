"""Live dashboard updates: an attempt that lands is pushed to the dashboards of every cohort its learner is in."""
from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from .models import Membership


def group_name(cohort_id: int) -> str:
    return f"cohort-{cohort_id}"


def cohort_attempt_publish(*, attempt) -> None:
    """Call after the attempt's result has committed. Delivery is best effort: dashboards re-read on reconnect."""
    message = {"type": "cohort.attempt", "learner": attempt.user_id, "step": attempt.step_id, "lab": attempt.lab_id,
               "status": attempt.status, "passed": attempt.passed, "points": attempt.points,
               "attempt": attempt.pk}
    layer = get_channel_layer()
    for cohort_id in Membership.objects.filter(learner_id=attempt.user_id).values_list("cohort_id", flat=True):
        try:
            async_to_sync(layer.group_send)(group_name(cohort_id), message)
        except Exception:  # noqa: BLE001 - a full or unreachable channel layer must not fail grading
            pass
