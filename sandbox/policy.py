"""Pure policy: container hardening, limits, naming and quotas. No Docker, Redis or database calls here."""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field, replace

# The kernel's OOM killer picks the process with the highest score: learner processes start at the maximum, so under
# host memory pressure they go before the platform's. A learner may lower their own back to 0 (the kernel lets any
# process return to the floor it was given), never below, so platform processes started below 0 still go last.
LEARNER_OOM_SCORE_ADJ = 1000

# Every learner container carries its uid here, whichever install made it, so no other install hands out the same uid.
UID_LABEL = "sandcloud.uid"

# The name a sandbox reaches the AWS endpoint by (`manage.py awsedge`): Docker's host-gateway, the host's address on
# its default bridge, which every sandbox network reaches through its default route. ops/firewall.sh opens the fence
# to that address on the edge's ports alone.
AWS_EDGE_HOST = "aws.sandcloud.internal"

# What a managed container is: a learner's sandbox (no label, as before this label existed) or another service's
# container, e.g. a Lambda execution environment, which the sandbox reaper leaves to that service's own reaper.
KIND_LABEL = "sandcloud.kind"
KIND_SANDBOX = "sandbox"
KIND_FUNCTION_ENVIRONMENT = "function-environment"


@dataclass(frozen=True)
class Limits:
    memory_mb: int = 256
    cpus: float = 0.5
    pids: int = 256
    home_mb: int = 64
    tmp_mb: int = 32
    nofile: int = 1024
    log_max_size: str = "1m"
    log_max_files: int = 2

    @classmethod
    def from_settings(cls, values: dict) -> "Limits":
        return cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})

    def with_overrides(self, **overrides) -> "Limits":
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    uid: int
    gid: int
    labels: dict[str, str]
    limits: Limits
    runtime: str = "runc"
    network: str | None = None
    command: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    # Read-only bind mounts (host path, container path) of files the platform prepared, e.g. a function's unpacked
    # code at /var/task; never a learner-chosen host path.
    binds: tuple[tuple[str, str], ...] = ()
    # What the learner sees as the machine: an execution environment is no "sandbox".
    hostname: str = "sandbox"


class PolicyError(ValueError):
    """A request the platform refuses; the message is written for the learner."""


def check_capabilities(capabilities: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Refuses every capability: none could take effect, so declaring one would be a promise that does nothing.

    Learner processes run as an ordinary uid under no-new-privileges, so an added capability reaches only the bounding
    set, never the effective one; Docker 20.10 cannot grant ambient capabilities, and no-new-privileges ignores file
    capabilities. Making one usable would mean starting the learner's processes as root, which this design refuses.
    """
    cleaned = tuple(sorted({str(c).upper().removeprefix("CAP_") for c in capabilities}))
    if cleaned:
        raise PolicyError(f"A sandbox cannot be given capabilities ({', '.join(cleaned)}): its processes run as an "
                          f"ordinary user that can never use them. Remove capabilities from the environment.")
    return cleaned


def workstation_command() -> tuple[str, ...]:
    # tmux keeps one shell alive across browser reconnects; PID 1 is docker's init, which reaps zombies.
    return ("sh", "-c", "echo \"sandbox ready: $(uname -sr), $(nproc) cpu\"; "
                        "tmux -u new-session -d -s main -x 120 -y 32; exec sleep infinity")


def hardened_create_kwargs(spec: ContainerSpec) -> dict:
    """The keyword arguments for docker's containers.create that make a learner container safe to hand out."""
    limits = spec.limits
    memory = f"{limits.memory_mb}m"
    kwargs = {
        "image": spec.image,
        "name": spec.name,
        "command": list(spec.command) or None,
        # The uid on a label lets every install on this engine see which uids are taken (see DockerEngine.run).
        "labels": {**spec.labels, UID_LABEL: str(spec.uid)},
        "user": f"{spec.uid}:{spec.gid}",
        "environment": {"HOME": "/home/learner", "LANG": "C.UTF-8", "TERM": "xterm-256color", **spec.environment},
        "working_dir": "/home/learner",
        "hostname": spec.hostname,
        "detach": True,
        "init": True,
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges:true"],
        "read_only": True,
        "tmpfs": {
            "/home/learner": f"rw,nosuid,nodev,size={limits.home_mb}m,uid={spec.uid},gid={spec.gid},mode=0700",
            "/tmp": f"rw,nosuid,nodev,size={limits.tmp_mb}m,mode=1777",
            "/run": "rw,nosuid,nodev,noexec,size=1m,mode=0755",
        },
        "pids_limit": limits.pids,
        "mem_limit": memory,
        "memswap_limit": memory,
        "mem_swappiness": 0,
        "oom_score_adj": LEARNER_OOM_SCORE_ADJ,
        "nano_cpus": int(limits.cpus * 1e9),
        "ulimits": [
            {"Name": "nofile", "Soft": limits.nofile, "Hard": limits.nofile},
            {"Name": "nproc", "Soft": limits.pids, "Hard": limits.pids},
            {"Name": "core", "Soft": 0, "Hard": 0},
        ],
        "log_config": {"Type": "json-file",
                       "Config": {"max-size": limits.log_max_size, "max-file": str(limits.log_max_files)}},
        "privileged": False,
        "ipc_mode": "private",
        "shm_size": f"{limits.tmp_mb}m",  # /dev/shm is memory too: capped like /tmp rather than Docker's 64 MB
        "runtime": spec.runtime,
    }
    if spec.binds:
        kwargs["volumes"] = {host: {"bind": target, "mode": "ro"} for host, target in spec.binds}
    if spec.runtime == "runsc" or spec.network is None:
        # gVisor's Debian build only runs without networking; a sandbox without a network has none at all.
        kwargs["network_mode"] = "none"
    else:
        kwargs["network"] = spec.network
        # Docker's embedded DNS forwards names it does not know to the host's resolvers, and from the host's own
        # network namespace when they are on loopback (CVE-2024-29018; Debian's 20.10 is unfixed): around the fence.
        # A resolver given with --dns is dialled from inside the sandbox, where 127.0.0.1 answers nothing: the
        # learner's own container names still resolve, no other name does, and a lookup fails in 2 s instead of 20.
        kwargs["dns"] = ["127.0.0.1"]
        kwargs["dns_opt"] = ["timeout:1", "attempts:1"]
        # No IPv6 at all (also on the interface a warm container gains when it joins its learner's network), so the
        # IPv4 fence is the whole fence.
        kwargs["sysctls"] = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
        # In /etc/hosts, so the name resolves although the sandbox's DNS answers nothing but its learner's containers.
        kwargs["extra_hosts"] = {AWS_EDGE_HOST: "host-gateway"}
    return {k: v for k, v in kwargs.items() if v is not None}


def container_name(instance: str, sandbox_id: int) -> str:
    return f"sandcloud-{instance}-sandbox-{sandbox_id}"


def learner_network_name(instance: str, user_id: int) -> str:
    return f"sandcloud-{instance}-learner-{user_id}"


# Every Sandcloud network's host-side bridge device starts with this, so ops/firewall.sh can fence exactly those off
# from the host and the outside world without touching anybody else's Docker networks.
BRIDGE_PREFIX = "sandcl-"


def bridge_interface_name(network_name: str) -> str:
    """The host-side bridge device for a network: stable per name and within Linux's 15-character limit."""
    return BRIDGE_PREFIX + hashlib.sha256(network_name.encode()).hexdigest()[:8]


def hardened_network_options(network_name: str, *, icc: bool) -> dict[str, str]:
    """Driver options for an internal learner (or pool) bridge: no masquerading out, and a bridge the firewall knows."""
    return {"com.docker.network.bridge.name": bridge_interface_name(network_name),
            "com.docker.network.bridge.enable_icc": "true" if icc else "false",
            "com.docker.network.bridge.enable_ip_masquerade": "false"}


def labels_for(instance: str, *, sandbox_id: int | None = None, owner: str | None = None, pool: bool = False) -> dict:
    labels = {"sandcloud.instance": instance}
    if sandbox_id is not None:
        labels["sandcloud.sandbox"] = str(sandbox_id)
    if owner is not None:
        labels["sandcloud.owner"] = owner
    if pool:
        labels["sandcloud.pool"] = "1"
    return labels


@dataclass(frozen=True)
class Quota:
    per_learner: int
    per_host: int
    # Memory limits the host admits in total (MB): the sandboxes' parent cgroup limit times the overcommit factor.
    memory_budget_mb: int


def memory_budget_mb(*, parent_memory_mb: int, overcommit: float) -> int:
    """The sum of sandbox memory limits the host admits. Overcommitting is safe because idle sandboxes use a few MB of
    their limit and the parent cgroup's hard limit makes the kernel kill learner processes, not the platform's, when
    they really do use it all at once."""
    return round(parent_memory_mb * overcommit)


def quota_refusal(*, quota: Quota, learner_active: int, host_active: int, memory_committed_mb: int,
                  memory_requested_mb: int) -> str | None:
    """None when a new sandbox fits, else the sentence to show the learner.

    A sandbox's memory is its memory limit alone: its tmpfs home, /tmp and /dev/shm are charged to the same cgroup, so
    they are already inside that limit (a container filling them past it is killed, see tests/security).
    """
    if learner_active >= quota.per_learner:
        noun = "sandbox" if quota.per_learner == 1 else "sandboxes"
        return (f"You already have {learner_active} running {noun}, the most allowed at once. "
                f"Stop one before starting another.")
    if host_active >= quota.per_host:
        return "Sandcloud is at capacity right now. Please try again in a few minutes."
    if memory_committed_mb + memory_requested_mb > quota.memory_budget_mb:
        return ("Sandcloud does not have enough memory free for another sandbox right now. "
                "Please try again in a few minutes.")
    return None


def subnet_candidates(*, pool: str, prefix: int, name: str, count: int = 32) -> list[str]:
    """Subnets of `pool` to try for network `name`: a stable first choice from its name, then the next ones."""
    network = ipaddress.ip_network(pool)
    slots = 2 ** (prefix - network.prefixlen)
    first = int(hashlib.sha256(name.encode()).hexdigest(), 16) % slots
    size = 2 ** (network.max_prefixlen - prefix)
    return [str(ipaddress.ip_network((int(network.network_address) + ((first + n) % slots) * size, prefix)))
            for n in range(min(count, slots))]
