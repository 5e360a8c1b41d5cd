"""The reaper of execution environments: it freezes idle ones (`docker pause`), removes long-idle ones, replaces
them before their credentials expire, and reconciles rows with Docker. Beat runs `environments_tend` every 2 s and
`environments_reconcile` every 30 s (sandbox/functions/tasks.py); the claim and release it must not race with are in
environments.py."""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from sandbox.engine.docker import EngineError, engine
from sandbox.policy import KIND_FUNCTION_ENVIRONMENT, KIND_LABEL

from .environments import (Environment, _config, _env_key, _idle_key, _idle_set, _r, engine_for,
                           environment_destroy)
from .models import ExecutionEnvironment

log = logging.getLogger(__name__)


def environments_tend(*, now: float | None = None) -> dict[str, int]:
    """Freezes environments idle past the grace, removes those idle past the idle limit (provisioned ones stay)."""
    config = _config()
    now = now or time.time()
    r = _r()
    counts = {"frozen": 0, "removed": 0}
    idle = r.zrangebyscore(_idle_set(), "-inf", now - config["FREEZE_AFTER_SECONDS"], withscores=True)
    for env_id, last_used in idle:
        try:
            _tend_one(r, env_id, last_used, now=now, config=config, counts=counts)
        except Exception:  # noqa: BLE001 - one environment's trouble must not stop the freezing of all the others
            log.exception("tending environment %s failed", env_id)
    return counts


def _tend_one(r, env_id: str, last_used: float, *, now: float, config: dict, counts: dict) -> None:
    data = r.hgetall(_env_key(env_id))
    environment = Environment.from_hash({**data, "id": env_id}) if data else None
    if environment is None:
        r.zrem(_idle_set(), env_id)
        if data:
            r.delete(_env_key(env_id))  # a partial hash a race left behind
        return
    # Taking it off its idle list first is the lock: a claim that pops it meanwhile wins, and we leave it alone.
    if not r.lrem(_idle_key(environment.version_id, environment.revision), 1, env_id):
        return
    if now - last_used > config["IDLE_REMOVE_SECONDS"] and not environment.provisioned:
        environment_destroy(environment)
        counts["removed"] += 1
        return
    if not environment.frozen:
        try:
            engine_for(environment.host).pause(environment.container_id)
            r.hset(_env_key(env_id), "frozen", 1)
            counts["frozen"] += 1
        except EngineError as error:
            log.warning("could not freeze environment %s: %s", env_id, error)
            environment_destroy(environment)
            return
    # Back at the cold end of its list, keeping when it was last used.
    r.rpush(_idle_key(environment.version_id, environment.revision), env_id)
    r.zadd(_idle_set(), {env_id: last_used})


def environments_remove(*, rows) -> int:
    """Removes these environments (a deleted function, an updated $LATEST's old revision, a removed account)."""
    removed = 0
    r = _r()
    for row in rows:
        data = r.hgetall(_env_key(row.pk))
        environment = Environment.from_hash({**data, "id": row.pk}) if data else None
        if environment is None:
            environment = Environment(id=row.pk, version_id=row.version_id, revision=row.revision_id,
                                      container_id=row.container_id, address=row.address, token=row.token,
                                      host=row.host, cgroup="", log_stream=row.log_stream, frozen=False,
                                      provisioned=row.provisioned)
        environment_destroy(environment)
        removed += 1
    return removed


def environments_reconcile() -> dict[str, int]:
    """Brings Docker and the rows back in line: containers without a row go, rows without a container go, expired
    temporary credentials go."""
    from sandbox.awsapi.identity import session_credentials_expire

    docker = engine()
    counts = {"orphans": 0, "lost": 0}
    rows = {row.container_id: row for row in ExecutionEnvironment.objects.exclude(container_id="")}
    seen = set()
    grace = time.time() - settings.SANDCLOUD["ORPHAN_GRACE_SECONDS"]
    for container in docker.managed_containers():
        if container.labels.get(KIND_LABEL) != KIND_FUNCTION_ENVIRONMENT:
            continue
        seen.add(container.id)
        row = rows.get(container.id)
        if row is None:
            if container.created and container.created.timestamp() < grace:
                docker.remove(container.id)
                counts["orphans"] += 1
        elif container.status not in ("running", "paused"):
            environments_remove(rows=[row])
            counts["lost"] += 1
    stale = [row for container_id, row in rows.items() if container_id not in seen]
    # A start that died before its container existed leaves a row without one: gone after the orphan grace.
    stale += list(ExecutionEnvironment.objects.filter(container_id="", created__lt=timezone.now() - timedelta(
        seconds=settings.SANDCLOUD["PROVISION_STUCK_SECONDS"])))
    counts["lost"] += environments_remove(rows=stale)
    counts["renewed"] = _retire_before_credentials_expire()
    counts["credentials_expired"] = session_credentials_expire()
    return counts


# An environment's temporary credentials last 12 hours; an idle one is replaced an hour before (a busy one at the
# next pass that finds it idle), so a long-lived provisioned environment never calls AWS with expired credentials.
RENEW_AFTER = timedelta(hours=11)


def _retire_before_credentials_expire() -> int:
    r = _r()
    retired = 0
    for row in ExecutionEnvironment.objects.filter(created__lt=timezone.now() - RENEW_AFTER).exclude(container_id=""):
        # Taking it off its idle list is the lock, as in environments_tend: a busy environment is not there.
        if r.lrem(_idle_key(row.version_id, row.revision_id), 1, row.pk):
            r.zrem(_idle_set(), row.pk)
            environments_remove(rows=[row])
            retired += 1
    return retired
