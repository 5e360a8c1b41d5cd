"""The lifetime of what learners make with their docker CLI: containers go when their learner's last workstation does.

A learner's containers live on their private network and run as a workstation's uid; once no workstation of theirs
is left they could not be reached or managed, and they would hold memory, a uid and the network. Images and volumes
stay (within their caps), so a learner who comes back finds what they built.
"""
from __future__ import annotations

import logging

from django.conf import settings

from sandbox.engine.docker import engine
from sandbox.models import Sandbox
from sandbox.states import COUNTED, State

from .policy import KIND_LEARNER_CONTAINER, OWNER_LABEL
from .selectors import namespace_for

log = logging.getLogger(__name__)


def learner_containers_remove(*, user_id: int) -> int:
    """Removes every container the learner made through their docker CLI; returns how many."""
    docker = engine()
    listed = docker.containers_labelled(f"{OWNER_LABEL}={namespace_for(user_id).tag}")
    for container in listed:
        docker.remove(container["Id"])
    return len(listed)


def learner_containers_reap() -> int:
    """Removes the learner containers of this install whose learner has no workstation left (e.g. after a crash)."""
    instance = settings.SANDCLOUD["INSTANCE"]
    busy = set(Sandbox.objects.filter(state__in=COUNTED | {State.STOPPING}).values_list("owner_id", flat=True))
    removed = 0
    for container in engine().containers_labelled(f"sandcloud.instance={instance}",
                                                  f"sandcloud.kind={KIND_LEARNER_CONTAINER}"):
        owner = (container.get("Labels") or {}).get(OWNER_LABEL, "")
        user_id = owner.rsplit("-", 1)[-1]
        if user_id.isdigit() and int(user_id) not in busy:
            log.info("removing learner container %s: its learner has no workstation", container["Id"][:12])
            engine().remove(container["Id"])
            removed += 1
    return removed
