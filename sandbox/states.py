"""The sandbox lifecycle as data: which state may follow which, and what each means to a learner."""
from django.db import models


class State(models.TextChoices):
    REQUESTED = "requested", "Requested"
    PROVISIONING = "provisioning", "Starting"
    RUNNING = "running", "Running"
    STOPPING = "stopping", "Stopping"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"
    EXPIRED = "expired", "Expired"


ACTIVE = frozenset({State.REQUESTED, State.PROVISIONING, State.RUNNING, State.STOPPING})
# States that hold (or are about to hold) a container and count against quotas.
COUNTED = frozenset({State.REQUESTED, State.PROVISIONING, State.RUNNING})
FINAL = frozenset({State.STOPPED, State.FAILED, State.EXPIRED})

TRANSITIONS: dict[str, frozenset[str]] = {
    State.REQUESTED: frozenset({State.PROVISIONING, State.RUNNING, State.STOPPING, State.FAILED}),
    State.PROVISIONING: frozenset({State.RUNNING, State.STOPPING, State.FAILED}),
    State.RUNNING: frozenset({State.STOPPING, State.FAILED}),
    State.STOPPING: frozenset({State.STOPPED, State.EXPIRED, State.FAILED}),
    State.STOPPED: frozenset(),
    State.FAILED: frozenset(),
    State.EXPIRED: frozenset(),
}


class InvalidTransition(Exception):
    def __init__(self, current: str, target: str):
        super().__init__(f"a sandbox cannot go from {current} to {target}")
        self.current, self.target = current, target


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: str, target: str) -> None:
    if not can_transition(current, target):
        raise InvalidTransition(current, target)
