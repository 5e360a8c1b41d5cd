"""Every change to a sandbox goes through these functions: request, provision, claim, stop, reap, exec, touch."""
from __future__ import annotations

import logging
import random
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from .awsapi.errors import AwsError
from .awsapi.identity import aws_account_for, aws_environment_for
from .aws_profile import AWS_PROFILE_WRITE, aws_profile, aws_profile_environment
from .dockerproxy.services import learner_containers_reap, learner_containers_remove
from .dockerproxy.workstation import workstation_docker
from .engine.cgroups import sandboxes_memory_mb
from .engine.docker import EngineError, EngineUnavailable, ImageMissing, UidTaken, engine
from .engine.fence import FenceMissing, fence_verify
from .engine.images import LEARNER_GID, LEARNER_UID_COUNT, LEARNER_UID_FIRST
from .events import event_publish, redis_client
from .recording import recordings_expire
from .models import Runtime, Sandbox, WarmContainer
from .pools.profiles import profile_of
from .pools.services import (_pool_network, pool_claim, pools_drain, pools_pass_queue, pools_pass_started,
                             pools_tend)
from .pools.services import warm_containers as _warm_containers
from .policy import (KIND_LABEL, KIND_SANDBOX, ContainerSpec, Limits, PolicyError, Quota, check_capabilities,
                     container_name, labels_for, memory_budget_mb, learner_network_name, quota_refusal,
                     subnet_candidates, workstation_command)
from .states import COUNTED, FINAL, State, check_transition

log = logging.getLogger(__name__)


class SandboxError(Exception):
    """Something the learner asked for that cannot happen; str() is the message to show them."""


class QuotaExceeded(SandboxError):
    pass


class SandboxNotRunning(SandboxError):
    pass


def _config() -> dict:
    return settings.SANDCLOUD


def default_limits() -> Limits:
    return Limits.from_settings(_config()["DEFAULT_LIMITS"])


# --- state changes --------------------------------------------------------------------------------------------------

def _transition(sandbox: Sandbox, target: str, *, message: str, level: str = "info", **fields) -> bool:
    """Moves the row from its current state to `target` only if nobody moved it first; publishes after commit."""
    check_transition(sandbox.state, target)
    now = timezone.now()
    fields.setdefault("state_changed_at", now)
    if target in FINAL:
        fields.setdefault("ended_at", now)
    if target == State.RUNNING:
        fields.setdefault("started_at", now)
    with transaction.atomic():
        updated = Sandbox.objects.filter(pk=sandbox.pk, state=sandbox.state).update(state=target, **fields)
        if not updated:
            sandbox.refresh_from_db()
            return False
        sandbox.state = target
        for name, value in fields.items():
            setattr(sandbox, name, value)
        sandbox_id = sandbox.pk
        transaction.on_commit(lambda: event_publish(sandbox_id=sandbox_id, state=target, message=message, level=level))
    return True


def sandbox_fail(sandbox: Sandbox, reason: str) -> None:
    sandbox.refresh_from_db()
    if sandbox.state not in FINAL:
        _transition(sandbox, State.FAILED, message=reason, level="error", failure_reason=reason[:300])
    try:
        _release_network_if_unused(sandbox.owner_id)
    except EngineError:
        log.warning("could not remove the network of learner %s; the reaper will", sandbox.owner_id)


# --- request --------------------------------------------------------------------------------------------------------

# The pool and cold starts draw uids from separate halves of the range, so a pool fill (which reserves its uid only
# once its container exists) can never hand out a uid a cold start picked meanwhile. Active rows are unique per uid.
AT_CAPACITY = "Sandcloud is at capacity right now. Please try again in a few minutes."

POOL_UIDS = range(LEARNER_UID_FIRST, LEARNER_UID_FIRST + LEARNER_UID_COUNT // 2)
COLD_UIDS = range(LEARNER_UID_FIRST + LEARNER_UID_COUNT // 2, LEARNER_UID_FIRST + LEARNER_UID_COUNT)


def _free_uid(uids: range) -> int:
    """A uid that no sandbox of this install holds and no container on the engine runs on, whichever install made it:
    the kernel's process limit is per uid, so a shared uid would let one learner's fork bomb stop another's shell."""
    in_use = set(Sandbox.objects.filter(state__in=COUNTED | {State.STOPPING}).values_list("uid", flat=True))
    in_use |= set(WarmContainer.objects.values_list("uid", flat=True))
    try:
        in_use |= engine().uids_in_use()
    except EngineError as error:
        # The start checks the engine again before the container runs (DockerEngine.run), so a request need not fail.
        log.warning("could not read the uids in use on the engine: %s", error)
    free = [uid for uid in uids if uid not in in_use]
    if not free:
        raise QuotaExceeded(AT_CAPACITY)
    return random.choice(free)


# Any constant no other code uses as a PostgreSQL advisory lock key.
HOST_QUOTA_LOCK = 0x5A4D_C10D


def host_quota_lock() -> None:
    """Serializes every learner's quota check, so concurrent requests cannot all squeeze under the host's limits.

    On PostgreSQL a transaction-scoped advisory lock (released at commit or rollback); SQLite's IMMEDIATE transactions
    already serialize writers.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [HOST_QUOTA_LOCK])


# Other services' containers on the same host memory (e.g. Lambda execution environments) report the memory limits
# they hold here, so sandboxes and those containers are admitted against one budget.
_memory_commitments: list = []


def memory_commitment_register(committed_mb) -> None:
    """`committed_mb()` returns the MB of memory limits a service's running containers hold on this host."""
    if committed_mb not in _memory_commitments:
        _memory_commitments.append(committed_mb)


def memory_committed_mb(*, sandboxes_mb: int | None = None) -> int:
    """The memory limits of every sandbox that has or will have a container (`sandboxes_mb` when the caller has just
    summed them), of the warm pool's containers, and of every other service's containers."""
    from .pools.services import pool_memory_mb

    sandboxes = sandboxes_mb if sandboxes_mb is not None else (
        Sandbox.objects.filter(state__in=COUNTED).aggregate(total=Sum("memory_mb"))["total"] or 0)
    others = sum(committed() for committed in _memory_commitments)
    return sandboxes + pool_memory_mb() + others


def memory_preparable(*, memory_mb: int) -> int:
    """How many more containers of `memory_mb` the host's memory budget admits right now."""
    return max(0, (host_memory_budget_mb() - memory_committed_mb()) // max(1, memory_mb))


def host_memory_budget_mb() -> int:
    config = _config()
    return memory_budget_mb(parent_memory_mb=sandboxes_memory_mb(config["SANDBOXES_CGROUP"]),
                            overcommit=config["MEMORY_OVERCOMMIT"])


def sandbox_request(*, owner: AbstractBaseUser, lab_slug: str = "", step_slug: str = "", runtime: str = Runtime.RUNC,
                    image: str | None = None, limits: Limits | None = None,
                    capabilities: list[str] | tuple[str, ...] = (), ttl_minutes: int | None = None) -> Sandbox:
    """Checks quotas and records the request; a matching warm container is claimed at once, else a worker starts one.
    It expires after `ttl_minutes` (a lab's time limit), else after TTL_MINUTES."""
    config = _config()
    if runtime not in Runtime.values:
        raise SandboxError(f"Unknown runtime {runtime!r}: choose runc or runsc.")
    try:
        capabilities = check_capabilities(capabilities)
    except PolicyError as error:
        raise SandboxError(str(error)) from error
    if runtime == Runtime.RUNC:
        try:
            fence_verify()  # before a warm claim as before a queued start: no sandbox network is handed out unfenced
        except FenceMissing as error:
            raise SandboxError(str(error)) from error
    limits = limits or default_limits()
    image = image or config["WORKSTATION_IMAGE"]
    quota = Quota(per_learner=config["MAX_PER_LEARNER"], per_host=config["MAX_PER_HOST"],
                  memory_budget_mb=host_memory_budget_mb())
    now = timezone.now()
    profile = profile_of(image=image, runtime=runtime, limits=limits, capabilities=capabilities)
    with transaction.atomic():
        host_quota_lock()
        # Claimed before the check, so the claimed container's memory is counted once, as this request's; a refusal
        # rolls the claim back with everything else.
        warm = pool_claim(profile=profile)
        counted = Sandbox.objects.filter(state__in=COUNTED).aggregate(
            host=Count("pk"), learner=Count("pk", filter=Q(owner=owner)), memory_mb=Sum("memory_mb"))
        refusal = quota_refusal(
            quota=quota, learner_active=counted["learner"], host_active=counted["host"],
            memory_committed_mb=memory_committed_mb(sandboxes_mb=counted["memory_mb"] or 0),
            memory_requested_mb=limits.memory_mb,
        )
        if refusal:
            log.info("refused a sandbox for %s: %s", owner.get_username(), refusal)
            raise QuotaExceeded(refusal)
        fields = dict(
            owner=owner, lab_slug=lab_slug, step_slug=step_slug, image=image, runtime=runtime,
            memory_mb=limits.memory_mb, cpus=limits.cpus, pids_limit=limits.pids, capabilities=list(capabilities),
            created_at=now, last_active_at=now, state_changed_at=now,
            expires_at=now + timedelta(minutes=ttl_minutes or config["TTL_MINUTES"]),
        )
        if warm is not None:
            fields.update(uid=warm.uid, container_id=warm.container_id, from_warm_pool=True, state=State.RUNNING,
                          started_at=now)
        sandbox = _sandbox_create(fields, pick_uid=warm is None)
        sandbox_id = sandbox.pk
        transaction.on_commit(lambda: (_after_warm_claim if warm else _after_cold_request)(sandbox_id))
    return sandbox


def _sandbox_create(fields: dict, *, pick_uid: bool) -> Sandbox:
    """Inserts the row; a uid taken concurrently (the unique constraint says so) is drawn again."""
    for _ in range(3):
        if pick_uid:
            fields["uid"] = _free_uid(COLD_UIDS)
        try:
            with transaction.atomic():
                return Sandbox.objects.create(**fields)
        except IntegrityError:
            if not pick_uid:
                raise
    raise QuotaExceeded(AT_CAPACITY)


# A warm claim's follow-ups (its attach, the pool's refill, a lab's step setup) wait this long, so that a class
# arriving at once gets its prompts first and their Docker work comes after. Meanwhile the claimed container stays on
# the holding network, where it reaches nothing and nothing reaches it.
WARM_FOLLOW_UP_SECONDS = 3


def _after_warm_claim(sandbox_id: int) -> None:
    from .tasks import sandbox_attach_task

    event_publish(sandbox_id=sandbox_id, state=State.RUNNING, message="Claimed a ready workstation from the warm pool")
    # Off the critical path: the learner's first terminal attach should not compete with these for the CPU.
    # The claim has committed and the learner has a running sandbox: a broker that is away must not turn that into an
    # error page. The reconciler finishes an attach that never ran, and beat refills the pool.
    try:
        sandbox_attach_task.apply_async((sandbox_id,), countdown=WARM_FOLLOW_UP_SECONDS)
        pools_pass_queue(countdown=WARM_FOLLOW_UP_SECONDS)
    except (KombuOperationalError, OSError) as error:
        log.warning("could not queue the follow-ups of warm claim %s (the reaper will attach it): %s", sandbox_id, error)


def _after_cold_request(sandbox_id: int) -> None:
    from .tasks import sandbox_provision_task

    event_publish(sandbox_id=sandbox_id, state=State.REQUESTED, message="Request accepted; waiting for a worker")
    try:
        sandbox_provision_task.delay(sandbox_id)
    except (KombuOperationalError, OSError) as error:
        # Nobody will ever start it: say so now instead of letting the learner watch "waiting" until the reaper.
        log.error("could not queue the start of sandbox %s (is Redis up?): %s", sandbox_id, error)
        sandbox_fail(Sandbox.objects.get(pk=sandbox_id),
                     "Sandcloud could not hand your request to a worker just now. Please start a new one in a minute.")


# --- provisioning ---------------------------------------------------------------------------------------------------

def _spec_for(sandbox: Sandbox, *, network: str | None) -> ContainerSpec:
    config = _config()
    limits = default_limits().with_overrides(memory_mb=sandbox.memory_mb, cpus=sandbox.cpus, pids=sandbox.pids_limit)
    binds, environment = workstation_docker(uid=sandbox.uid, runtime=sandbox.runtime)
    return ContainerSpec(
        name=container_name(config["INSTANCE"], sandbox.pk), image=sandbox.image, uid=sandbox.uid, gid=LEARNER_GID,
        labels=labels_for(config["INSTANCE"], sandbox_id=sandbox.pk, owner=sandbox.owner.get_username()),
        limits=limits, runtime=sandbox.runtime, network=network, command=workstation_command(),
        binds=binds, environment=environment,
    )


def learner_network_ensure(*, user_id: int) -> str:
    """The learner's private network (made when missing): their sandboxes and function environments share it."""
    return _learner_network(user_id)


def _learner_network(user_id: int) -> str:
    config = _config()
    name = learner_network_name(config["INSTANCE"], user_id)
    engine().ensure_network(name, labels=labels_for(config["INSTANCE"], owner=str(user_id)), subnets=_subnets(name))
    return name


def _subnets(name: str) -> list[str]:
    config = _config()
    return subnet_candidates(pool=config["NETWORK_POOL"], prefix=config["NETWORK_PREFIX"], name=name)


def sandbox_provision(*, sandbox_id: int) -> Sandbox:
    """Creates and starts the sandbox's container. Only the worker that moves the row to provisioning does the work;
    a redelivered task finds the row provisioning and carries on, finding its container by the name derived from the id."""
    sandbox = Sandbox.objects.select_related("owner").get(pk=sandbox_id)
    if sandbox.state == State.REQUESTED:
        if not _transition(sandbox, State.PROVISIONING, message="A worker picked up the request"):
            return sandbox  # another worker claimed it
    if sandbox.state != State.PROVISIONING:
        return sandbox
    docker = engine()
    try:
        if not docker.has_image(sandbox.image):
            raise ImageMissing(sandbox.image)
        network = None
        if sandbox.runtime == Runtime.RUNC:
            fence_verify()  # the firewall may have gone since the request was accepted (a reboot, a reload)
            event_publish(sandbox_id=sandbox.pk, state=sandbox.state, message="Preparing your private network")
            network = _learner_network(sandbox.owner_id)
        event_publish(sandbox_id=sandbox.pk, state=sandbox.state,
                      message=f"Starting a container ({sandbox.memory_mb} MB, {sandbox.cpus:g} CPU, "
                              f"{'gVisor' if sandbox.runtime == Runtime.RUNSC else 'runc'})")
        container_id = _run_on_own_uid(sandbox, network=network)
        _aws_profile_write(sandbox, container_id=container_id)
    except EngineUnavailable:
        raise  # the task retries; the reaper fails it if the engine stays away
    except EngineError as error:
        sandbox.refresh_from_db()
        if sandbox.state == State.PROVISIONING:
            sandbox_fail(sandbox, str(error))
        return sandbox
    sandbox.refresh_from_db()
    if sandbox.state == State.PROVISIONING:
        _transition(sandbox, State.RUNNING, message="Your sandbox is ready", container_id=container_id)
    elif sandbox.state in FINAL or sandbox.state == State.STOPPING:
        docker.remove(container_id)  # stopped while we were starting it: leave nothing behind
    return sandbox


def _run_on_own_uid(sandbox: Sandbox, *, network: str | None) -> str:
    """Starts the sandbox's container; if another install's container took its uid since the request, draws another."""
    for _ in range(3):
        try:
            return engine().run(_spec_for(sandbox, network=network))
        except UidTaken:
            _sandbox_draw_uid_again(sandbox)
    raise EngineError(AT_CAPACITY)


def _sandbox_draw_uid_again(sandbox: Sandbox) -> None:
    for _ in range(3):
        try:
            uid = _free_uid(COLD_UIDS)
        except QuotaExceeded as error:
            raise EngineError(str(error)) from error
        try:
            with transaction.atomic():
                Sandbox.objects.filter(pk=sandbox.pk).update(uid=uid)
        except IntegrityError:
            continue  # one of this install's requests took it meanwhile
        sandbox.uid = uid
        return
    raise EngineError(AT_CAPACITY)


def sandbox_attach(*, sandbox_id: int) -> bool:
    """Finishes a warm claim off the request path: the learner's network, their AWS credentials and a name that says
    whose it is.

    Idempotent, so the reconciler can repeat an attach whose task was lost: the rename is the last step, so a claimed
    container that still has its pool name has not finished. Returns whether there was anything to do.
    """
    sandbox = Sandbox.objects.select_related("owner").get(pk=sandbox_id)
    if sandbox.state != State.RUNNING or not sandbox.container_id:
        return False
    docker = engine()
    name = container_name(_config()["INSTANCE"], sandbox.pk)
    container = docker.state(sandbox.container_id)
    if container is None or container.name == name:
        return False
    try:
        if sandbox.runtime == Runtime.RUNC:  # gVisor sandboxes have no network, pooled or not
            docker.connect(sandbox.container_id, _learner_network(sandbox.owner_id))
            docker.disconnect(sandbox.container_id, _pool_network())
        # Here and not at the claim: a warm container starts before anyone owns it, so its environment cannot hold them.
        _aws_profile_write(sandbox, container_id=sandbox.container_id)
        docker.rename(sandbox.container_id, name)
    except EngineUnavailable:
        raise
    except EngineError as error:
        # The learner stopped it meanwhile ("marked for removal"): the stop won, and there is nothing left to attach.
        if Sandbox.objects.filter(pk=sandbox_id, state=State.RUNNING).exists():
            raise
        log.info("sandbox %s stopped while its warm claim was being attached: %s", sandbox_id, error)
        return False
    return True


def _aws_profile_write(sandbox: Sandbox, *, container_id: str) -> None:
    """Puts the owner's AWS credentials and the sandbox endpoint in ~/.aws (sandbox/aws_profile.py), so `aws` and
    boto3 work as typed. The sandbox is usable without them: a failure is told to the learner, and never fails it."""
    try:
        account = aws_account_for(user=sandbox.owner)
        profile = aws_profile(environment=aws_environment_for(user=sandbox.owner))
        code, output = engine().exec(container_id, ["sh", "-c", AWS_PROFILE_WRITE],
                                     user=f"{sandbox.uid}:{LEARNER_GID}", timeout=10,
                                     environment=aws_profile_environment(profile))
    except EngineUnavailable:
        raise  # the task retries: a start or an attach waits for the engine anyway
    except (EngineError, AwsError) as error:
        code, output = -1, str(error)
    if code != 0:
        log.warning("could not write the AWS profile into sandbox %s (exit code %s): %s", sandbox.pk, code,
                    output.strip()[:300])
        event_publish(sandbox_id=sandbox.pk, state=sandbox.state, level="warning",
                      message="Your AWS credentials could not be put in ~/.aws: the AWS keys page gives you lines "
                              "to paste into the terminal instead.")
        return
    event_publish(sandbox_id=sandbox.pk, state=sandbox.state,
                  message=f"Your AWS account {account.account_id} is set up in ~/.aws for the aws CLI")


# --- warm pool ------------------------------------------------------------------------------------------------------

def warm_pool_fill() -> int:
    """One pass over the warm pools (sandbox/pools): returns how many containers it started. A class session's pool
    that is still behind after a pass that made progress gets the next pass in a couple of seconds rather than at the
    next beat, so a big class fills within its lead time (a pass starts at most WARM_POOL_BATCH containers)."""
    pools_pass_started()
    report = pools_tend()
    if report.behind and report.started_total:
        try:
            pools_pass_queue(countdown=2)
        except (KombuOperationalError, OSError) as error:
            log.warning("could not queue the next warm pool pass (beat will run it): %s", error)
    return report.started_total


def warm_pool_drain() -> int:
    return pools_drain()


# --- stop, reap, reconcile ------------------------------------------------------------------------------------------

class SandboxStopAction:
    """Stopping a sandbox: its owner or whoever may watch it (their instructor, the operator); nobody else."""

    def __init__(self, sandbox: Sandbox, actor: AbstractBaseUser):
        self.sandbox, self.actor = sandbox, actor

    def check(self) -> None:
        from .selectors import can_watch

        if not can_watch(user=self.actor, sandbox=self.sandbox):
            raise PermissionDenied("You can only stop your own sandboxes.")

    def execute(self) -> Sandbox:
        self.check()
        sandbox_request_stop(sandbox_id=self.sandbox.pk)
        self.sandbox.refresh_from_db()
        return self.sandbox


def sandbox_request_stop(*, sandbox_id: int, final_state: str = State.STOPPED, reason: str = "") -> None:
    from .tasks import sandbox_stop_task

    sandbox = Sandbox.objects.get(pk=sandbox_id)
    if sandbox.state in FINAL or sandbox.state == State.STOPPING:
        return
    message = reason or "Stopping your sandbox"
    if _transition(sandbox, State.STOPPING, message=message):
        transaction.on_commit(lambda: sandbox_stop_task.delay(sandbox_id, final_state, reason))


def sandbox_stop(*, sandbox_id: int, final_state: str = State.STOPPED, reason: str = "") -> Sandbox:
    """Removes the container and ends the sandbox. Idempotent."""
    sandbox = Sandbox.objects.get(pk=sandbox_id)
    if sandbox.state in FINAL:
        return sandbox
    if sandbox.state != State.STOPPING:
        _transition(sandbox, State.STOPPING, message=reason or "Stopping your sandbox")
        if sandbox.state != State.STOPPING:  # somebody else ended it meanwhile
            return sandbox
    docker = engine()
    docker.remove(sandbox.container_id or container_name(_config()["INSTANCE"], sandbox.pk))
    _release_network_if_unused(sandbox.owner_id)
    messages = {State.STOPPED: "Sandbox stopped", State.EXPIRED: reason or "Sandbox expired",
                State.FAILED: reason or "Sandbox failed"}
    fields = {"failure_reason": reason[:300]} if final_state != State.STOPPED and reason else {}
    _transition(sandbox, final_state, message=messages[final_state], **fields)
    return sandbox


def _release_network_if_unused(user_id: int) -> None:
    if not Sandbox.objects.filter(owner_id=user_id, state__in=COUNTED).exists():
        # What the learner ran with their docker CLI lives on this network and needs a workstation to be managed.
        learner_containers_remove(user_id=user_id)
        engine().remove_network(learner_network_name(_config()["INSTANCE"], user_id))


def sandbox_touch(*, sandbox_id: int) -> None:
    """Records learner activity (terminal input, API use) so the idle reaper leaves the sandbox alone."""
    Sandbox.objects.filter(pk=sandbox_id, state=State.RUNNING).update(last_active_at=timezone.now())


def sandbox_extend(*, sandbox_id: int, minutes: int) -> Sandbox:
    sandbox = Sandbox.objects.get(pk=sandbox_id)
    Sandbox.objects.filter(pk=sandbox_id).update(expires_at=sandbox.expires_at + timedelta(minutes=minutes))
    sandbox.refresh_from_db()
    return sandbox


def describe_exit(*, oom_killed: bool, exit_code: int, memory_mb: int) -> str:
    if oom_killed:
        return f"Your sandbox ran out of memory (its limit is {memory_mb} MB) and was stopped."
    return f"Your sandbox's container stopped unexpectedly (exit code {exit_code})."


def sandbox_reap() -> dict[str, int]:
    """Expires sandboxes past their TTL or idle limit, finishes stuck stops and starts, reconciles Docker with the
    database and removes old recordings. One sandbox the engine cannot handle right now never blocks the others."""
    config = _config()
    now = timezone.now()
    counts = {"expired": 0, "idle": 0, "dead": 0, "orphans": 0, "attached": 0, "stuck": 0, "networks": 0,
              "recordings": 0}
    stuck_cutoff = now - timedelta(seconds=config["PROVISION_STUCK_SECONDS"])
    idle = config["IDLE_MINUTES"]
    passes = [
        ("expired", Sandbox.objects.filter(state=State.RUNNING, expires_at__lte=now),
         lambda s: sandbox_stop(sandbox_id=s.pk, final_state=State.EXPIRED,
                                reason="Your sandbox reached its time limit.")),
        ("idle", Sandbox.objects.filter(state=State.RUNNING, last_active_at__lte=now - timedelta(minutes=idle)),
         lambda s: sandbox_stop(sandbox_id=s.pk, final_state=State.EXPIRED,
                                reason=f"Your sandbox was idle for {idle} minutes and was stopped.")),
        # A stop whose task gave up (the engine was away) is finished here; sandbox_stop is idempotent.
        ("stuck", Sandbox.objects.filter(state=State.STOPPING, state_changed_at__lte=stuck_cutoff),
         lambda s: sandbox_stop(sandbox_id=s.pk)),
        ("stuck", Sandbox.objects.filter(state__in=[State.REQUESTED, State.PROVISIONING],
                                         state_changed_at__lte=stuck_cutoff),
         _abandon),
    ]
    for name, queryset, action in passes:
        for sandbox in queryset:
            try:
                action(sandbox)
                counts[name] += 1
            except EngineError as error:
                log.warning("reaper could not handle sandbox %s yet: %s", sandbox.pk, error)
    counts.update(_reconcile(now=now))
    counts["recordings"] = recordings_expire(before=now - timedelta(days=config["RECORDING_RETENTION_DAYS"]))
    return counts


def _abandon(sandbox: Sandbox) -> None:
    # Failed first, from the state the reaper read: a worker that finished the start meanwhile keeps its sandbox, and
    # one still starting it finds the row failed and removes what it made. This removes what it had made already.
    if _fail_as_seen(sandbox, "Starting your sandbox took too long and was abandoned. Please start a new one."):
        engine().remove(container_name(_config()["INSTANCE"], sandbox.pk))


def _fail_as_seen(sandbox: Sandbox, reason: str) -> bool:
    """Fails the sandbox only if it is still in the state the reaper read it in: a learner's stop (or a worker's start)
    that lands between that read and the engine's answer wins, instead of being overwritten with "failed"."""
    if not _transition(sandbox, State.FAILED, message=reason, level="error", failure_reason=reason[:300]):
        return False
    try:
        _release_network_if_unused(sandbox.owner_id)
    except EngineError:
        log.warning("could not remove the network of learner %s; the reaper will", sandbox.owner_id)
    return True


def _reconcile(*, now) -> dict[str, int]:
    config = _config()
    docker = engine()
    counts = {"dead": 0, "orphans": 0, "attached": 0, "networks": 0}
    grace = timedelta(seconds=config["ORPHAN_GRACE_SECONDS"])
    # Warm ids first: a container claimed between the two reads then still counts as warm, never as an orphan.
    warm_ids = set(_warm_containers().values_list("container_id", flat=True))
    running = {s.container_id: s for s in Sandbox.objects.filter(state=State.RUNNING).exclude(container_id="")}
    live_ids = set(Sandbox.objects.filter(state__in=[State.REQUESTED, State.PROVISIONING, State.STOPPING])
                   .values_list("pk", flat=True))
    listed_at = timezone.now()
    containers = docker.managed_containers()
    seen = {container.id for container in containers}
    for container in containers:
        try:
            outcome = _reconcile_container(container, sandbox=running.get(container.id), warm_ids=warm_ids,
                                           live_ids=live_ids, now=now, grace=grace)
        except EngineError as error:
            log.warning("reaper could not reconcile container %s yet: %s", container.id[:12], error)
            continue
        if outcome:
            counts[outcome] += 1
    for container_id, sandbox in running.items():
        if container_id not in seen and _fail_as_seen(sandbox, "Your sandbox's container disappeared from the engine."):
            counts["dead"] += 1
    _warm_containers().exclude(container_id__in=seen).filter(created_at__lt=listed_at).delete()
    counts["learner_containers"] = learner_containers_reap()
    counts["networks"] = _reconcile_networks()
    return counts


def _reconcile_container(container, *, sandbox: Sandbox | None, warm_ids: set[str], live_ids: set[int], now,
                         grace: timedelta) -> str | None:
    """Brings one container and its row back in line; returns what it did ("dead", "attached", "orphans") if anything."""
    docker = engine()
    if sandbox is not None:
        if not container.running:
            if not _fail_as_seen(sandbox, describe_exit(oom_killed=container.oom_killed,
                                                        exit_code=container.exit_code, memory_mb=sandbox.memory_mb)):
                return None  # stopped by its learner meanwhile: their stop removes it
            docker.remove(container.id)
            return "dead"
        if (sandbox.from_warm_pool and container.name != container_name(_config()["INSTANCE"], sandbox.pk)
                and sandbox.started_at and now - sandbox.started_at >= grace):
            # A claim whose attach task was lost (the rename is its last step): left alone, the container would stay on
            # the pool network under its warm name for the rest of its life.
            log.info("attaching claimed warm container %s to sandbox %s", container.id[:12], sandbox.pk)
            return "attached" if sandbox_attach(sandbox_id=sandbox.pk) else None
        return None
    if container.labels.get(KIND_LABEL, KIND_SANDBOX) != KIND_SANDBOX:
        return None  # another service's container (a function's environment): its own reaper reconciles it
    if container.id in warm_ids:
        if not container.running:
            _warm_containers().filter(container_id=container.id).delete()
            docker.remove(container.id)
        return None
    labelled = container.labels.get("sandcloud.sandbox")
    if labelled and labelled.isdigit() and int(labelled) in live_ids:
        return None
    if container.created and now - container.created < grace:
        return None
    log.info("removing orphan container %s (%s)", container.name, container.id[:12])
    docker.remove(container.id)
    return "orphans"


def _reconcile_networks() -> int:
    """Removes learner networks whose learner has no sandbox that could still use them (e.g. after a crash)."""
    busy = {str(owner) for owner in Sandbox.objects.filter(state__in=COUNTED | {State.STOPPING})
            .values_list("owner_id", flat=True)}
    removed = 0
    for network in engine().managed_networks():
        owner = (network.get("Labels") or {}).get("sandcloud.owner")
        if owner and owner not in busy and engine().remove_network(network["Name"]):
            removed += 1
    return removed


# --- exec -----------------------------------------------------------------------------------------------------------

def sandbox_exec(*, sandbox: Sandbox, command: list[str], timeout: int = 30) -> tuple[int, str]:
    """Runs a command as the learner inside a running sandbox (operators, graders)."""
    sandbox.refresh_from_db()
    if sandbox.state != State.RUNNING:
        raise SandboxNotRunning(f"This sandbox is {sandbox.get_state_display().lower()}; "
                                f"start a new one to run commands.")
    exit_code, output = engine().exec(sandbox.container_id, command, user=f"{sandbox.uid}:{LEARNER_GID}",
                                      timeout=timeout)
    sandbox_touch(sandbox_id=sandbox.pk)
    return exit_code, output
