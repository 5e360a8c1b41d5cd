"""Pure policy: container hardening, limits, naming and quotas. No Docker, Redis or database calls here."""
from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field, replace

# Capabilities a lab may add back. Anything touching the host (SYS_ADMIN, SYS_MODULE, NET_ADMIN…) is refused.
ALLOWED_CAPABILITIES = frozenset({"CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID", "KILL", "NET_BIND_SERVICE",
                                  "NET_RAW", "SYS_PTRACE", "AUDIT_WRITE", "FSETID", "SETPCAP", "SETFCAP"})


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
    capabilities: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)


class PolicyError(ValueError):
    """A request the platform refuses; the message is written for the learner."""


def check_capabilities(capabilities: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    cleaned = tuple(sorted({c.upper().removeprefix("CAP_") for c in capabilities}))
    refused = [c for c in cleaned if c not in ALLOWED_CAPABILITIES]
    if refused:
        raise PolicyError(f"These capabilities are not allowed in a sandbox: {', '.join(refused)}.")
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
        "labels": spec.labels,
        "user": f"{spec.uid}:{spec.gid}",
        "environment": {"HOME": "/home/learner", "LANG": "C.UTF-8", "TERM": "xterm-256color", **spec.environment},
        "working_dir": "/home/learner",
        "hostname": "sandbox",
        "detach": True,
        "init": True,
        "cap_drop": ["ALL"],
        "cap_add": list(spec.capabilities) or None,
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
    if spec.runtime == "runsc" or spec.network is None:
        # gVisor's Debian build only runs without networking; a sandbox without a network has none at all.
        kwargs["network_mode"] = "none"
    else:
        kwargs["network"] = spec.network
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


def quota_refusal(*, quota: Quota, learner_active: int, host_active: int) -> str | None:
    """None when a new sandbox fits, else the sentence to show the learner."""
    if learner_active >= quota.per_learner:
        noun = "sandbox" if quota.per_learner == 1 else "sandboxes"
        return (f"You already have {learner_active} running {noun}, the most allowed at once. "
                f"Stop one before starting another.")
    if host_active >= quota.per_host:
        return "Sandcloud is at capacity right now. Please try again in a few minutes."
    return None


def subnet_candidates(*, pool: str, prefix: int, name: str, count: int = 32) -> list[str]:
    """Subnets of `pool` to try for network `name`: a stable first choice from its name, then the next ones."""
    network = ipaddress.ip_network(pool)
    slots = 2 ** (prefix - network.prefixlen)
    first = int(hashlib.sha256(name.encode()).hexdigest(), 16) % slots
    size = 2 ** (network.max_prefixlen - prefix)
    return [str(ipaddress.ip_network((int(network.network_address) + ((first + n) % slots) * size, prefix)))
            for n in range(min(count, slots))]
