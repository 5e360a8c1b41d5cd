"""What the learner's Docker proxy lets through: pure decisions on Docker Engine API requests, no I/O.

The proxy (not built yet) is a platform process that serves the Docker Engine API on a per-learner Unix socket,
mounted into the learner's workstation at /var/run/docker.sock; the socket a request arrives on is the learner's
identity. It forwards allowed calls to the real engine. This module is the part that decides, so it can be tested
without Docker and reused by the proxy:

- `route_classify(method, path)`: which endpoint a request is, with its object id; anything it does not know, and any
  id with traversal or encoding tricks, is refused before a byte reaches the engine. The proxy forwards
  `Route.forward_path()`, rebuilt from what was checked, never the raw path it received.
- `container_create_check(body, learner=...)`: the body of POST /containers/create, refused with a Docker-style message
  naming the option, or rewritten with the learner's labels, user, network, hardening and limits.
- `container_update_check`, `build_query_check`, `volume_create_check`, `auth_check`: the other request bodies and
  queries that carry resources, host paths or a server the engine would dial from the host's network.
- `object_check(route, ...)`: a learner acts only on their own containers, images, volumes and execs (plus the
  shared base images, read-only); lists are narrowed to theirs with a label filter, or for images (whose shared ones
  carry no owner label) by `images_visible` on the answer.
- `build_context_check(context, ...)`: a build context's size, and no link or device in it that leads off the context.

A refusal is a `ProxyRefusal`: its status and message are what the proxy answers, as the engine would
({"message": ...}), so the docker CLI prints "Error response from daemon: <message>". Another learner's object is
answered exactly as an object that does not exist (404 "No such container: ..."), so nobody learns what others have.
"""
from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import IO
from urllib.parse import parse_qs, quote, unquote, urlencode

from sandbox.policy import AWS_EDGE_HOST, LEARNER_OOM_SCORE_ADJ, UID_LABEL, Limits

# The engine here is 20.10, API 1.41; 1.24 is the oldest version it still serves. The CLI negotiates down to the
# engine's version through /_ping, so a newer one in a request comes from a hand-made client.
MIN_API_VERSION = (1, 24)
MAX_API_VERSION = (1, 41)

OWNER_LABEL = "sandcloud.owner"
# Labels under this prefix are the platform's word about an object (whose it is, what it is for): a learner who could
# set them could claim another learner's objects or make the reapers skip theirs.
PLATFORM_LABEL_PREFIX = "sandcloud."
KIND_LEARNER_CONTAINER = "learner-container"

# Docker's smallest memory limit; below it the engine refuses the container itself.
MIN_MEMORY_BYTES = 6 * 1024 * 1024
MB = 1024 * 1024


class ProxyRefusal(Exception):
    """A request the proxy answers itself, without the engine: `status` and `message` are its Docker-style answer."""

    def __init__(self, message: str, *, status: int = 403):
        super().__init__(message)
        self.message = message
        self.status = status

    def response_body(self) -> dict:
        return {"message": self.message}


def _refuse(option: str, field_name: str, why: str) -> ProxyRefusal:
    # The CLI flag first, because that is what the learner typed; the API field for those using an SDK.
    return ProxyRefusal(f"Sandcloud's Docker does not allow {option} ({field_name}): {why}")


def _no_such_container(name: str) -> ProxyRefusal:
    return ProxyRefusal(f"No such container: {name}", status=404)


def _no_such_image(name: str) -> ProxyRefusal:
    return ProxyRefusal(f"No such image: {name}", status=404)


# ---------------------------------------------------------------------------------------------------------------------
# Who is asking and what they may use
# ---------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DockerQuota:
    """What the learner may still take: read by the proxy (selectors) before each create, passed in here."""
    containers_left: int
    memory_mb_left: int
    # Per container: CPU shares a host core, so a sum over containers says little; the learner's parent cgroup caps
    # their total.
    cpus: float = 0.5
    pids: int = 256


@dataclass(frozen=True)
class LearnerScope:
    """One learner as the proxy sees them: identity, network, limits, and what they hold on the engine right now."""
    owner: str
    instance: str
    uid: int
    gid: int
    network: str
    quota: DockerQuota
    limits: Limits = field(default_factory=Limits)
    # Container id -> name (without Docker's leading slash), volumes by name, images by reference and by id.
    containers: Mapping[str, str] = field(default_factory=dict)
    volumes: frozenset[str] = frozenset()
    images: frozenset[str] = frozenset()
    shared_images: frozenset[str] = frozenset()
    # Registries (host[:port]/prefix) a learner may pull from besides the shared images: their private ECR.
    registries: tuple[str, ...] = ()
    runtimes: frozenset[str] = frozenset({"runc", "runsc"})
    # Debian's runsc is registered with --network=none: a container on it cannot join a network (MACHINE-NOTES).
    offline_runtimes: frozenset[str] = frozenset({"runsc"})
    cgroup_parent: str | None = None

    @property
    def labels(self) -> dict[str, str]:
        return {"sandcloud.instance": self.instance, OWNER_LABEL: self.owner,
                "sandcloud.kind": KIND_LEARNER_CONTAINER, UID_LABEL: str(self.uid)}

    @property
    def object_labels(self) -> dict[str, str]:
        """Labels for the learner's images and volumes: whose they are, for the list filters and the reapers."""
        return {"sandcloud.instance": self.instance, OWNER_LABEL: self.owner}

    @property
    def owner_filter(self) -> str:
        return f"{OWNER_LABEL}={self.owner}"


# ---------------------------------------------------------------------------------------------------------------------
# Routes
# ---------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """One classified request: `kind` names the endpoint (e.g. "container.logs"), `object_id` the object it is on."""
    method: str
    kind: str
    segments: tuple[str, ...]
    object_id: str | None = None
    # Where object_id sits in segments (an image reference is one segment here, slashes and all).
    id_index: int | None = None
    version: str | None = None
    query: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def with_object(self, object_id: str) -> "Route":
        """The same route on another id (e.g. a name resolved to the full id), its path rebuilt to match."""
        segments = list(self.segments)
        segments[self.id_index] = object_id
        return replace(self, object_id=object_id, segments=tuple(segments))

    def with_query(self, **params: str | Iterable[str] | None) -> "Route":
        query = dict(self.query)
        for key, value in params.items():
            if value is None:
                query.pop(key, None)
            else:
                query[key] = (value,) if isinstance(value, str) else tuple(value)
        return replace(self, query=query)

    def forward_path(self) -> str:
        """The path and query the proxy sends the engine: rebuilt from the checked parts, each one re-encoded."""
        # An image name keeps its slashes (the engine routes /images/{name:.*}/json); everything else is one segment.
        path = "/" + "/".join(quote(s, safe="/:@" if self.kind.startswith("image.") else ":@") for s in self.segments)
        if self.version:
            path = f"/v{self.version}{path}"
        if self.query:
            path += "?" + urlencode([(k, v) for k, values in self.query.items() for v in values])
        return path


_ID = "{id}"
_IMAGE = "{image}"
GET, POST, PUT, HEAD, DELETE = "GET", "POST", "PUT", "HEAD", "DELETE"

# (methods, path template, kind). `{id}` is one path segment; `{image}` is an image reference, which may span several
# (registry/repository:tag). Everything not listed here is refused: swarm, plugins, secrets, commit, save/load, the
# BuildKit session, system-wide disk usage and prune of images or build cache.
ROUTES: tuple[tuple[frozenset[str], tuple[str, ...], str], ...] = tuple(
    (frozenset(methods.split()), tuple(template.strip("/").split("/")), kind) for methods, template, kind in (
        ("GET HEAD", "/_ping", "system.ping"),
        ("GET", "/version", "system.version"),
        ("GET", "/info", "system.info"),
        ("GET", "/events", "system.events"),
        ("POST", "/auth", "system.auth"),
        ("GET", "/containers/json", "container.list"),
        ("POST", "/containers/create", "container.create"),
        ("POST", "/containers/prune", "container.prune"),
        ("GET", "/containers/{id}/json", "container.inspect"),
        ("GET", "/containers/{id}/logs", "container.logs"),
        ("POST", "/containers/{id}/attach", "container.attach"),
        ("GET", "/containers/{id}/attach/ws", "container.attach"),
        ("POST", "/containers/{id}/exec", "exec.create"),
        ("POST", "/containers/{id}/start", "container.start"),
        ("POST", "/containers/{id}/stop", "container.stop"),
        ("POST", "/containers/{id}/restart", "container.restart"),
        ("POST", "/containers/{id}/kill", "container.kill"),
        ("POST", "/containers/{id}/pause", "container.pause"),
        ("POST", "/containers/{id}/unpause", "container.unpause"),
        ("POST", "/containers/{id}/wait", "container.wait"),
        ("POST", "/containers/{id}/resize", "container.resize"),
        ("POST", "/containers/{id}/rename", "container.rename"),
        ("POST", "/containers/{id}/update", "container.update"),
        ("DELETE", "/containers/{id}", "container.remove"),
        ("GET", "/containers/{id}/stats", "container.stats"),
        ("GET", "/containers/{id}/top", "container.top"),
        ("GET", "/containers/{id}/changes", "container.changes"),
        ("GET", "/containers/{id}/export", "container.export"),
        ("HEAD", "/containers/{id}/archive", "container.archive_stat"),
        ("GET", "/containers/{id}/archive", "container.archive_get"),
        ("PUT", "/containers/{id}/archive", "container.archive_put"),
        ("POST", "/exec/{id}/start", "exec.start"),
        ("POST", "/exec/{id}/resize", "exec.resize"),
        ("GET", "/exec/{id}/json", "exec.inspect"),
        ("GET", "/images/json", "image.list"),
        ("POST", "/build", "image.build"),
        ("POST", "/images/create", "image.pull"),
        ("GET", "/images/{image}/json", "image.inspect"),
        ("GET", "/images/{image}/history", "image.history"),
        ("POST", "/images/{image}/push", "image.push"),
        ("POST", "/images/{image}/tag", "image.tag"),
        ("DELETE", "/images/{image}", "image.remove"),
        ("GET", "/volumes", "volume.list"),
        ("POST", "/volumes/create", "volume.create"),
        ("POST", "/volumes/prune", "volume.prune"),
        ("GET", "/volumes/{id}", "volume.inspect"),
        ("DELETE", "/volumes/{id}", "volume.remove"),
        ("GET", "/networks", "network.list"),
        ("POST", "/networks/create", "network.create"),
        ("POST", "/networks/prune", "network.prune"),
        ("GET", "/networks/{id}", "network.inspect"),
        ("DELETE", "/networks/{id}", "network.remove"),
        ("POST", "/networks/{id}/connect", "network.connect"),
        ("POST", "/networks/{id}/disconnect", "network.disconnect"),
    )
)

# Container, exec, volume and network ids and names: Docker's own name rule ([a-zA-Z0-9][a-zA-Z0-9_.-]*), which has
# no slash and cannot start with a dot; ".." inside is refused too, so no id can read as a path step anywhere.
_OBJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
# A reference as the distribution spec writes it: [host[:port]/]component(/component)*[:tag][@sha256:digest], or an
# image id. Components are lowercase with single separators, so "..", "%" and "\" never match.
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?/)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REF = re.compile(
    rf"(?:sha256:[0-9a-f]{{1,64}}"
    rf"|{_DOMAIN}{_COMPONENT}(?:/{_COMPONENT})*(?::\w[\w.-]{{0,127}})?(?:@sha256:[0-9a-f]{{64}})?)")
_VERSION_PREFIX = re.compile(r"v(\d+)\.(\d+)")
# Bytes allowed raw in a request path: RFC 3986's unreserved and sub-delims, ':' and '@', and '%' for escapes.
_PATH_CHARS = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@%/-]*")


def _unknown_endpoint(method: str, path: str) -> ProxyRefusal:
    return ProxyRefusal(f"Sandcloud's Docker does not know the endpoint {method} {path}, so it did not reach the "
                        f"engine. Sandcloud runs containers, images, volumes and builds; not swarm, plugins or "
                        f"system-wide operations.", status=404)


def _bad_id(text: str) -> ProxyRefusal:
    return ProxyRefusal(f"invalid reference in the request path: {text!r} (a name may not contain '/', '..', "
                        f"encoded characters or control characters)", status=400)


def _decode_segment(raw: str) -> str:
    try:
        decoded = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise _bad_id(raw) from None
    # A '%' left after one decoding is a double-encoded byte: the engine or a router between could decode it again
    # into something this check never saw.
    if "%" in decoded or "/" in decoded or "\\" in decoded or any(ord(c) < 0x20 or ord(c) == 0x7F for c in decoded):
        raise _bad_id(raw)
    if decoded in (".", "..") or ".." in decoded:
        raise _bad_id(raw)
    return decoded


def route_classify(method: str, path: str) -> Route:
    """The endpoint a Docker Engine API request is for, or ProxyRefusal; `path` may carry a query string."""
    method = method.upper()
    raw_path, _, raw_query = path.partition("?")
    if not raw_path.startswith("/") or "#" in path or not _PATH_CHARS.fullmatch(raw_path):
        raise _bad_id(raw_path)
    raw_segments = raw_path[1:].split("/")
    version = None
    if raw_segments and (match := _VERSION_PREFIX.fullmatch(raw_segments[0])):
        numbers = (int(match[1]), int(match[2]))
        if numbers > MAX_API_VERSION:
            # Docker's own words for a client newer than the engine.
            raise ProxyRefusal(f"client version {numbers[0]}.{numbers[1]} is too new. Maximum supported API version "
                               f"is {MAX_API_VERSION[0]}.{MAX_API_VERSION[1]}", status=400)
        if numbers < MIN_API_VERSION:
            raise ProxyRefusal(f"client version {numbers[0]}.{numbers[1]} is too old. Minimum supported API version "
                               f"is {MIN_API_VERSION[0]}.{MIN_API_VERSION[1]}, please upgrade your client to a "
                               f"newer version", status=400)
        version = f"{numbers[0]}.{numbers[1]}"
        raw_segments = raw_segments[1:]
    if raw_segments and raw_segments[-1] == "" and len(raw_segments) > 1:
        raw_segments = raw_segments[:-1]  # one trailing slash, as the engine's router tolerates
    if any(s == "" for s in raw_segments) or not raw_segments:
        raise _unknown_endpoint(method, raw_path)
    segments = tuple(_decode_segment(s) for s in raw_segments)
    try:
        query = {k: tuple(v) for k, v in parse_qs(raw_query, keep_blank_values=True, errors="strict").items()}
    except (UnicodeDecodeError, ValueError):
        raise ProxyRefusal("malformed query string", status=400) from None
    if any("\x00" in v for values in query.values() for v in values):
        raise ProxyRefusal("malformed query string", status=400)

    for methods, template, kind in ROUTES:
        object_id = _match(template, segments)
        if object_id is False or method not in methods:
            continue
        id_index = None
        if object_id is not None:
            pattern = _IMAGE_REF if _IMAGE in template else _OBJECT_ID
            if not pattern.fullmatch(object_id):
                raise _bad_id(object_id)
            id_index = template.index(_IMAGE) if _IMAGE in template else template.index(_ID)
            segments = (*template[:id_index], object_id, *template[id_index + 1:])
        return Route(method=method, kind=kind, segments=segments, object_id=object_id, id_index=id_index,
                     version=version, query=query)
    raise _unknown_endpoint(method, raw_path)


def _match(template: tuple[str, ...], segments: tuple[str, ...]) -> str | None | bool:
    """The object id the template captures (None if it has none), or False when the path is not this template."""
    if _IMAGE in template:
        at = template.index(_IMAGE)
        after = template[at + 1:]
        if len(segments) < len(template) or segments[:at] != template[:at]:
            return False
        if after and segments[len(segments) - len(after):] != after:
            return False
        return "/".join(segments[at:len(segments) - len(after)])
    if len(segments) != len(template):
        return False
    captured = None
    for want, got in zip(template, segments):
        if want == _ID:
            captured = got
        elif want != got:
            return False
    return captured


# ---------------------------------------------------------------------------------------------------------------------
# POST /containers/create
# ---------------------------------------------------------------------------------------------------------------------

# Top-level members of the create body (ContainerConfig, plus HostConfig and NetworkingConfig) in API 1.41 that only
# shape the learner's own container. Healthcheck and OnBuild run inside it; the rest is its own metadata.
_CONFIG_PASS = frozenset({
    "Hostname", "Domainname", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts", "Tty", "OpenStdin",
    "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "WorkingDir", "Entrypoint", "NetworkDisabled",
    "MacAddress", "OnBuild", "StopSignal", "StopTimeout", "Shell",
    # Handled below.
    "User", "Volumes", "Labels", "HostConfig", "NetworkingConfig",
})

# HostConfig members that reach nothing beyond the container and the learner's own quota, passed as sent. Console and
# restart settings, /etc/hosts entries, DNS search domains, CPU pinning within the learner's cgroup, memory
# reservations below the limit: the hard limits and the cgroup parent bound them all.
_HOST_PASS = frozenset({
    "AutoRemove", "ConsoleSize", "RestartPolicy", "ExtraHosts", "DnsSearch", "CpusetCpus",
    "CpusetMems", "MemoryReservation", "MemorySwappiness", "Init", "Isolation",
})
# HostConfig members rewritten or checked one by one below. A member in neither set is refused: one this module does
# not know may be one a newer engine gives power to, and the docker CLI of the engine's own API version never sends it.
_HOST_CHECKED = frozenset({
    "Binds", "Mounts", "VolumesFrom", "VolumeDriver", "Tmpfs", "Links", "NetworkMode", "PortBindings",
    "PublishAllPorts", "Privileged", "PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode", "Cgroup",
    "CapAdd", "CapDrop", "SecurityOpt", "Sysctls", "Runtime", "CgroupParent", "OomKillDisable", "OomScoreAdj",
    "Devices", "DeviceRequests", "DeviceCgroupRules", "Memory", "MemorySwap", "KernelMemory", "KernelMemoryTCP",
    "NanoCpus", "CpuShares", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpuCount",
    "CpuPercent", "PidsLimit", "Ulimits", "ShmSize", "LogConfig", "ReadonlyRootfs", "Dns", "DnsOptions",
    "GroupAdd", "MaskedPaths", "ReadonlyPaths", "StorageOpt", "BlkioWeight", "BlkioWeightDevice",
    "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "IOMaximumIOps",
    "IOMaximumBandwidth",
    # --cidfile: the client writes that file itself; a host path is no business of the engine's, so it is dropped.
    "ContainerIDFile",
})

# Docker's default CPU weight: more would let one learner's containers take CPU from others under the same parent.
DEFAULT_CPU_SHARES = 1024
_TMPFS_OPTIONS = frozenset({"rw", "ro", "exec", "noexec", "nosuid", "nodev", "suid", "dev", "size", "mode", "uid",
                            "gid", "nr_inodes", "noatime", "relatime", "nodiratime"})
_PORT_HELP = ("a published port would open the host to the network. Your containers are reachable from your "
              "workstation by name on your private network, e.g. `curl http://web:8000` for a container named web; "
              "to open one in your browser, use Ports on your sandbox's page.")


def _unset(value) -> bool:
    # The CLI sends most members even when unused, as zero values: those are no request at all.
    return value is None or value is False or value == 0 or value == "" or value == [] or value == {}


def _owned_container(ref: str, containers: Mapping[str, str]) -> str | None:
    """The full id of the learner's container `ref` names (full id, name or unique id prefix), else None."""
    ref = ref.removeprefix("/")
    if ref in containers:
        return ref
    for container_id, name in containers.items():
        if name.removeprefix("/") == ref:
            return container_id
    matches = [container_id for container_id in containers if container_id.startswith(ref)] if ref else []
    return matches[0] if len(matches) == 1 else None


def normalise_image(ref: str) -> str:
    """An image reference the way the engine stores it: default registry and library spelled out, tag defaulted."""
    if re.fullmatch(r"(sha256:)?[0-9a-f]{12,64}", ref):
        return ref
    name, at, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" not in last and not at:
        name += ":latest"
    first = name.split("/", 1)[0]
    if "/" not in name or not ("." in first or ":" in first or first == "localhost"):
        name = "docker.io/" + (name if "/" in name else "library/" + name)
    return name + at + digest


def image_in(ref: str, images: Iterable[str]) -> bool:
    wanted = normalise_image(ref)
    for image in images:
        if normalise_image(image) == wanted:
            return True
        # An id prefix, as `docker run 3f2a...` or `docker rmi 3f2a` takes it.
        bare = image.removeprefix("sha256:")
        if re.fullmatch(r"[0-9a-f]{64}", bare) and len(ref.removeprefix("sha256:")) >= 4 \
                and bare.startswith(ref.removeprefix("sha256:")):
            return True
    return False


def _mode_target(value: str, option: str, field_name: str, containers: Mapping[str, str], allowed: set[str]) -> str:
    """A namespace mode (pid, ipc, network): an allowed value, or container:<one of the learner's own>, rewritten to
    its full id so the engine cannot resolve the name to somebody else's."""
    if value in allowed:
        return value
    if value.startswith("container:"):
        target = _owned_container(value.removeprefix("container:"), containers)
        if target is not None:
            return f"container:{target}"
        raise _refuse(option, field_name, f"{value.removeprefix('container:')} is not one of your containers.")
    raise _refuse(option, field_name, f"'{value}' would share the host's or another learner's namespace; your "
                                      f"containers get their own.")


def _check_volume_driver(driver: str | None, options: Mapping | None, option: str, field_name: str) -> None:
    if driver not in (None, "", "local"):
        raise _refuse(option, field_name, f"volume driver '{driver}' is not available; volumes use the local driver.")
    if options:
        # The local driver's device/o/type options mount any host path or device (o=bind, device=/etc).
        raise _refuse(option, field_name, "volume driver options can mount host paths or devices.")


def _memory_bytes(value: int, learner: LearnerScope) -> int:
    left = learner.quota.memory_mb_left * MB
    default = min(learner.limits.memory_mb * MB, left)
    if _unset(value):
        if default < MIN_MEMORY_BYTES:
            raise ProxyRefusal(f"Your containers already use all your memory quota ({learner.quota.memory_mb_left} MB "
                               f"left). Remove a container (docker rm) before creating another.")
        return default
    if not isinstance(value, int) or value < 0:
        raise _refuse("--memory", "HostConfig.Memory", "it must be a number of bytes.")
    if value > left:
        raise _refuse(f"--memory {value // MB}m", "HostConfig.Memory",
                      f"you have {learner.quota.memory_mb_left} MB of memory quota left for containers.")
    return value


def _resources(host: dict, learner: LearnerScope, *, updating: bool = False) -> dict:
    """The checked resource members (create and update share them): limits inside the learner's quota."""
    out: dict = {}
    for name, flag in (("KernelMemory", "--kernel-memory"), ("KernelMemoryTCP", "--kernel-memory-tcp"),
                       ("CpuRealtimePeriod", "--cpu-rt-period"), ("CpuRealtimeRuntime", "--cpu-rt-runtime"),
                       ("CpuPeriod", "--cpu-period"), ("CpuQuota", "--cpu-quota"), ("CpuCount", "--cpu-count"),
                       ("CpuPercent", "--cpu-percent"), ("IOMaximumIOps", "--io-maxiops"),
                       ("IOMaximumBandwidth", "--io-maxbandwidth")):
        if not _unset(host.get(name)):
            raise _refuse(flag, f"HostConfig.{name}", "CPU and memory are set with --cpus and --memory, "
                                                      "inside your quota.")
    for name, flag in (("BlkioWeightDevice", "--blkio-weight-device"), ("BlkioDeviceReadBps", "--device-read-bps"),
                       ("BlkioDeviceWriteBps", "--device-write-bps"), ("BlkioDeviceReadIOps", "--device-read-iops"),
                       ("BlkioDeviceWriteIOps", "--device-write-iops")):
        if not _unset(host.get(name)):
            raise _refuse(flag, f"HostConfig.{name}", "it names the host's block devices.")
    if not _unset(host.get("BlkioWeight")) and host["BlkioWeight"] > 500:
        raise _refuse("--blkio-weight", "HostConfig.BlkioWeight", "more than the default weight (500) would take "
                                                                  "disk time from other learners.")
    if not _unset(host.get("CpuShares")) and host["CpuShares"] > DEFAULT_CPU_SHARES:
        raise _refuse("--cpu-shares", "HostConfig.CpuShares", f"more than the default weight ({DEFAULT_CPU_SHARES}) "
                                                              f"would take CPU from other learners.")
    if host.get("OomKillDisable"):
        raise _refuse("--oom-kill-disable", "HostConfig.OomKillDisable",
                      "a container the kernel may not kill when memory runs out would make it kill the platform's "
                      "processes or other learners' instead.")
    if updating and "Memory" not in host and "NanoCpus" not in host and "PidsLimit" not in host:
        return out

    memory = _memory_bytes(host.get("Memory"), learner)
    swap = host.get("MemorySwap")
    if not _unset(swap) and swap != memory:
        raise _refuse("--memory-swap", "HostConfig.MemorySwap", "containers have no swap: their memory limit is all "
                                                                "the memory they get.")
    out.update(Memory=memory, MemorySwap=memory)

    cpus = learner.quota.cpus
    nano = host.get("NanoCpus")
    if not _unset(nano):
        if not isinstance(nano, int) or nano < 0 or nano > int(cpus * 1e9):
            raise _refuse(f"--cpus {nano / 1e9 if isinstance(nano, int) else nano}", "HostConfig.NanoCpus",
                          f"a container may have at most {cpus:g} CPU.")
        out["NanoCpus"] = nano
    else:
        out["NanoCpus"] = int(min(cpus, learner.limits.cpus) * 1e9)

    pids = host.get("PidsLimit")
    if pids is None or pids in (0, -1):
        out["PidsLimit"] = min(learner.quota.pids, learner.limits.pids)
    elif not isinstance(pids, int) or pids < 0 or pids > learner.quota.pids:
        raise _refuse(f"--pids-limit {pids}", "HostConfig.PidsLimit",
                      f"a container may run at most {learner.quota.pids} processes.")
    else:
        out["PidsLimit"] = pids
    return out


def _ulimits(requested, limits: Limits, pids: int) -> list[dict]:
    platform = {"nofile": limits.nofile, "nproc": pids, "core": 0}
    for ulimit in requested or []:
        name = ulimit.get("Name")
        values = (ulimit.get("Soft", 0), ulimit.get("Hard", 0))
        # -1 is "unlimited" to the engine, so it is no lowering.
        if name not in platform or min(values) < 0 or max(values) > platform[name]:
            ours = ", ".join(f"{k}={v}" for k, v in platform.items())
            raise _refuse(f"--ulimit {name}", "HostConfig.Ulimits", f"limits may only be lowered below Sandcloud's "
                                                                    f"({ours}).")
        platform[name] = min(ulimit.get("Hard", 0), platform[name])
    return [{"Name": name, "Soft": value, "Hard": value} for name, value in platform.items()]


def _tmpfs(requested: Mapping[str, str] | None, learner: LearnerScope) -> dict[str, str]:
    mounts = {}
    for target, options in (requested or {}).items():
        opts = [o for o in str(options).split(",") if o]
        for opt in opts:
            if opt.split("=", 1)[0] not in _TMPFS_OPTIONS:
                raise _refuse(f"--tmpfs {target}:{options}", "HostConfig.Tmpfs", f"mount option '{opt}' is not "
                                                                                 f"available.")
        opts = [o for o in opts if o not in ("suid", "dev")]
        if not any(o.startswith("size=") for o in opts):
            opts.append(f"size={learner.limits.tmp_mb}m")
        # tmpfs pages are charged to the container's memory limit, so its size only has to be finite.
        mounts[target] = ",".join([*opts, "nosuid", "nodev"])
    # The root filesystem is read-only (see container_create_check); these are where a program may write.
    mounts.setdefault("/tmp", f"rw,nosuid,nodev,size={learner.limits.tmp_mb}m,mode=1777")
    mounts.setdefault("/run", "rw,nosuid,nodev,noexec,size=1m,mode=0755")
    return mounts


def _volume_source(source: str, learner: LearnerScope, option: str, field_name: str) -> None:
    if source.startswith("/") or source.startswith(".") or "\\" in source:
        raise _refuse(option, field_name, f"'{source}' is a path on the host, and no host path is mounted into "
                                          f"containers. Use a volume (docker volume create) or docker cp instead.")
    if source not in learner.volumes:
        raise _refuse(option, field_name, f"'{source}' is not one of your volumes: create it first with "
                                          f"`docker volume create {source}`.")


def _mounts(host: dict, learner: LearnerScope, tmpfs: dict[str, str]) -> tuple[list[str], list[dict]]:
    binds = []
    for bind in host.get("Binds") or []:
        source, _, rest = str(bind).partition(":")
        if not rest:
            raise _refuse(f"-v {bind}", "HostConfig.Binds", "a volume needs a name and a path in the container.")
        _volume_source(source, learner, f"-v {bind}", "HostConfig.Binds")
        binds.append(bind)
    mounts = []
    for mount in host.get("Mounts") or []:
        kind = mount.get("Type")
        spec = f"--mount type={kind},source={mount.get('Source', '')},target={mount.get('Target', '')}"
        if kind == "bind" or kind == "npipe":
            raise _refuse(spec, "HostConfig.Mounts", "no host path is mounted into containers. Use a volume "
                                                     "(docker volume create) or docker cp instead.")
        if kind == "volume":
            driver = (mount.get("VolumeOptions") or {}).get("DriverConfig") or {}
            _check_volume_driver(driver.get("Name"), driver.get("Options"), spec, "HostConfig.Mounts")
            if mount.get("Source"):
                _volume_source(mount["Source"], learner, spec, "HostConfig.Mounts")
                mounts.append(mount)
            else:
                # An anonymous volume would be an unnamed directory on the host's disk: a sized tmpfs instead.
                tmpfs.setdefault(mount.get("Target", ""), f"rw,nosuid,nodev,size={learner.limits.tmp_mb}m")
        elif kind == "tmpfs":
            size = (mount.get("TmpfsOptions") or {}).get("SizeBytes") or learner.limits.tmp_mb * MB
            mounts.append({**mount, "TmpfsOptions": {**(mount.get("TmpfsOptions") or {}), "SizeBytes": size}})
        else:
            raise _refuse(spec, "HostConfig.Mounts", f"mount type '{kind}' is not available.")
    return binds, mounts


def container_create_check(body: dict, *, learner: LearnerScope) -> dict:
    """The body to forward for POST /containers/create, rewritten to the learner's scope, or ProxyRefusal.

    Decisions, each for the learner's own containers as opposed to their sandbox:
    - Every process runs as the learner's own uid (not the image's user, not root): the uid is how the host's nproc
      limit and the uid label keep learners apart (sandbox/policy.py), and root in a container is root on the host
      the moment anything escapes. So no capability can be added: as an ordinary uid under no-new-privileges it could
      never take effect (check_capabilities in sandbox/policy.py says why).
    - The root filesystem is read-only. A writable one lives on the host's disk with no size cap here (overlay2
      without project quotas, so StorageOpt size does not work), and as the learner's uid little of it is writable
      anyway. /tmp and /run are tmpfs (charged to the container's memory limit), and named volumes hold data.
    - One network: the learner's private one (or none). Names of their other containers resolve on it, which is how
      they reach a service; published host ports are refused with that advice.
    - Anything that would share the host's namespaces, devices or files, or change the kernel's view of the
      container (sysctls, masked paths, seccomp, AppArmor), is refused with the option named, never silently dropped:
      a learner whose --privileged vanished would chase a different error later.
    """
    try:
        return _container_create_check(body, learner=learner)
    except (TypeError, AttributeError, ValueError, KeyError) as error:
        # A member of the wrong JSON type: the engine would refuse it too, and this check must not guess.
        raise ProxyRefusal(f"malformed container configuration: {error}", status=400) from None


def _container_create_check(body: dict, *, learner: LearnerScope) -> dict:
    if not isinstance(body, dict):
        raise ProxyRefusal("the request body must be a JSON object", status=400)
    if learner.quota.containers_left <= 0:
        raise ProxyRefusal("You already have as many containers as Sandcloud allows. Remove one (docker rm) before "
                           "creating another.")
    for key in body:
        if key not in _CONFIG_PASS:
            raise _refuse(key, key, "this option is unknown to Sandcloud's Docker.")
    host = body.get("HostConfig") or {}
    if not isinstance(host, dict):
        raise ProxyRefusal("HostConfig must be a JSON object", status=400)
    for key in host:
        if key not in _HOST_PASS and key not in _HOST_CHECKED:
            raise _refuse(key, f"HostConfig.{key}", "this option is unknown to Sandcloud's Docker.")

    image = body.get("Image") or ""
    if not _IMAGE_REF.fullmatch(image) or not (image_in(image, learner.images) or
                                               image_in(image, learner.shared_images)):
        # The CLI pulls on a 404 and tries again, which is the path through the pull policy.
        raise _no_such_image(image)

    for name, flag in (("Privileged", "--privileged"), ("PublishAllPorts", "--publish-all")):
        if host.get(name):
            why = _PORT_HELP if name == "PublishAllPorts" else "a privileged container has every device and " \
                                                               "capability of the host."
            raise _refuse(flag, f"HostConfig.{name}", why)
    if not _unset(host.get("PortBindings")):
        ports = ", ".join(sorted(host["PortBindings"]))
        raise _refuse(f"--publish ({ports})", "HostConfig.PortBindings", _PORT_HELP)
    for name, flag, why in (
            ("Devices", "--device", "host devices are not available to containers."),
            ("DeviceRequests", "--gpus", "host devices are not available to containers."),
            ("DeviceCgroupRules", "--device-cgroup-rule", "host devices are not available to containers."),
            ("CapAdd", "--cap-add", "processes in your containers run as your own user under no-new-privileges, "
                                    "so an added capability could never take effect."),
            ("Sysctls", "--sysctl", "kernel parameters are set by Sandcloud."),
            ("CgroupParent", "--cgroup-parent", "Sandcloud places your containers in your own cgroup, which holds "
                                                "your quota."),
            ("GroupAdd", "--group-add", "processes run as your own user and group."),
            ("StorageOpt", "--storage-opt", "storage options are set by Sandcloud."),
            ("Dns", "--dns", "name lookups answer your own containers' names only (there is no internet access)."),
            ("Cgroup", "--cgroup", "your containers get their own cgroup."),
    ):
        if not _unset(host.get(name)):
            raise _refuse(flag, f"HostConfig.{name}", why)
    for name in ("MaskedPaths", "ReadonlyPaths"):
        # Unlike the others, an empty list is a request: it unmasks /proc/kcore and the like
        # (--security-opt systempaths=unconfined sends exactly that).
        if host.get(name) is not None:
            raise _refuse("--security-opt systempaths=unconfined", f"HostConfig.{name}",
                          "the kernel files Docker hides stay hidden.")
    for option in host.get("SecurityOpt") or []:
        if str(option).replace("=", ":") not in ("no-new-privileges", "no-new-privileges:true"):
            raise _refuse(f"--security-opt {option}", "HostConfig.SecurityOpt",
                          "seccomp, AppArmor and other security options are Sandcloud's; your containers run "
                          "under Docker's default profiles with no-new-privileges.")
    containers = learner.containers
    modes: dict[str, str] = {}
    for name, flag, allowed in (("PidMode", "--pid", {""}), ("IpcMode", "--ipc", {"", "private", "none", "shareable"}),
                                ("UTSMode", "--uts", {""}), ("UsernsMode", "--userns", {""}),
                                ("CgroupnsMode", "--cgroupns", {"", "private"})):
        value = host.get(name) or ""
        if name in ("PidMode", "IpcMode"):
            modes[name] = _mode_target(value, f"{flag} {value}", f"HostConfig.{name}", containers, allowed)
        elif value not in allowed:
            raise _refuse(f"{flag} {value}", f"HostConfig.{name}", f"'{value}' would share the host's namespace; "
                                                                   f"your containers get their own.")
    for entry in host.get("VolumesFrom") or []:
        source = str(entry).split(":", 1)[0]
        if _owned_container(source, containers) is None:
            raise _refuse(f"--volumes-from {entry}", "HostConfig.VolumesFrom", f"{source} is not one of your "
                                                                               f"containers.")
    for entry in host.get("Links") or []:
        source = str(entry).split(":", 1)[0].removeprefix("/")
        if _owned_container(source, containers) is None:
            raise _refuse(f"--link {entry}", "HostConfig.Links", f"{source} is not one of your containers.")
    _check_volume_driver(host.get("VolumeDriver"), None, f"--volume-driver {host.get('VolumeDriver')}",
                         "HostConfig.VolumeDriver")
    runtime = host.get("Runtime") or "runc"
    if runtime not in learner.runtimes:
        raise _refuse(f"--runtime {runtime}", "HostConfig.Runtime",
                      f"containers run on {' or '.join(sorted(learner.runtimes))}.")
    oom = host.get("OomScoreAdj")
    if not _unset(oom) and oom != LEARNER_OOM_SCORE_ADJ:
        raise _refuse(f"--oom-score-adj {oom}", "HostConfig.OomScoreAdj",
                      "your containers' processes are the first the kernel stops when the host runs out of memory.")
    log = host.get("LogConfig") or {}
    if log.get("Type") not in (None, "", "json-file"):
        raise _refuse(f"--log-driver {log['Type']}", "HostConfig.LogConfig", "logs stay on the host where "
                                                                             "`docker logs` reads them.")

    network, endpoint = _network(body, host, learner, runtime)
    tmpfs = _tmpfs(host.get("Tmpfs"), learner)
    # An anonymous volume (`-v /data`, or a Dockerfile's VOLUME the proxy lists from the image) would be an unnamed
    # directory on the host's disk: a sized tmpfs instead.
    for target in body.get("Volumes") or {}:
        tmpfs.setdefault(target, f"rw,nosuid,nodev,size={learner.limits.tmp_mb}m")
    binds, mounts = _mounts(host, learner, tmpfs)
    resources = _resources(host, learner)
    shm = host.get("ShmSize")
    if not _unset(shm) and shm > resources["Memory"]:
        raise _refuse("--shm-size", "HostConfig.ShmSize", "/dev/shm is memory, so it cannot be larger than the "
                                                          "container's memory limit.")
    for key, value in (body.get("Labels") or {}).items():
        if key.startswith(PLATFORM_LABEL_PREFIX):
            raise _refuse(f"--label {key}={value}", "Labels", f"labels starting with '{PLATFORM_LABEL_PREFIX}' are "
                                                              f"Sandcloud's own.")

    hardened_host = {
        **{k: v for k, v in host.items() if k in _HOST_PASS},
        "Binds": binds or None,
        "Mounts": mounts or None,
        "Tmpfs": tmpfs,
        "VolumesFrom": [_volumes_from(v, containers) for v in host.get("VolumesFrom") or []] or None,
        "Links": [_link(v, containers) for v in host.get("Links") or []] or None,
        "NetworkMode": network,
        "PidMode": modes["PidMode"] or None,
        "IpcMode": modes["IpcMode"] or "private",
        "CgroupnsMode": "private",
        "Privileged": False,
        "PublishAllPorts": False,
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges:true"],
        "ReadonlyRootfs": True,
        "Runtime": runtime,
        "OomScoreAdj": LEARNER_OOM_SCORE_ADJ,
        "OomKillDisable": False,
        **resources,
        "MemorySwappiness": 0,
        "CpuShares": host.get("CpuShares") or None,
        "BlkioWeight": host.get("BlkioWeight") or None,
        "Ulimits": _ulimits(host.get("Ulimits"), learner.limits, resources["PidsLimit"]),
        "ShmSize": shm or learner.limits.tmp_mb * MB,
        # Learner log options are replaced, not merged: the caps are what keeps `docker logs` off the host's disk.
        "LogConfig": {"Type": "json-file", "Config": {"max-size": learner.limits.log_max_size,
                                                      "max-file": str(learner.limits.log_max_files)}},
        "CgroupParent": learner.cgroup_parent,
    }
    if network != "none":
        # As for sandboxes (sandbox/policy.py): no forwarding of names to the host's resolvers, no IPv6, the edge.
        hardened_host.update(Dns=["127.0.0.1"], DnsOptions=["timeout:1", "attempts:1"],
                             Sysctls={"net.ipv6.conf.all.disable_ipv6": "1",
                                      "net.ipv6.conf.default.disable_ipv6": "1"},
                             ExtraHosts=[*(host.get("ExtraHosts") or []), f"{AWS_EDGE_HOST}:host-gateway"])
    rewritten = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig", "Volumes")}
    rewritten.update(
        User=f"{learner.uid}:{learner.gid}",
        Labels={**(body.get("Labels") or {}), **learner.labels},
        HostConfig={k: v for k, v in hardened_host.items() if v is not None},
    )
    if endpoint is not None:
        rewritten["NetworkingConfig"] = {"EndpointsConfig": {learner.network: endpoint}}
    return rewritten


def _link(entry: str, containers: Mapping[str, str]) -> str:
    source, _, alias = str(entry).partition(":")
    return f"{containers[_owned_container(source, containers)]}:{alias or source.removeprefix('/')}"


def _volumes_from(entry: str, containers: Mapping[str, str]) -> str:
    source, colon, mode = str(entry).partition(":")
    return _owned_container(source, containers) + colon + mode


def _network(body: dict, host: dict, learner: LearnerScope, runtime: str) -> tuple[str, dict | None]:
    """The NetworkMode to forward and the endpoint settings on the learner's network (None when not on it)."""
    mode = host.get("NetworkMode") or "default"
    endpoints = ((body.get("NetworkingConfig") or {}).get("EndpointsConfig")) or {}
    for name in endpoints:
        if name != learner.network and name != mode:
            raise _refuse(f"--network {name}", "NetworkingConfig.EndpointsConfig",
                          f"your containers join your private network ({learner.network}) only.")
    if mode == "none" or mode == "host" or mode.startswith("container:"):
        if mode == "host":
            raise _refuse("--network host", "HostConfig.NetworkMode", "the host's network is not available; your "
                                                                      "containers join your private network.")
        if mode.startswith("container:"):
            return _mode_target(mode, f"--network {mode}", "HostConfig.NetworkMode", learner.containers, set()), None
        return "none", None
    if mode not in ("default", learner.network):
        raise _refuse(f"--network {mode}", "HostConfig.NetworkMode",
                      f"your containers join your private network ({learner.network}) only.")
    if runtime in learner.offline_runtimes:
        return "none", None
    requested = endpoints.get(learner.network) or endpoints.get(mode) or {}
    endpoint = {}
    for key, value in requested.items():
        if key in ("Aliases", "IPAMConfig", "MacAddress"):
            endpoint[key] = value
        elif key == "Links" and value:
            raise _refuse("--link", "NetworkingConfig.EndpointsConfig.Links", "use your containers' names instead.")
    return learner.network, endpoint


def container_update_check(body: dict, *, learner: LearnerScope) -> dict:
    """POST /containers/{id}/update: the same resource limits as at create, and nothing else but the restart policy."""
    if not isinstance(body, dict):
        raise ProxyRefusal("the request body must be a JSON object", status=400)
    for key in body:
        if key not in _HOST_CHECKED and key not in ("RestartPolicy", "CpusetCpus", "CpusetMems", "MemoryReservation",
                                                    "MemorySwappiness"):
            raise _refuse(key, key, "this option is unknown to Sandcloud's Docker.")
        if key not in ("RestartPolicy", "CpusetCpus", "CpusetMems", "MemoryReservation", "Memory", "MemorySwap",
                       "NanoCpus", "PidsLimit", "CpuShares", "BlkioWeight", "OomKillDisable", "MemorySwappiness") \
                and not _unset(body[key]):
            raise _refuse(key, key, "only memory, CPU, pids and the restart policy can be updated.")
    resources = _resources(body, learner, updating=True)
    return {**{k: v for k, v in body.items() if not _unset(v)}, **resources}


# ---------------------------------------------------------------------------------------------------------------------
# Scope of every other endpoint
# ---------------------------------------------------------------------------------------------------------------------

CONTAINER_KINDS = frozenset({
    "container.inspect", "container.logs", "container.attach", "exec.create", "container.start", "container.stop",
    "container.restart", "container.kill", "container.pause", "container.unpause", "container.wait",
    "container.resize", "container.rename", "container.update", "container.remove", "container.stats",
    "container.top", "container.changes", "container.export", "container.archive_stat", "container.archive_get",
    "container.archive_put",
})
_OPEN_KINDS = frozenset({"system.ping", "system.version", "system.info", "system.auth", "container.create",
                         "image.build", "volume.create"})
_LABELLED_LISTS = frozenset({"container.list", "container.prune", "volume.list", "volume.prune", "network.list",
                             "system.events"})


def owner_filters(filters: str | None, learner_filter: str) -> str:
    """A list's `filters` with the owner label added: Docker ANDs label filters, so the learner can only narrow."""
    try:
        parsed = json.loads(filters) if filters else {}
    except ValueError:
        raise ProxyRefusal("invalid filter: the filters parameter must be JSON", status=400) from None
    if not isinstance(parsed, dict):
        raise ProxyRefusal("invalid filter: the filters parameter must be a JSON object", status=400)
    normalised: dict[str, list[str]] = {}
    for key, values in parsed.items():
        # The engine takes both {"label": ["a=b"]} and the older {"label": {"a=b": true}}.
        items = [k for k, on in values.items() if on] if isinstance(values, dict) else list(values or [])
        normalised[str(key)] = [str(v) for v in items]
    normalised["label"] = [*normalised.get("label", []), learner_filter]
    return json.dumps(normalised, separators=(",", ":"))


def object_check(route: Route, *, learner: LearnerScope, owned_containers: Mapping[str, str],
                 owned_images: Iterable[str], shared_images: Iterable[str], owned_volumes: Iterable[str] = (),
                 owned_execs: Iterable[str] = ()) -> Route:
    """The route to forward when the learner may act on its object, else ProxyRefusal.

    Names and id prefixes are resolved to the full id among the learner's own containers and forwarded as that id:
    the engine resolves a name before a prefix, so a string that is a prefix of the learner's container and the name
    of someone else's would otherwise reach theirs.
    """
    kind = route.kind
    owned_images, shared_images = tuple(owned_images), tuple(shared_images)
    if kind in ("container.create", "container.rename") and route.param("name"):
        # Docker's own rule and words for names. Names are one namespace for every learner on the engine, so the
        # proxy is to give engine-side names the learner's prefix and take it off in answers.
        if not re.fullmatch(r"/?[A-Za-z0-9][A-Za-z0-9_.-]+", route.param("name")) or ".." in route.param("name"):
            raise ProxyRefusal(f"Invalid container name ({route.param('name')}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are "
                               f"allowed", status=400)
    if kind in _OPEN_KINDS:
        return route
    if kind in _LABELLED_LISTS:
        return route.with_query(filters=owner_filters(route.param("filters"), learner.owner_filter))
    if kind == "image.list":
        # Shared images carry no owner label, so the label filter would hide them: the proxy filters the response
        # with images_visible instead.
        return route
    if kind in CONTAINER_KINDS:
        full_id = _owned_container(route.object_id, owned_containers)
        if full_id is None:
            raise _no_such_container(route.object_id)
        return route.with_object(full_id)
    if kind in ("exec.start", "exec.resize", "exec.inspect"):
        if route.object_id not in set(owned_execs):
            raise ProxyRefusal(f"No such exec instance: {route.object_id}", status=404)
        return route
    if kind in ("volume.inspect", "volume.remove"):
        if route.object_id not in set(owned_volumes):
            raise ProxyRefusal(f"get {route.object_id}: no such volume", status=404)
        return route
    if kind == "network.inspect":
        if route.object_id != learner.network:
            raise ProxyRefusal(f"network {route.object_id} not found", status=404)
        return route
    if kind in ("network.create", "network.remove", "network.connect", "network.disconnect", "network.prune"):
        raise ProxyRefusal(f"Sandcloud's Docker does not change networks: your containers join your private network "
                           f"({learner.network}), where they reach each other by name.")
    if kind == "image.pull":
        return _pull_check(route, learner, shared_images)
    if kind in ("image.inspect", "image.history"):
        if not (image_in(route.object_id, owned_images) or image_in(route.object_id, shared_images)):
            raise _no_such_image(route.object_id)
        return route
    if kind == "image.push":
        # The CLI names the tag in the query (POST /images/{repo}/push?tag=1); none is --all-tags.
        tag = route.param("tag")
        wanted = f"{route.object_id}:{tag}" if tag else route.object_id
        if tag and not image_in(wanted, owned_images) or not tag and not any(
                normalise_image(o).startswith(normalise_image(route.object_id).rsplit(":", 1)[0] + ":")
                for o in owned_images):
            raise _no_such_image(wanted)
        ref = normalise_image(wanted)
        if not _in_registries(ref, learner.registries):
            # The engine pushes from the host's network: anywhere else would be a way out of the fence.
            raise ProxyRefusal(f"Sandcloud pushes only to your private registry: tag the image with your "
                               f"repository's name first (docker tag {route.object_id} <registry>/<repository>).")
        return route
    if kind == "image.remove":
        if image_in(route.object_id, shared_images) and not image_in(route.object_id, owned_images):
            raise ProxyRefusal(f"{route.object_id} is one of Sandcloud's shared base images, which are read-only: "
                               f"it cannot be removed.")
        if not image_in(route.object_id, owned_images):
            raise _no_such_image(route.object_id)
        return route
    if kind == "image.tag":
        return _tag_check(route, owned_images, shared_images)
    raise _unknown_endpoint(route.method, "/" + "/".join(route.segments))


def _tag_check(route: Route, owned_images: tuple[str, ...], shared_images: tuple[str, ...]) -> Route:
    source = route.object_id
    if not (image_in(source, owned_images) or image_in(source, shared_images)):
        raise _no_such_image(source)
    repo, tag = route.param("repo") or "", route.param("tag") or "latest"
    target = f"{repo}:{tag}"
    if not _IMAGE_REF.fullmatch(target):
        raise ProxyRefusal(f"invalid reference format: {target}", status=400)
    if image_in(target, shared_images):
        raise ProxyRefusal(f"{target} is one of Sandcloud's shared base images, which are read-only: tag your image "
                           f"with a name of your own.")
    return route


def _pull_check(route: Route, learner: LearnerScope, shared_images: tuple[str, ...]) -> Route:
    if route.param("fromSrc"):
        raise _refuse("docker import", "fromSrc", "images come from a build or a pull from your private registry.")
    image = route.param("fromImage") or ""
    tag = route.param("tag")
    ref = f"{image}:{tag}" if tag and "@" not in image and not tag.startswith("sha256:") else image
    if tag and tag.startswith("sha256:"):
        ref = f"{image}@{tag}"
    if not _IMAGE_REF.fullmatch(ref):
        raise ProxyRefusal(f"invalid reference format: {ref}", status=400)
    if image_in(ref, shared_images):
        return route
    if _in_registries(normalise_image(ref), learner.registries):
        return route
    raise ProxyRefusal(f"pull access denied for {image}: Sandcloud pulls the shared base images and images in your "
                       f"private registry only (aws ecr describe-repositories lists yours).")


def _in_registries(normalised_ref: str, registries: Iterable[str]) -> bool:
    return any(normalised_ref.startswith(registry.rstrip("/") + "/") for registry in registries)


def auth_check(body: dict, *, learner: LearnerScope) -> dict:
    """POST /auth (docker login): the engine dials the server itself, so only the learner's registry is dialled."""
    server = str((body or {}).get("serveraddress") or "")
    host = server.removeprefix("https://").removeprefix("http://").split("/", 1)[0]
    if not any(registry.split("/", 1)[0] == host for registry in learner.registries):
        raise ProxyRefusal(f"Sandcloud's Docker logs in to your private registry only, not {server or 'Docker Hub'}: "
                           f"aws ecr get-login-password | docker login --username AWS --password-stdin <registry>.")
    return body


def images_visible(images: Iterable[dict], *, owned_images: Iterable[str], shared_images: Iterable[str]) -> list[dict]:
    """The image summaries of GET /images/json a learner may see: theirs and the shared ones, with others' tags cut."""
    owned_images, shared_images = tuple(owned_images), tuple(shared_images)
    visible = []
    for image in images:
        tags = [t for t in image.get("RepoTags") or [] if image_in(t, owned_images) or image_in(t, shared_images)]
        if tags or image_in(image.get("Id", ""), owned_images):
            visible.append({**image, "RepoTags": tags})
    return visible


# ---------------------------------------------------------------------------------------------------------------------
# Builds and volumes
# ---------------------------------------------------------------------------------------------------------------------

# Query members of POST /build a learner may set as they like; the others are checked or set below.
_BUILD_PASS = frozenset({"dockerfile", "t", "q", "nocache", "cachefrom", "pull", "rm", "forcerm", "buildargs",
                         "labels", "target", "platform", "extrahosts", "squash", "version", "session", "outputs",
                         "networkmode", "memory", "memswap", "cpushares", "cpusetcpus", "cpuperiod", "cpuquota",
                         "shmsize", "cgroupparent", "remote", "ulimits", "isolation", "buildid", "cpusetmems"})


def build_query_check(route: Route, *, learner: LearnerScope) -> Route:
    """POST /build's query: the classic builder, its RUN containers on the learner's network and inside their limits."""
    for key in route.query:
        if key not in _BUILD_PASS:
            raise _refuse(key, f"build parameter {key}", "this option is unknown to Sandcloud's Docker.")
    if route.param("remote"):
        # The engine would fetch the URL or Git repository itself, from the host's network.
        raise _refuse("a remote build context", "remote", "send the context from your workstation "
                                                          "(docker build .).")
    if route.param("version") not in (None, "", "1"):
        raise _refuse("BuildKit", "version", "builds use the classic builder; set DOCKER_BUILDKIT=0.")
    dockerfile = route.param("dockerfile") or "Dockerfile"
    if dockerfile.startswith("/") or ".." in dockerfile.split("/"):
        raise _refuse(f"--file {dockerfile}", "dockerfile", "the Dockerfile must be inside the build context.")
    for key, flag in (("cgroupparent", "--cgroup-parent"), ("ulimits", "--ulimit"), ("isolation", "--isolation"),
                      ("cpusetmems", "--cpuset-mems"),
                      ("extrahosts", "--add-host"), ("outputs", "--output"), ("session", "BuildKit session")):
        # The CLI sends every member, unused ones as empty JSON ("null", "[]", "{}").
        if route.param(key) not in (None, "", "null", "[]", "{}", "0"):
            raise _refuse(flag, key, "build options like this one are set by Sandcloud.")
    for tag in route.query.get("t", ()):
        if not _IMAGE_REF.fullmatch(tag):
            raise ProxyRefusal(f"invalid reference format: {tag}", status=400)
        if image_in(tag, learner.shared_images):
            raise ProxyRefusal(f"{tag} is one of Sandcloud's shared base images, which are read-only: tag your "
                               f"image with a name of your own.")
    mode = route.param("networkmode") or "default"
    if mode not in ("default", "none", learner.network):
        raise _refuse(f"--network {mode}", "networkmode", f"builds run on your private network "
                                                          f"({learner.network}) or none.")
    try:
        memory = int(route.param("memory") or 0)
        labels = json.loads(route.param("labels") or "{}")
        shm = int(route.param("shmsize") or learner.limits.tmp_mb * MB)
    except ValueError:
        raise ProxyRefusal("malformed build parameters", status=400) from None
    if not isinstance(labels, dict):
        raise ProxyRefusal("malformed build parameters: labels must be a JSON object", status=400)
    if memory > learner.quota.memory_mb_left * MB:
        raise _refuse("--memory", "memory", f"you have {learner.quota.memory_mb_left} MB of memory quota left.")
    memory = memory or min(learner.limits.memory_mb, learner.quota.memory_mb_left) * MB
    if any(str(k).startswith(PLATFORM_LABEL_PREFIX) for k in labels):
        raise _refuse("--label", "labels", f"labels starting with '{PLATFORM_LABEL_PREFIX}' are Sandcloud's own.")
    period = 100_000
    return route.with_query(
        networkmode="none" if mode == "none" else learner.network,
        memory=str(memory), memswap=str(memory),
        cpuperiod=str(period), cpuquota=str(int(min(learner.quota.cpus, learner.limits.cpus) * period)),
        cpushares=None, cpusetcpus=route.param("cpusetcpus"),
        shmsize=str(min(shm, memory)),
        labels=json.dumps({**labels, **learner.object_labels}),
        # Intermediate containers always go, also after a failed step: nobody reaps them otherwise.
        rm="1", forcerm="1",
        cgroupparent=learner.cgroup_parent,
    )


@dataclass(frozen=True)
class BuildContext:
    """What the check learned of an accepted build context."""
    size: int
    members: int


def build_context_check(context: bytes | IO[bytes], *, max_bytes: int, max_unpacked_bytes: int | None = None,
                        max_members: int = 50_000) -> BuildContext:
    """Refuses a build context too large, or with a link that leads outside it, or a device; reads at most max_bytes+1.

    Links are resolved the way the builder would meet them, through the context's own symlinked directories: `d -> .`
    with `x -> d/..` looks inside when read as text but is the context's parent on disk.
    """
    stream = io.BytesIO(context) if isinstance(context, (bytes, bytearray)) else context
    # Read where it lies (the proxy spools a context to a file), never copied into memory whole.
    start = stream.tell()
    size = stream.seek(0, io.SEEK_END) - start
    stream.seek(start)
    if size > max_bytes:
        raise ProxyRefusal(f"the build context is larger than {max_bytes // MB} MB, the most Sandcloud builds. "
                           f"Leave out what the image does not need with a .dockerignore file.", status=413)
    max_unpacked_bytes = max_unpacked_bytes or max_bytes * 4
    unpacked = 0
    links: dict[tuple[str, ...], str] = {}
    count = 0
    try:
        with tarfile.open(fileobj=stream, mode="r:*") as archive:
            for member in archive:
                count += 1
                if count > max_members:
                    raise ProxyRefusal(f"the build context has more than {max_members} files.", status=413)
                parts = _context_path(member.name)
                unpacked += max(member.size, 0)
                if unpacked > max_unpacked_bytes:
                    raise ProxyRefusal(f"the build context unpacks to more than {max_unpacked_bytes // MB} MB, the "
                                       f"most Sandcloud builds.", status=413)
                if member.isdev() or member.isfifo():
                    raise ProxyRefusal(f"the build context holds a device or pipe ({member.name}); only files, "
                                       f"directories and links within the context can be built.", status=400)
                if member.issym():
                    if member.linkname.startswith("/"):
                        raise _outside(member.name, member.linkname)
                    links[parts] = member.linkname
                elif member.islnk():
                    _context_path(member.linkname, link_of=member.name)
    except tarfile.TarError as error:
        raise ProxyRefusal(f"the build context is not a readable tar archive: {error}", status=400) from None
    for parts, target in links.items():
        if _resolve(parts[:-1], target, links) is None:
            raise _outside("/".join(parts), target)
    stream.seek(start)
    return BuildContext(size=size, members=count)


def _outside(name: str, target: str) -> ProxyRefusal:
    return ProxyRefusal(f"the build context has a link that leads outside it: {name} -> {target}. Copy the file into "
                        f"the context instead of linking to it.", status=400)


def _context_path(name: str, *, link_of: str | None = None) -> tuple[str, ...]:
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if name.startswith("/") or ".." in parts or "\x00" in name:
        if link_of is not None:
            raise _outside(link_of, name)
        raise ProxyRefusal(f"the build context has a path outside it: {name}", status=400)
    return parts


def _resolve(base: tuple[str, ...], target: str, links: Mapping[tuple[str, ...], str], depth: int = 0) \
        -> tuple[str, ...] | None:
    """Where `target` (relative to directory `base`) lands in the context, following its links; None if outside."""
    if depth > 40:  # the kernel's own limit on links followed in one lookup
        return None
    where = list(base)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not where:
                return None
            where.pop()
            continue
        where.append(part)
        link = links.get(tuple(where))
        if link is not None:
            if link.startswith("/"):
                return None
            resolved = _resolve(tuple(where[:-1]), link, links, depth + 1)
            if resolved is None:
                return None
            where = list(resolved)
    return tuple(where)


def volume_create_check(body: dict, *, learner: LearnerScope) -> dict:
    """POST /volumes/create: the local driver without options (which mount host paths), with the learner's labels."""
    if not isinstance(body, dict):
        raise ProxyRefusal("the request body must be a JSON object", status=400)
    for key in body:
        if key not in ("Name", "Driver", "DriverOpts", "Labels"):
            raise _refuse(key, key, "this option is unknown to Sandcloud's Docker.")
    _check_volume_driver(body.get("Driver"), body.get("DriverOpts"), "--opt", "DriverOpts")
    name = body.get("Name") or ""
    if name and not _OBJECT_ID.fullmatch(name) or ".." in name:
        raise _bad_id(name)
    for key in body.get("Labels") or {}:
        if key.startswith(PLATFORM_LABEL_PREFIX):
            raise _refuse(f"--label {key}", "Labels", f"labels starting with '{PLATFORM_LABEL_PREFIX}' are "
                                                      f"Sandcloud's own.")
    return {**body, "Driver": "local", "DriverOpts": {},
            "Labels": {**(body.get("Labels") or {}), **learner.object_labels}}


def archive_path_check(route: Route) -> Route:
    """`docker cp`'s path in the container: absolute or relative, but never a step up, which could walk out of the
    container's root filesystem through a link the learner made inside it."""
    path = route.param("path")
    if not path:
        raise ProxyRefusal("a path in the container is required (docker cp NAME:/path ...)", status=400)
    if ".." in path.split("/") or "\x00" in path:
        raise ProxyRefusal(f"the path {path} has a '..' step: name the file by its path from / instead.", status=400)
    return route


def archive_check(archive: IO[bytes], *, max_bytes: int) -> None:
    """The tar `docker cp` sends into a container: within the size cap, no path or link that leads out of it."""
    try:
        build_context_check(archive, max_bytes=max_bytes)
    except ProxyRefusal as refusal:
        raise ProxyRefusal(refusal.message.replace("the build context", "the archive")
                           .replace(" Leave out what the image does not need with a .dockerignore file.", "")
                           .replace("the most Sandcloud builds", "the most docker cp takes"),
                           status=refusal.status) from None
