"""Celery tasks of the labs: thin, id-taking, retry-safe wrappers around labs.services."""
from celery import shared_task

from sandbox.engine.docker import EngineUnavailable

from . import services


@shared_task(autoretry_for=(EngineUnavailable,), retry_backoff=1, retry_backoff_max=10, max_retries=3,
             acks_late=True, soft_time_limit=180, time_limit=210)
def attempt_grade_task(attempt_id: int) -> None:
    services.attempt_grade(attempt_id=attempt_id)


@shared_task(bind=True, autoretry_for=(EngineUnavailable,), retry_backoff=1, max_retries=60, acks_late=True,
             soft_time_limit=90, time_limit=120)
def step_setup_task(self, sandbox_id: int, step_id: int) -> None:
    try:
        services.step_setup(sandbox_id=sandbox_id, step_id=step_id)
    except services.SandboxStarting as starting:
        # Never block on provisioning: look again shortly (a cold start takes a few seconds).
        raise self.retry(countdown=2, exc=starting)


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def attempts_reap_task() -> dict:
    """The labs' reaper (beat): finishes checks lost with their worker or queue, and queues lost step setups again."""
    return {"attempts": services.attempts_reap(), "setups": services.step_setups_reap()}
