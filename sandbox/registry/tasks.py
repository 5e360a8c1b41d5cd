"""Celery tasks of ECR: thin wrappers around its services."""
from celery import shared_task

from . import collection, lifecycle


# Idempotent: a second run finds nothing more to expire, and a collection with nothing to collect deletes nothing.
@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def registry_tend_task() -> dict:
    """Every SANDCLOUD_REGISTRY_TEND_SECONDS (beat): lifecycle policies, then the garbage collection that deletions
    asked for (the front holds pushes meanwhile, so none is lost)."""
    expired = lifecycle.lifecycles_apply()
    collected = collection.gc_run().status if collection.gc_pending() else None
    return {"expired": expired, "garbage_collection": collected}
