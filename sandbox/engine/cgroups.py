"""The parent cgroup all learner containers run in: one hard limit on their memory, CPU and processes together."""
from __future__ import annotations

import errno
import os
import re
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000
MB = 1024 * 1024
# Swap limits exist only where the kernel accounts swap; without that there is nothing to cap.
_OPTIONAL = frozenset({"memory.memsw.limit_in_bytes", "memory.swap.max"})


class CgroupError(RuntimeError):
    """The parent cgroup could not be made or given its limits; the message is for the operator."""


@dataclass(frozen=True)
class ParentCgroup:
    name: str
    memory_mb: int
    cpus: float
    pids: int

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", self.name):
            raise CgroupError(f"the parent cgroup name {self.name!r} must be one plain directory name")

    @classmethod
    def from_settings(cls, values: dict) -> "ParentCgroup":
        """A 0 in the settings means the host's own figure: ¾ of its memory, all but half a core of its CPUs and half
        of the kernel's process ids, so the platform, Docker and the kernel always keep the rest."""
        return cls(name=values["name"], memory_mb=sandboxes_memory_mb(values),
                   cpus=values["cpus"] or max(0.5, (os.cpu_count() or 1) - 0.5),
                   pids=values["pids"] or host_pid_max() // 2)

    @property
    def docker_path(self) -> str:
        """What Docker's cgroup_parent takes with the cgroupfs driver: a path under each hierarchy's root."""
        return f"/{self.name}"


def sandboxes_memory_mb(values: dict) -> int:
    """The memory all sandboxes together may use (MB), from the settings or ¾ of the host's."""
    return values["memory_mb"] or host_memory_mb() * 3 // 4


def host_memory_mb() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // MB


def host_pid_max() -> int:
    return int(Path("/proc/sys/kernel/pid_max").read_text())


def parent_cgroup_ensure(parent: ParentCgroup, *, version: str, root: Path = CGROUP_ROOT) -> None:
    """Makes the cgroup and gives it its limits; idempotent, and cheap when everything is in place already.

    It must exist with its limits before Docker is first asked for a container under it: given a parent that does not
    exist, runc quietly creates it without any limit. Only values that differ are written, so a cgroup an operator
    made beforehand as root is accepted by a process that may not write it.
    """
    for directory, values in _layout(parent, version=version, root=root):
        try:
            directory.mkdir(exist_ok=True)
            for name, value in values:
                if name in _OPTIONAL and not (directory / name).exists():
                    continue
                _write_if_different(directory / name, value)
        except OSError as error:
            raise CgroupError(f"cannot set up the sandboxes' parent cgroup {directory}: {error}") from error


def parent_cgroup_limits(parent: ParentCgroup, *, version: str, root: Path = CGROUP_ROOT) -> dict[str, str]:
    """The limits as the kernel holds them now, by file name."""
    return {name: (directory / name).read_text().strip()
            for directory, values in _layout(parent, version=version, root=root) for name, _ in values
            if (directory / name).exists()}


def _layout(parent: ParentCgroup, *, version: str, root: Path) -> list[tuple[Path, list[tuple[str, str]]]]:
    memory = str(parent.memory_mb * MB)
    quota = str(int(parent.cpus * CPU_PERIOD_US))
    if version == "1":
        # Memory + swap gets the same cap as memory: no swapping past the limit either.
        return [(root / "memory" / parent.name, [("memory.limit_in_bytes", memory),
                                                 ("memory.memsw.limit_in_bytes", memory)]),
                (root / "cpu" / parent.name, [("cpu.cfs_period_us", str(CPU_PERIOD_US)), ("cpu.cfs_quota_us", quota)]),
                (root / "pids" / parent.name, [("pids.max", str(parent.pids))])]
    if version == "2":
        # The controllers must be enabled for the parent's children (the containers) to be limited at all.
        return [(root, [("cgroup.subtree_control", "+memory +cpu +pids")]),
                (root / parent.name, [("cgroup.subtree_control", "+memory +cpu +pids"), ("memory.max", memory),
                                      ("memory.swap.max", "0"), ("cpu.max", f"{quota} {CPU_PERIOD_US}"),
                                      ("pids.max", str(parent.pids))])]
    raise CgroupError(f"unknown cgroup version {version!r}")


def _write_if_different(path: Path, value: str) -> None:
    if path.name == "cgroup.subtree_control":
        enabled = set(path.read_text().split())
        if all(word[1:] in enabled for word in value.split()):
            return
    elif path.read_text().strip() == value:
        return
    try:
        path.write_text(value)
    except OSError as error:
        swap = path.parent / "memory.memsw.limit_in_bytes"
        if error.errno != errno.EINVAL or path.name != "memory.limit_in_bytes" or not swap.exists():
            raise
        # cgroup v1 keeps memory ≤ memory+swap: raising the memory limit past the old memory+swap limit needs that one
        # raised first (the caller writes memory+swap right after, to the same value).
        swap.write_text(value)
        path.write_text(value)
