"""Celery tasks of CloudWatch Logs: thin wrappers around its services."""
from celery import shared_task

from . import services


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def logs_expire_task() -> dict:
    """Every minute (beat): retention, the per-account storage cap, old empty streams. Deleting only what is past a
    bound, it is safe to run twice."""
    return services.logs_expire()
