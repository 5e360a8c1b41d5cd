"""Celery tasks: thin, id-taking, retry-safe wrappers around the sandbox services."""
from celery import shared_task

from . import services
from .engine.docker import EngineUnavailable
from .states import State

RETRY = {"autoretry_for": (EngineUnavailable,), "retry_backoff": 1, "retry_backoff_max": 10, "max_retries": 4,
         "acks_late": True}


@shared_task(**RETRY, soft_time_limit=120, time_limit=150)
def sandbox_provision_task(sandbox_id: int) -> None:
    try:
        services.sandbox_provision(sandbox_id=sandbox_id)
    except EngineUnavailable as error:
        if sandbox_provision_task.request.retries >= RETRY["max_retries"]:
            from .models import Sandbox

            services.sandbox_fail(Sandbox.objects.get(pk=sandbox_id), str(error))
            return
        raise


@shared_task(**RETRY, soft_time_limit=60, time_limit=90)
def sandbox_attach_task(sandbox_id: int) -> None:
    services.sandbox_attach(sandbox_id=sandbox_id)


@shared_task(**RETRY, soft_time_limit=60, time_limit=90)
def sandbox_stop_task(sandbox_id: int, final_state: str = State.STOPPED, reason: str = "") -> None:
    services.sandbox_stop(sandbox_id=sandbox_id, final_state=final_state, reason=reason)


@shared_task(acks_late=True, soft_time_limit=240, time_limit=300)
def sandbox_reap_task() -> dict:
    return services.sandbox_reap()


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def warm_pool_fill_task() -> int:
    return services.warm_pool_fill()
