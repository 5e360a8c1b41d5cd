"""Celery tasks for functions: thin, id-taking wrappers around services.py and environments.py."""
from celery import shared_task
from django.conf import settings

from . import reaper, services


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def environments_retire_task(version_id: int, revision: str) -> int:
    return services.environments_retire(version_id=version_id, revision=revision)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def provisioned_fill_task(version_id: int) -> int:
    return services.provisioned_fill(version_id=version_id)


@shared_task(acks_late=True, soft_time_limit=30, time_limit=45)
def environments_tend_task() -> dict:
    return reaper.environments_tend()


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def environments_reconcile_task() -> dict:
    counts = reaper.environments_reconcile()
    counts["provisioned_started"] = services.provisioned_refill()
    counts["invocations_trimmed"] = services.invocations_trim()
    return counts


# Not acks_late: an Event invocation runs the learner's code, which AWS runs at least once but never on purpose twice;
# an event whose worker died stays "queued" for the reaper rather than running again behind the learner's back.
@shared_task(bind=True, soft_time_limit=960, time_limit=1000)
def async_invoke_task(self, event_id: int) -> str:
    outcome = services.async_event_run(event_id=event_id)
    if outcome == "retry":
        from .models import AsyncEvent

        attempts = AsyncEvent.objects.filter(pk=event_id).values_list("attempts", flat=True).first() or 1
        delays = settings.SANDCLOUD_FUNCTIONS["ASYNC_RETRY_DELAYS"]
        self.apply_async((event_id,), countdown=delays[min(attempts, len(delays)) - 1])
    return outcome
