"""The Docker Engine's blocking client: hardened containers, learner networks, exec and stats (streams.py: asyncio)."""
from __future__ import annotations

import logging
import os
import socket
import struct
import time
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from ..policy import UID_LABEL, ContainerSpec, hardened_create_kwargs, hardened_network_options
from .cgroups import CgroupError, ParentCgroup, parent_cgroup_ensure

log = logging.getLogger(__name__)


MAX_EXEC_OUTPUT = 1024 * 1024


class EngineError(Exception):
    """A Docker failure, with a message a learner can read."""


class EngineUnavailable(EngineError):
    def __init__(self, detail: str = ""):
        super().__init__("The container engine is not reachable right now. Please try again in a minute.")
        self.detail = detail


class ImageMissing(EngineError):
    def __init__(self, image: str):
        super().__init__(f"The sandbox image {image} has not been built on this server yet. "
                         f"An operator needs to run `python manage.py sandbox images`.")
        self.image = image


class ParentCgroupMissing(EngineError):
    """The cgroup that caps all sandboxes together is not in place, so no sandbox may start."""

    def __init__(self, detail: str):
        super().__init__("Sandcloud cannot start sandboxes right now: a safety limit on this server is not in place. "
                         "An operator has been told; please try again later.")
        self.detail = detail


class UidTaken(EngineError):
    """Another container on this engine (of any install) holds the uid; the container made for it is gone again."""

    def __init__(self, uid: int):
        super().__init__("Sandcloud is at capacity right now. Please try again in a few minutes.")
        self.uid = uid


# A container in these states holds its uid: it runs, or it may start any moment.
_HOLDING_STATES = ("created", "running", "paused", "restarting")


@dataclass(frozen=True)
class ContainerState:
    id: str
    name: str
    labels: dict[str, str]
    status: str  # created, running, paused, restarting, removing, exited, dead
    oom_killed: bool
    exit_code: int
    created: datetime | None

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    truncated: bool = False


@dataclass
class TerminalStream:
    exec_id: str
    sock: socket.socket


def _translate(error: Exception) -> EngineError:
    if isinstance(error, ImageNotFound):
        return ImageMissing(str(error.explanation or error))
    if isinstance(error, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return EngineUnavailable(str(error))
    if isinstance(error, APIError):
        return EngineError(f"The container engine refused the request: {error.explanation or error}")
    return EngineUnavailable(str(error))


def _read_frames(sock: socket.socket, streams: dict[int, bytearray], max_output: int) -> bool:
    """Reads a non-TTY exec's multiplexed frames (an 8-byte header: stream, 3 zero bytes, big-endian length) into
    `streams` until the end, or until `max_output` bytes; answers whether output was cut off."""
    buffer = bytearray()
    total = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return False
        buffer += chunk
        while len(buffer) >= 8:
            kind, size = struct.unpack(">BxxxL", buffer[:8])
            if len(buffer) < 8 + size:
                break
            payload = buffer[8:8 + size]
            del buffer[:8 + size]
            total += len(payload)
            if total > max_output:
                return True
            if kind in streams:
                streams[kind] += payload
        if len(buffer) > max_output + 8:
            return True


class DockerEngine:
    def __init__(self, *, url: str, timeout: int, instance: str, parent: ParentCgroup | None = None):
        self.url, self.timeout, self.instance = url, timeout, instance
        # Every learner container runs under this cgroup (None: no shared limit, as an operator chose).
        self.parent = parent

    @cached_property
    def client(self) -> docker.DockerClient:
        try:
            return docker.DockerClient(base_url=self.url, timeout=self.timeout, version="auto")
        except DockerException as error:
            raise EngineUnavailable(str(error)) from error

    @property
    def api(self) -> docker.APIClient:
        return self.client.api

    def ping(self) -> None:
        try:
            self.api.ping()
        except Exception as error:  # noqa: BLE001 - any failure means "not reachable"
            raise EngineUnavailable(str(error)) from error

    def host_kernel(self) -> str:
        """The kernel release of the Docker host, which every runc container shares."""
        try:
            return str(self.api.info().get("KernelVersion", "")).strip()
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error

    # --- images -----------------------------------------------------------------------------------------------
    def has_image(self, image: str) -> bool:
        try:
            self.api.inspect_image(image)
            return True
        except NotFound:
            return False
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error

    # --- networks ---------------------------------------------------------------------------------------------
    def ensure_network(self, name: str, *, labels: dict[str, str], icc: bool = True,
                       subnets: list[str] | tuple[str, ...] = ()) -> str:
        """An internal bridge network: no route out, no gateway to other networks. Idempotent.

        `subnets` are tried in order (the first free one wins) so learner networks come from the project's own
        range instead of Docker's default pools, which hold only about thirty networks.
        """
        try:
            return self.api.inspect_network(name)["Id"]
        except NotFound:
            pass
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error
        last_error: Exception | None = None
        candidates = list(subnets) or [None]
        vanishing_waits = 10
        while candidates:
            subnet = candidates.pop(0)
            ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=subnet)]) if subnet else None
            try:
                created = self.api.create_network(name, driver="bridge", internal=True, labels=labels,
                                                  check_duplicate=True, ipam=ipam,
                                                  options=hardened_network_options(name, icc=icc))
                return created["Id"]
            except APIError as error:
                # Made concurrently by another worker? Docker says so in several ways ("already exists", 409,
                # "same bridge name"): whatever it said, a network that now exists is the one we wanted.
                try:
                    return self.api.inspect_network(name)["Id"]
                except NotFound:
                    pass
                if "overlaps" in str(error):
                    last_error = error
                    continue
                if "same bridge name" in str(error) and vanishing_waits:
                    # The same name's network from a moment ago is still being removed (its bridge is not gone yet):
                    # wait for it, then make ours.
                    vanishing_waits -= 1
                    time.sleep(0.1)
                    candidates.insert(0, subnet)
                    continue
                raise _translate(error) from error
            except requests.exceptions.RequestException as error:
                raise _translate(error) from error
        raise EngineError("No free network address range is left for a new learner network.") from last_error

    def remove_network(self, name: str) -> bool:
        try:
            self.api.remove_network(name)
            return True
        except NotFound:
            return True
        except APIError as error:
            if error.status_code == 403 or "active endpoints" in str(error):
                return False  # still in use by another of the learner's containers
            raise _translate(error) from error

    def managed_networks(self) -> list[dict]:
        return self.api.networks(filters={"label": f"sandcloud.instance={self.instance}"})

    def connect(self, container_id: str, network: str) -> None:
        try:
            self.api.connect_container_to_network(container_id, network)
        except APIError as error:
            if "already exists" not in str(error):
                raise _translate(error) from error

    def disconnect(self, container_id: str, network: str) -> None:
        try:
            self.api.disconnect_container_from_network(container_id, network, force=True)
        except NotFound:
            pass
        except APIError as error:
            if "is not connected" not in str(error):
                raise _translate(error) from error

    def rename(self, container_id: str, name: str) -> None:
        try:
            self.api.rename(container_id, name)
        except APIError as error:
            if error.status_code != 409:
                raise _translate(error) from error

    # --- containers -------------------------------------------------------------------------------------------
    def run(self, spec: ContainerSpec) -> str:
        """Creates and starts a hardened container. Idempotent by name: a retry finds and starts the same one.

        Raises UidTaken when another container on the engine holds the spec's uid, ParentCgroupMissing when the
        sandboxes' shared limit cannot be put in place.
        """
        kwargs = hardened_create_kwargs(spec)
        if self.parent is not None:
            self._ensure_parent()
            kwargs["cgroup_parent"] = self.parent.docker_path
        try:
            try:
                container = self.client.containers.create(**kwargs)
            except APIError as error:
                if error.status_code != 409:
                    raise
                container = self.client.containers.get(spec.name)
            if container.status != "running":
                self._claim_uid(container.id, spec.uid)
                container.start()
            return container.id
        except (DockerException, requests.exceptions.RequestException) as error:
            raise _translate(error) from error

    def _ensure_parent(self) -> None:
        info = self._cgroup_info
        try:
            if info["CgroupDriver"] != "cgroupfs":
                raise CgroupError(f"the engine uses the {info['CgroupDriver']} cgroup driver; Sandcloud makes its "
                                  f"parent cgroup for the cgroupfs driver (dockerd --exec-opt native.cgroupdriver="
                                  f"cgroupfs), or set SANDCLOUD_CGROUP_PARENT= to run without the shared limit")
            parent_cgroup_ensure(self.parent, version=info["CgroupVersion"])
        except CgroupError as error:
            log.error("refusing to start sandboxes: %s", error)
            raise ParentCgroupMissing(str(error)) from error

    @cached_property
    def _cgroup_info(self) -> dict[str, str]:
        try:
            info = self.api.info()
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error
        return {"CgroupDriver": info.get("CgroupDriver", ""), "CgroupVersion": str(info.get("CgroupVersion", "1"))}

    def _claim_uid(self, container_id: str, uid: int) -> None:
        """Makes sure no two containers on the engine, of any install, ever run on one uid (the kernel's process limit
        is per uid, so a fork bomb on a shared uid would stop the other learner's processes too).

        Of the containers labelled with the uid, the one created first keeps it; any later one is removed before it
        starts. Each claimant looks only after its own create, so of two racing ones the later always sees the earlier.
        """
        holders = self.api.containers(all=True, filters={"label": f"{UID_LABEL}={uid}"})
        rivals = [h["Id"] for h in holders if h["Id"] != container_id and h.get("State") in _HOLDING_STATES]
        if not rivals:
            return
        mine = self._created_order(container_id)
        for rival in rivals:
            try:
                if self._created_order(rival) < mine:
                    log.info("uid %s is held by container %s; dropping %s", uid, rival[:12], container_id[:12])
                    self.remove(container_id)
                    raise UidTaken(uid)
            except NotFound:
                continue  # gone while we looked: it holds nothing

    def _created_order(self, container_id: str) -> tuple[int, str]:
        return _nanoseconds(self.api.inspect_container(container_id)["Created"]), container_id

    def uids_in_use(self) -> set[int]:
        """The uids of every container on the engine that runs or may start, whichever install made it."""
        try:
            summaries = self.api.containers(all=True, filters={"label": UID_LABEL})
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error
        return {int(s["Labels"][UID_LABEL]) for s in summaries
                if s.get("State") in _HOLDING_STATES and s["Labels"][UID_LABEL].isdigit()}

    def containers_labelled(self, *labels: str) -> list[dict]:
        """The summaries (Id, Names, Labels, State) of every container carrying all `labels` ("key=value")."""
        try:
            return self.api.containers(all=True, filters={"label": list(labels)})
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error

    def remove(self, container: str) -> None:
        try:
            self.api.remove_container(container, force=True, v=True)
        except NotFound:
            pass
        except APIError as error:
            if error.status_code == 409 and "already in progress" in str(error):
                return
            raise _translate(error) from error
        except requests.exceptions.RequestException as error:
            raise _translate(error) from error

    def pause(self, container: str) -> None:
        """Freezes every process in the container (the cgroup freezer): it keeps its memory and uses no CPU."""
        try:
            self.api.pause(container)
        except APIError as error:
            if "is already paused" not in str(error):
                raise _translate(error) from error
        except requests.exceptions.RequestException as error:
            raise _translate(error) from error

    def unpause(self, container: str) -> None:
        try:
            self.api.unpause(container)
        except APIError as error:
            if "is not paused" not in str(error):
                raise _translate(error) from error
        except requests.exceptions.RequestException as error:
            raise _translate(error) from error

    def set_cpus(self, container: str, cpus: float) -> None:
        """Changes a running container's CPU limit (its cgroup's CFS quota) without restarting it: written straight
        into the cgroup when it is on this host (gVisor's runsc has no `update`, and it is faster), else through the
        engine."""
        cgroup = self.cgroup_dir(container, "cpu")
        try:
            with open(f"{cgroup}/cpu.cfs_period_us") as period_file:
                period = int(period_file.read())
            # No quota of its own (-1) when asked for the whole host: a child may not have more than its parent
            # (the /sandcloud cgroup holds all but half a core), and the parent's own limit still applies.
            quota = -1 if cpus >= (os.cpu_count() or 1) else max(1000, int(cpus * period))
            with open(f"{cgroup}/cpu.cfs_quota_us", "w") as quota_file:
                quota_file.write(str(quota))
            return
        except (OSError, ValueError):
            pass
        try:
            response = self.api._post_json(self.api._url("/containers/{0}/update", container),
                                           data={"NanoCpus": int(cpus * 1e9)})
            self.api._raise_for_status(response)
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error

    def kill_all(self, container_id: str) -> int:
        """SIGKILLs every process in the container's cgroup while it is frozen, so a fork bomb cannot outrun the kill
        (a `docker rm -f` of a container forking as fast as it can may time out). Returns how many it killed."""
        import os
        import signal

        killed = 0
        try:
            self.pause(container_id)
        except EngineError:
            pass
        try:
            with open(f"{self.cgroup_dir(container_id, 'pids')}/cgroup.procs") as procs:
                for line in procs:
                    try:
                        os.kill(int(line), signal.SIGKILL)
                        killed += 1
                    except (ProcessLookupError, ValueError, PermissionError):
                        continue
        except OSError:
            pass
        finally:
            try:
                self.unpause(container_id)
            except EngineError:
                pass
        return killed

    def address(self, container: str, network: str) -> str:
        """The container's IPv4 address on one of its networks ("" when it is not on it)."""
        try:
            attrs = self.api.inspect_container(container)
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error
        return ((attrs.get("NetworkSettings") or {}).get("Networks") or {}).get(network, {}).get("IPAddress", "")

    def cgroup_dir(self, container_id: str, controller: str = "memory") -> str:
        """Where the container's cgroup lives on this host (cgroup v1, cgroupfs driver)."""
        parent = self.parent.docker_path if self.parent is not None else "/docker"
        return f"/sys/fs/cgroup/{controller}{parent}/{container_id}"

    def state(self, container: str) -> ContainerState | None:
        try:
            attrs = self.api.inspect_container(container)
        except NotFound:
            return None
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error
        return _state_from_inspect(attrs)

    def managed_containers(self) -> list[ContainerState]:
        try:
            summaries = self.api.containers(all=True, filters={"label": f"sandcloud.instance={self.instance}"})
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error
        states = []
        for summary in summaries:
            state = self.state(summary["Id"])
            if state is not None:
                states.append(state)
        return states

    def exec(self, container: str, command: list[str], *, user: str, timeout: int = 30,
             environment: dict[str, str] | None = None, max_output: int = MAX_EXEC_OUTPUT) -> tuple[int, str]:
        """Runs a command to completion inside the container; `timeout` is enforced inside by coreutils' timeout.

        Output beyond `max_output` bytes is not read: the stream is closed, the command gets a broken pipe, and the
        text ends with a note, so a command printing gigabytes cannot grow this process.
        """
        wrapped = ["timeout", "--kill-after=2", str(timeout), *command]
        chunks, size, truncated = [], 0, False
        try:
            created = self.api.exec_create(container, wrapped, user=user, environment=environment,
                                           workdir="/home/learner")
            stream = self.api.exec_start(created["Id"], stream=True, demux=False)
            for chunk in stream:
                chunks.append(chunk)
                size += len(chunk)
                if size > max_output:
                    truncated = True
                    break
            stream.close()  # a generator: closing it drops the connection, so the command meets a broken pipe
            exit_code = self._exec_exit_code(created["Id"], wait=timeout + 5)
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error
        output = b"".join(chunks)[:max_output].decode("utf-8", "replace")
        if truncated:
            output += f"\n[output cut off after {max_output // 1024} KB]\n"
        return exit_code, output

    def exec_with_input(self, container: str, command: list[str], *, user: str, stdin: bytes, timeout: int = 10,
                        max_output: int = MAX_EXEC_OUTPUT) -> ExecResult:
        """Runs a command with `stdin` as its standard input (closed after it), keeping stdout and stderr apart.

        The command is killed after `timeout` seconds (coreutils' timeout inside), and output beyond `max_output` bytes
        is not read, so a command that floods or hangs costs this process a bounded buffer and a bounded wait.
        """
        wrapped = ["timeout", "--kill-after=2", str(timeout), *command]
        try:
            created = self.api.exec_create(container, wrapped, stdin=True, user=user, workdir="/home/learner")
            response = self.api.exec_start(created["Id"], socket=True)
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error
        sock = response._sock  # the hijacked connection: stdin one way, multiplexed stdout/stderr frames the other
        streams = {1: bytearray(), 2: bytearray()}
        truncated = False
        try:
            sock.settimeout(timeout + 5)
            try:
                sock.sendall(stdin)
                sock.shutdown(socket.SHUT_WR)  # the engine closes the command's stdin on our half-close
            except (BrokenPipeError, ConnectionResetError):
                pass  # the command ended without reading it all; its output and exit code say why
            truncated = _read_frames(sock, streams, max_output)
        except OSError as error:
            raise EngineUnavailable(f"exec in {container} did not answer: {error}") from error
        finally:
            sock.close()
        try:
            exit_code = self._exec_exit_code(created["Id"], wait=5)
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error
        return ExecResult(exit_code=exit_code, stdout=bytes(streams[1]), stderr=bytes(streams[2]), truncated=truncated)

    def _exec_exit_code(self, exec_id: str, *, wait: float) -> int:
        # The stream ends a moment before the engine marks the exec finished: short sleeps first, so a quick command
        # is not charged a whole 50 ms for that moment.
        deadline = time.monotonic() + wait
        pause = 0.002
        while True:
            state = self.api.exec_inspect(exec_id)
            if not state.get("Running") or time.monotonic() > deadline:
                return state.get("ExitCode") if state.get("ExitCode") is not None else -1
            time.sleep(pause)
            pause = min(0.05, pause * 2)

    def open_terminal(self, container: str, command: list[str], *, user: str) -> TerminalStream:
        """A docker exec with a TTY, returned as its raw socket so the caller can drive it without threads."""
        try:
            created = self.api.exec_create(container, command, tty=True, stdin=True, user=user,
                                           environment={"TERM": "xterm-256color", "LANG": "C.UTF-8"},
                                           workdir="/home/learner")
            stream = self.api.exec_start(created["Id"], tty=True, socket=True)
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error
        sock = stream._sock  # the hijacked HTTP connection: raw TTY bytes both ways
        sock.setblocking(False)
        return TerminalStream(exec_id=created["Id"], sock=sock)

    def resize_terminal(self, exec_id: str, *, rows: int, cols: int) -> None:
        try:
            self.api.exec_resize(exec_id, height=rows, width=cols)
        except (APIError, requests.exceptions.RequestException):
            log.debug("resize of exec %s failed; the terminal keeps its old size", exec_id)

    def stats(self, container: str, *, one_shot: bool = False) -> dict:
        """CPU percent and memory use right now (one sample, no streaming). Without one_shot the engine waits a second
        for a second sample to give cpu_percent; with it (API 1.41) it answers at once, cpu_percent is None and the
        caller computes CPU between two samples from cpu_usage_ns and system_cpu_ns."""
        try:
            raw = self.api.stats(container, stream=False, one_shot=one_shot)
        except (APIError, requests.exceptions.RequestException) as error:
            raise _translate(error) from error
        return stats_summary(raw)


def stats_summary(raw: dict) -> dict:
    cpu, pre = raw.get("cpu_stats", {}), raw.get("precpu_stats", {})
    cpu_delta = cpu.get("cpu_usage", {}).get("total_usage", 0) - pre.get("cpu_usage", {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len(cpu.get("cpu_usage", {}).get("percpu_usage") or []) or 1
    cpu_percent = (cpu_delta / system_delta) * online * 100 if system_delta > 0 and cpu_delta > 0 else 0.0
    memory = raw.get("memory_stats", {})
    cache = memory.get("stats", {}).get("cache", 0)
    used = max(0, memory.get("usage", 0) - cache)
    return {"cpu_percent": round(cpu_percent, 1) if pre.get("system_cpu_usage") else None,  # None: a one-shot sample
            "memory_bytes": used, "memory_limit_bytes": memory.get("limit", 0),
            "pids": raw.get("pids_stats", {}).get("current", 0),
            "cpu_usage_ns": cpu.get("cpu_usage", {}).get("total_usage", 0),
            "system_cpu_ns": cpu.get("system_cpu_usage", 0), "online_cpus": online}


def _nanoseconds(created: str) -> int:
    """Docker's RFC 3339 creation time ("…T21:50:01.12345Z", trailing zeros dropped) as nanoseconds, for ordering."""
    whole, _, fraction = created.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(whole + "+00:00").timestamp()
    return int(seconds) * 10**9 + int((fraction[:9] or "0").ljust(9, "0"))


def _state_from_inspect(attrs: dict) -> ContainerState:
    state = attrs.get("State", {})
    created = attrs.get("Created")
    try:
        created_at = datetime.fromisoformat(created[:26].rstrip("Z") + "+00:00") if created else None
    except ValueError:
        created_at = None
    return ContainerState(
        id=attrs["Id"], name=attrs.get("Name", "").lstrip("/"), labels=attrs.get("Config", {}).get("Labels") or {},
        status=state.get("Status", "dead"), oom_killed=bool(state.get("OOMKilled")),
        exit_code=int(state.get("ExitCode") or 0), created=created_at,
    )


def engine() -> DockerEngine:
    """The engine configured in settings.SANDCLOUD (one client per process)."""
    global _engine
    if _engine is None:
        from django.conf import settings

        config = settings.SANDCLOUD
        parent = ParentCgroup.from_settings(config["SANDBOXES_CGROUP"]) if config["SANDBOXES_CGROUP"]["name"] else None
        _engine = DockerEngine(url=config["DOCKER_URL"], timeout=config["DOCKER_TIMEOUT"], instance=config["INSTANCE"],
                               parent=parent)
    return _engine


_engine: DockerEngine | None = None
