"""Warm pools on the Docker Engine: claim a profile's container, and tend every pool towards its target."""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import Sum
from django.utils import timezone

from ..dockerproxy.workstation import workstation_docker
from ..engine.docker import EngineError, UidTaken, engine
from ..engine.fence import FenceMissing, fence_verify
from ..engine.images import LEARNER_GID
from ..events import redis_client
from ..models import PoolReservation, Runtime, Sandbox, WarmContainer
from ..policy import ContainerSpec, labels_for, workstation_command
from ..states import COUNTED
from .profiles import Profile, profile_of
from .sizing import Reservation, demand_target, pool_plan, ramp_target

log = logging.getLogger(__name__)

DEMAND_WINDOW = timedelta(minutes=15)
DEMAND_BUCKET = timedelta(minutes=1)


def _config() -> dict:
    return settings.SANDCLOUD


def _instance() -> str:
    return _config()["INSTANCE"]


def warm_containers():
    return WarmContainer.objects.filter(instance=_instance())


def default_profile() -> Profile:
    from ..services import default_limits

    return profile_of(image=_config()["WORKSTATION_IMAGE"], runtime=Runtime.RUNC, limits=default_limits())


def pool_claim(*, profile: Profile | None) -> WarmContainer | None:
    """Takes the oldest idle container of the profile. Deleting its row is the claim: of two requests racing for one
    container, exactly one deletes it, and nothing else is written."""
    if profile is None:
        return None
    for warm in warm_containers().filter(profile_key=profile.key).order_by("created_at")[:5]:
        if WarmContainer.objects.filter(pk=warm.pk).delete()[0] == 1:
            return warm
    return None


def pool_memory_mb() -> int:
    """The memory limits the pools' idle containers hold (they count against the host's budget like sandboxes)."""
    from ..services import default_limits

    rows = warm_containers()
    # Rows from before profiles carry no memory; they hold a default workstation.
    legacy = rows.filter(memory_mb=0).count() * default_limits().memory_mb
    return (rows.aggregate(total=Sum("memory_mb"))["total"] or 0) + legacy


def pool_levels() -> dict[str, int]:
    levels: dict[str, int] = {}
    for key in warm_containers().values_list("profile_key", flat=True):
        levels[key] = levels.get(key, 0) + 1
    return levels


def _profile_of_row(row) -> Profile:
    return Profile(image=row.image, runtime=row.runtime, memory_mb=row.memory_mb, cpus=float(row.cpus),
                   pids=row.pids_limit)


def reservation_remaining(reservation: PoolReservation) -> int:
    """The expected learners who have not started a sandbox for the reservation's lab since its ramp began."""
    # Only sandboxes they still have: one stopped or failed during the lead time leaves them needing another.
    started = (Sandbox.objects.filter(owner_id__in=reservation.owner_ids, lab_slug=reservation.lab_slug,
                                      created_at__gte=reservation.ramp_from, state__in=COUNTED)
               .values("owner_id").distinct().count()) if reservation.lab_slug else 0
    return max(0, reservation.expected - started)


def _demand(now) -> dict[str, tuple[Profile, list]]:
    """Recent requests per profile (every start, warm or cold, within the demand window)."""
    seen: dict[str, tuple[Profile, list]] = {}
    rows = (Sandbox.objects.filter(created_at__gte=now - DEMAND_WINDOW)
            .values_list("image", "runtime", "memory_mb", "cpus", "pids_limit", "capabilities", "created_at"))
    for image, runtime, memory_mb, cpus, pids, capabilities, created_at in rows:
        if capabilities:
            continue
        profile = Profile(image=image, runtime=runtime, memory_mb=memory_mb, cpus=float(cpus), pids=pids)
        seen.setdefault(profile.key, (profile, []))[1].append(created_at)
    return seen


@dataclass
class TendReport:
    targets: dict[str, int] = field(default_factory=dict)
    started: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    short: dict[str, int] = field(default_factory=dict)
    behind: int = 0  # reserved containers admitted but left for a later pass by the batch

    @property
    def started_total(self) -> int:
        return sum(self.started.values())


def pools_tend() -> TendReport:
    """One pass over every pool (beat runs it every few seconds, and a claim queues one): computes each profile's
    target, starts what is missing within the memory budget and a per-pass batch, and removes the surplus."""
    lock = redis_client().lock(f"sandcloud:{_instance()}:warm-pool-fill", timeout=120, blocking=False)
    if not lock.acquire():
        return TendReport()  # another worker is tending right now
    try:
        return _tend()
    finally:
        try:
            lock.release()
        except Exception:  # noqa: BLE001 - an expired lock was taken over; the other pass carries on
            log.warning("the warm pool lock expired during a pass")


def _tend() -> TendReport:
    from ..services import host_memory_budget_mb, memory_committed_mb

    config = _config()
    now = timezone.now()
    profiles: dict[str, Profile] = {}
    targets: dict[str, int] = {}
    reserved: dict[str, int] = {}

    default = default_profile()
    demand = _demand(now)
    demand.setdefault(default.key, (default, []))
    for key, (profile, times) in demand.items():
        floor = config["WARM_POOL_SIZE"] if key == default.key else 0
        targets[key] = demand_target(times, now=now, window=DEMAND_WINDOW, bucket=DEMAND_BUCKET, floor=floor,
                                     cap=config["WARM_POOL_MAX"])
        profiles[key] = profile
    reservations = list(PoolReservation.objects.filter(instance=_instance(), until__gt=now))
    for row in reservations:
        wanted = ramp_target(Reservation(profile_key=row.profile_key, remaining=reservation_remaining(row),
                                         ramp_from=row.ramp_from, ready_by=row.ready_by, until=row.until), now=now)
        reserved[row.profile_key] = reserved.get(row.profile_key, 0) + wanted
        profiles.setdefault(row.profile_key, _profile_of_row(row))
    for key, count in reserved.items():
        targets[key] = max(targets.get(key, 0), count)

    have = pool_levels()
    budget = host_memory_budget_mb()
    pooled = pool_memory_mb()
    free_mb = budget - memory_committed_mb()
    demand_free_mb = budget * config["WARM_POOL_MEMORY_PERCENT"] // 100 - pooled
    plan = pool_plan(targets=targets, reserved=reserved, have=have,
                     memory_mb={key: profile.memory_mb for key, profile in profiles.items()},
                     free_mb=free_mb, demand_free_mb=demand_free_mb, batch=config["WARM_POOL_BATCH"])
    report = TendReport(targets=targets, short=plan.short)
    for key, count in plan.remove.items():
        report.removed[key] = _remove(key, count)
    for key, count in plan.start.items():
        report.started[key] = _start(profiles[key], count)
    report.behind = sum(max(0, reserved[key] - have.get(key, 0) - report.started.get(key, 0) - plan.short.get(key, 0))
                        for key in reserved)
    for row in reservations:
        short = plan.short.get(row.profile_key, 0)
        if row.short != short:
            PoolReservation.objects.filter(pk=row.pk).update(short=short)
    return report


def _remove(key: str, count: int) -> int:
    removed = 0
    for warm in warm_containers().filter(profile_key=key).order_by("-created_at")[:count]:
        if WarmContainer.objects.filter(pk=warm.pk).delete()[0]:
            engine().remove(warm.container_id)
            removed += 1
    return removed


def _pool_network() -> str:
    from ..services import _subnets

    name = f"sandcloud-{_instance()}-pool"
    # No inter-container traffic on the holding network: pooled containers cannot see each other.
    engine().ensure_network(name, labels=labels_for(_instance()), icc=False, subnets=_subnets(name))
    return name


def _start(profile: Profile, count: int) -> int:
    """Starts up to `count` containers of the profile; returns how many it started."""
    from ..services import POOL_UIDS, _free_uid, default_limits

    docker = engine()
    if not docker.has_image(profile.image):
        log.warning("warm pool %s: image %s is not built", profile.key, profile.image)
        return 0
    network = None
    if profile.runtime == Runtime.RUNC:
        try:
            fence_verify()
        except FenceMissing:
            return 0  # fence_verify has told the operator; nothing waits in the pool unfenced
        network = _pool_network()
    started = 0
    for _ in range(count):
        uid = _free_uid(POOL_UIDS)
        name = f"sandcloud-{_instance()}-warm-{uid}-{random.randrange(16**6):06x}"
        binds, environment = workstation_docker(uid=uid, runtime=profile.runtime)
        spec = ContainerSpec(name=name, image=profile.image, uid=uid, gid=LEARNER_GID, binds=binds,
                             environment=environment, labels=labels_for(_instance(), pool=True),
                             limits=profile.limits(default_limits()), runtime=profile.runtime, network=network,
                             command=workstation_command())
        try:
            container_id = docker.run(spec)
        except UidTaken:
            continue  # another install's container holds it: the next pass draws another
        except EngineError as error:
            log.warning("warm pool %s: could not start a container: %s", profile.key, error)
            break
        try:
            WarmContainer.objects.create(instance=_instance(), profile_key=profile.key, image=profile.image,
                                         runtime=profile.runtime, memory_mb=profile.memory_mb, cpus=profile.cpus,
                                         pids_limit=profile.pids, container_id=container_id, uid=uid)
        except IntegrityError:
            docker.remove(container_id)
            continue
        started += 1
    return started


def pools_drain() -> int:
    drained = 0
    for warm in warm_containers():
        if WarmContainer.objects.filter(pk=warm.pk).delete()[0]:
            engine().remove(warm.container_id)
            drained += 1
    return drained


def pools_pass_queue(*, countdown: float) -> None:
    """Queues one pass soon, unless one is queued already: a class of thirty claiming at once queues one, not thirty."""
    from ..tasks import warm_pool_fill_task

    # The flag lives until the pass starts (pools_pass_started), or a minute if its task is lost.
    if redis_client().set(_pass_queued_key(), "1", nx=True, ex=60):
        warm_pool_fill_task.apply_async(countdown=countdown)


def pools_pass_started() -> None:
    redis_client().delete(_pass_queued_key())


def _pass_queued_key() -> str:
    return f"sandcloud:{_instance()}:warm-pool-pass-queued"
