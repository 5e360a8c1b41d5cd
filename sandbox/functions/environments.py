"""Execution environments: where they are placed, how one is claimed for an invocation and given back, and how a new
one starts (a cold start); freezing, idle removal and reconciliation are the reaper's (reaper.py).

The claim is on every invocation's path, so an environment's fast-changing state lives in Redis, not the database:
one list of idle environment ids per function version and revision (last used first, so the warmest is reused), one
hash per environment, and one sorted set of every idle environment by when it was last used (what the reaper reads).
A claim is one Lua call that takes a concurrency slot and pops an id with its hash; giving it back is one pipeline.
The database row (`ExecutionEnvironment`) is written only when an environment starts or goes, and is what the reaper
reconciles with Docker.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Sum

from sandbox.engine.docker import EngineError, UidTaken, engine
from sandbox.engine.environments import (EnvironmentClient, EnvironmentLost, InitResult, memory_peak_mb,
                                         memory_peak_reset)
from sandbox.engine.fence import fence_verify
from sandbox.policy import KIND_FUNCTION_ENVIRONMENT, KIND_LABEL, ContainerSpec, Limits, labels_for

from .models import ExecutionEnvironment, FunctionVersion
from .reports import cpus_for_memory

log = logging.getLogger(__name__)

FUNCTION_UID_FIRST = 30000
FUNCTION_UID_COUNT = 30000
ENVIRONMENT_LABEL = "sandcloud.function-environment"


class EnvironmentUnavailable(Exception):
    """No environment could be had; `code`/`message`/`status` are what the learner's API call answers."""

    def __init__(self, code: str, message: str, status: int = 503):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def _config() -> dict:
    return settings.SANDCLOUD_FUNCTIONS


def _prefix() -> str:
    return f"sc:{settings.SANDCLOUD['INSTANCE']}:fn"


def _idle_key(version_id: int, revision: str) -> str:
    return f"{_prefix()}:idle:{version_id}:{revision}"


def _env_key(env_id: int) -> str:
    return f"{_prefix()}:env:{env_id}"


def _idle_set() -> str:
    return f"{_prefix()}:idle-all"


_redis: redis.Redis | None = None


def _r() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5,
                                      decode_responses=True)
    return _redis


@dataclass
class Environment:
    id: int
    version_id: int
    revision: str
    container_id: str
    address: str
    token: str
    host: str
    cgroup: str
    log_stream: str
    frozen: bool
    provisioned: bool
    init: InitResult | None = None  # set on the invocation that started it (a cold start)
    settled: bool = False  # given back or destroyed: whoever claimed it is done with it

    def as_hash(self) -> dict[str, str]:
        return {"version": self.version_id, "revision": self.revision, "container": self.container_id,
                "address": self.address, "token": self.token, "host": self.host, "cgroup": self.cgroup,
                "stream": self.log_stream, "frozen": int(self.frozen), "provisioned": int(self.provisioned)}

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> "Environment | None":
        """The environment a hash describes, or None for a partial one (written by a race with its removal)."""
        if not _FIELDS <= data.keys():
            return None
        return cls(id=int(data["id"]), version_id=int(data["version"]), revision=data["revision"],
                   container_id=data["container"], address=data["address"], token=data["token"], host=data["host"],
                   cgroup=data["cgroup"], log_stream=data["stream"], frozen=data.get("frozen") == "1",
                   provisioned=data.get("provisioned") == "1")


_FIELDS = {"id", "version", "revision", "container", "address", "token", "host", "cgroup", "stream"}


# --- this process's connections to environments -----------------------------------------------------------------

# One kept-alive connection per environment this process invoked lately; environments removed by another process
# (the reaper, a retire task) leave theirs here, so the least recently used are closed past a bound.
MAX_CLIENTS = 256
_clients: OrderedDict[int, EnvironmentClient] = OrderedDict()
_clients_lock = threading.Lock()


def client_for(environment: Environment) -> EnvironmentClient:
    with _clients_lock:
        client = _clients.get(environment.id)
        if client is None or (client.address, client.token) != (environment.address, environment.token):
            client = _clients[environment.id] = EnvironmentClient(address=environment.address,
                                                                  token=environment.token)
        _clients.move_to_end(environment.id)
        while len(_clients) > MAX_CLIENTS:
            _, oldest = _clients.popitem(last=False)
            oldest.close()
        return client


def _client_drop(env_id: int) -> None:
    with _clients_lock:
        client = _clients.pop(env_id, None)
    if client is not None:
        client.close()


# --- placement ----------------------------------------------------------------------------------------------------

def environment_host_choose(*, memory_mb: int) -> str:
    """The Docker host a new environment runs on. There is one host today ("local", the engine in settings); a
    second host is a second engine, and everything about an environment (its container, cgroup, freezing, log stream)
    is already keyed by the host named here."""
    return "local"


def engine_for(host: str):
    return engine()


# --- claim and give back --------------------------------------------------------------------------------------------

# One round trip for an invocation's start: take a concurrency slot (a member scored by when it must be over, so one
# lost with its process frees itself) and, if granted, pop the warmest idle environment with its hash.
_ACQUIRE_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return {0} end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
local id = redis.call('LPOP', KEYS[2])
if not id then return {1} end
redis.call('ZREM', KEYS[3], id)
local fields = redis.call('HGETALL', ARGV[5] .. id)
table.insert(fields, 'id')
table.insert(fields, id)
return {1, fields}
"""
_acquire_script = None


@dataclass
class Slot:
    key: str
    member: str
    held: bool = True


def environment_acquire(*, version: FunctionVersion, slot_key: str, slot_limit: int, request_id: str,
                        deadline: float) -> tuple[Slot | None, Environment | None]:
    """A concurrency slot (None: throttled) and, with it, the warmest idle environment of the version's current
    revision (None: a cold start is needed)."""
    global _acquire_script
    r = _r()
    if _acquire_script is None:
        _acquire_script = r.register_script(_ACQUIRE_LUA)
    answer = _acquire_script(keys=[slot_key, _idle_key(version.pk, version.revision_id), _idle_set()],
                             args=[time.time(), slot_limit, deadline + 30, request_id, _env_key("")], client=r)
    if not answer or not answer[0]:
        return None, None
    slot = Slot(key=slot_key, member=request_id)
    if len(answer) < 2:
        return slot, None
    return slot, _thawed(answer[1])


def slot_give_back(slot: Slot) -> None:
    if not slot.held:
        return
    slot.held = False
    try:
        _r().zrem(slot.key, slot.member)
    except redis.RedisError:
        log.warning("could not free a concurrency slot; it frees itself at its deadline")


# Marks an environment thawed only if it still exists: a destroy in between must not leave a partial hash behind.
_THAW_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'frozen', 0) return 1 end
return 0
"""
_thaw_script = None


def _thawed(fields: list) -> Environment | None:
    global _thaw_script
    r = _r()
    data = dict(zip(fields[::2], fields[1::2]))
    environment = Environment.from_hash(data)
    if environment is None:
        return None  # its hash is gone or partial: removed while idle
    if environment.frozen:
        try:
            engine_for(environment.host).unpause(environment.container_id)
        except EngineError:
            environment_destroy(environment)
            return None
        if _thaw_script is None:
            _thaw_script = r.register_script(_THAW_LUA)
        if not _thaw_script(keys=[_env_key(environment.id)], client=r):
            return None  # destroyed while we thawed it
        environment.frozen = False
    return environment


def environment_release(environment: Environment, *, slot: Slot | None = None) -> None:
    """Gives a healthy environment back after an invocation (it is the first one the next invocation takes), and
    its concurrency slot with it in the same round trip."""
    environment.settled = True
    now = time.time()
    r = _r()
    pipe = r.pipeline(transaction=False)
    pipe.lpush(_idle_key(environment.version_id, environment.revision), environment.id)
    pipe.zadd(_idle_set(), {str(environment.id): now})
    if slot is not None and slot.held:
        pipe.zrem(slot.key, slot.member)
        slot.held = False
    pipe.execute()


def environment_destroy(environment: Environment) -> None:
    """Removes an environment that timed out, crashed, ran out of memory or is no longer wanted."""
    environment.settled = True
    _client_drop(environment.id)
    r = _r()
    pipe = r.pipeline(transaction=False)
    pipe.lrem(_idle_key(environment.version_id, environment.revision), 0, environment.id)
    pipe.zrem(_idle_set(), environment.id)
    pipe.delete(_env_key(environment.id))
    pipe.execute()
    if environment.container_id:
        docker = engine_for(environment.host)
        try:
            # Dying processes still need CPU to exit, and a 128 MB environment has 7% of a core: a fork bomb's
            # thousand processes would take minutes to die under that quota. Lift it first.
            docker.set_cpus(environment.container_id, _host_cpus())
        except EngineError:
            pass
        try:
            docker.remove(environment.container_id)
        except EngineError:
            # Most often a fork bomb outrunning the engine's kill: freeze it, kill everything in it, then remove.
            try:
                docker.kill_all(environment.container_id)
                docker.remove(environment.container_id)
            except EngineError as error:
                log.warning("could not remove environment %s's container yet (the reaper will): %s",
                            environment.id, error)
                return
    _row_delete(environment.id)


def _row_delete(env_id: int) -> None:
    """The environment's row and its temporary credentials, which stop signing at once."""
    from sandbox.awsapi.identity import session_credentials_delete

    for session_key_id in ExecutionEnvironment.objects.filter(pk=env_id).values_list("session_key_id", flat=True):
        if session_key_id:
            session_credentials_delete(access_key_id=session_key_id)
    ExecutionEnvironment.objects.filter(pk=env_id).delete()


def environment_memory_peak_reset(environment: Environment) -> None:
    memory_peak_reset(environment.cgroup)


def environment_memory_peak_mb(environment: Environment) -> int:
    return memory_peak_mb(environment.cgroup)


# --- cold start -------------------------------------------------------------------------------------------------------

def committed_mb() -> int:
    """The memory limits every function environment on this install holds (admitted with the sandboxes')."""
    return ExecutionEnvironment.objects.aggregate(total=Sum("memory_mb"))["total"] or 0


def _admit(*, version: FunctionVersion, owner_id: int, provisioned: bool) -> ExecutionEnvironment:
    from sandbox import services as sandboxes

    config = _config()
    with transaction.atomic():
        sandboxes.host_quota_lock()
        mine = ExecutionEnvironment.objects.filter(owner_id=owner_id).count()
        if mine >= config["ENVIRONMENTS_PER_LEARNER"]:
            raise EnvironmentUnavailable(
                "TooManyRequestsException",
                f"Rate Exceeded. (Sandcloud: you already have {mine} execution environments running, the most one "
                f"learner may have; they are reused or removed when idle.)", status=429)
        held = ExecutionEnvironment.objects.filter(owner_id=owner_id).aggregate(total=Sum("memory_mb"))["total"] or 0
        if held + version.memory_size > config["MEMORY_MB_PER_LEARNER"]:
            raise EnvironmentUnavailable(
                "TooManyRequestsException",
                f"Rate Exceeded. (Sandcloud: your execution environments already hold {held} MB of memory, and one "
                f"learner may hold {config['MEMORY_MB_PER_LEARNER']} MB; idle ones are removed after a while, or "
                f"lower the memory or the provisioned concurrency of your functions.)", status=429)
        if ExecutionEnvironment.objects.count() >= config["ENVIRONMENTS_PER_HOST"]:
            raise EnvironmentUnavailable("ServiceException", "Sandcloud is at capacity right now. Please try "
                                                             "again in a few minutes.", status=503)
        if sandboxes.memory_committed_mb() + version.memory_size > sandboxes.host_memory_budget_mb():
            raise EnvironmentUnavailable("ServiceException", "Sandcloud does not have enough memory free for another "
                                                             "execution environment right now. Please try again in a "
                                                             "few minutes.", status=503)
        return ExecutionEnvironment.objects.create(
            version=version, revision_id=version.revision_id, owner_id=owner_id,
            host=environment_host_choose(memory_mb=version.memory_size), token=secrets.token_hex(16),
            memory_mb=version.memory_size, provisioned=provisioned,
            log_stream=_log_stream_name(version.version))


def _log_stream_name(version: str) -> str:
    return f"{time.strftime('%Y/%m/%d', time.gmtime())}/[{version}]{secrets.token_hex(16)}"


def _host_cpus() -> float:
    return float(os.cpu_count() or 1)


def environment_start(*, version: FunctionVersion, owner_id: int, environment_vars: dict[str, str],
                      code_dir: str, provisioned: bool = False) -> Environment:
    """Starts a new environment for the version and waits for its init phase; the caller invokes it next."""
    from sandbox import services as sandboxes

    from sandbox.awsapi.identity import session_credentials_create

    row = _admit(version=version, owner_id=owner_id, provisioned=provisioned)
    config = _config()
    # Temporary credentials for the function's own account, as Lambda hands an execution role's to its runtime.
    key, secret, token = session_credentials_create(account=version.function.account, hours=12)
    ExecutionEnvironment.objects.filter(pk=row.pk).update(session_key_id=key.access_key_id)
    instance = settings.SANDCLOUD["INSTANCE"]
    docker = engine_for(row.host)
    environment = None
    try:
        fence_verify()
        network = sandboxes.learner_network_ensure(user_id=owner_id)
        # The init phase runs with at least one whole CPU (AWS's init is not throttled to the memory's share the way
        # invocations are); the share that grows with memory applies from the first invocation on.
        cpus = cpus_for_memory(version.memory_size, host_cpus=_host_cpus())
        init_cpus = max(cpus, min(1.0, _host_cpus()))
        limits = Limits(memory_mb=version.memory_size, cpus=init_cpus,
                        pids=1024, home_mb=1, tmp_mb=version.ephemeral_storage, nofile=1024, log_max_size="256k",
                        log_max_files=1)
        labels = {**labels_for(instance, owner=str(owner_id)), KIND_LABEL: KIND_FUNCTION_ENVIRONMENT,
                  ENVIRONMENT_LABEL: str(row.pk)}
        env = {**environment_vars, "AWS_LAMBDA_LOG_STREAM_NAME": row.log_stream,
               "AWS_ACCESS_KEY_ID": key.access_key_id, "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token,
               "AWS_LAMBDA_INITIALIZATION_TYPE": "provisioned-concurrency" if provisioned else "on-demand",
               "_SANDCLOUD_CONTROL_TOKEN": row.token,
               "_SANDCLOUD_LOG_CAP_BYTES": str(config["LOG_BYTES_PER_INVOCATION"]),
               "_SANDCLOUD_RUNTIME_COMMAND": json.dumps(["python3", "-m", "awslambdaric", version.handler])}
        uid = FUNCTION_UID_FIRST + row.pk % FUNCTION_UID_COUNT
        for attempt in range(3):
            spec = ContainerSpec(name=f"sandcloud-{instance}-fnenv-{row.pk}", image=config["RUNTIME_IMAGE"],
                                 uid=uid, gid=uid, labels=labels, limits=limits,
                                 runtime="runsc-net" if version.isolation == "runsc" else "runc", network=network,
                                 environment=env, binds=((code_dir, "/var/task"),), hostname="localhost")
            try:
                container_id = docker.run(spec)
                break
            except UidTaken:
                uid = FUNCTION_UID_FIRST + secrets.randbelow(FUNCTION_UID_COUNT)
        else:
            raise EnvironmentUnavailable("ServiceException", "Sandcloud is at capacity right now. Please try again "
                                                             "in a few minutes.")
        address = docker.address(container_id, network)
        environment = Environment(id=row.pk, version_id=version.pk, revision=version.revision_id,
                                  container_id=container_id, address=address, token=row.token, host=row.host,
                                  cgroup=docker.cgroup_dir(container_id), log_stream=row.log_stream, frozen=False,
                                  provisioned=provisioned)
        ExecutionEnvironment.objects.filter(pk=row.pk).update(container_id=container_id, address=address, uid=uid)
        _r().hset(_env_key(row.pk), mapping=environment.as_hash())
        client = client_for(environment)
        client.wait_listening()
        environment.init = client.ready(timeout=float(config.get("INIT_TIMEOUT_SECONDS", 10)) + 5)
        if init_cpus != cpus:
            docker.set_cpus(container_id, cpus)
        return environment
    except BaseException as error:
        if not isinstance(error, (EngineError, EnvironmentLost)):
            # Anything else (a task's time limit, a bug) still must not leave a container nobody will ever use.
            environment_destroy(environment or Environment(
                id=row.pk, version_id=version.pk, revision=version.revision_id, container_id="", address="",
                token="", host=row.host, cgroup="", log_stream=row.log_stream, frozen=False, provisioned=provisioned))
            try:
                docker.remove(f"sandcloud-{settings.SANDCLOUD['INSTANCE']}-fnenv-{row.pk}")
            except EngineError:
                pass
            raise
        log.warning("execution environment %s failed to start: %s", row.pk, error)
        if environment is None:
            environment = Environment(id=row.pk, version_id=version.pk, revision=version.revision_id,
                                      container_id="", address="", token="", host=row.host, cgroup="",
                                      log_stream=row.log_stream, frozen=False, provisioned=provisioned)
            try:
                docker.remove(f"sandcloud-{instance}-fnenv-{row.pk}")
            except EngineError:
                pass
        environment_destroy(environment)
        message = str(error) if isinstance(error, EngineError) else "The function's execution environment did not start."
        raise EnvironmentUnavailable("ServiceException", message) from error
