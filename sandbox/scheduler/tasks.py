"""Celery tasks: the periodic dispatcher that claims due schedules, and the firing of one occurrence."""
from datetime import datetime

from celery import shared_task

from . import services


@shared_task(acks_late=True, soft_time_limit=50, time_limit=60)
def schedules_dispatch_task() -> int:
    return services.schedules_dispatch()


# Idempotent by occurrence (services.schedule_fire invokes at most once for it), so a redelivery after a lost worker
# invokes nothing twice. The invoker's own calls carry their own timeouts.
@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def schedule_fire_task(schedule_id: int, occurrence: str) -> str | None:
    return services.schedule_fire(schedule_id=schedule_id, occurrence=datetime.fromisoformat(occurrence))
