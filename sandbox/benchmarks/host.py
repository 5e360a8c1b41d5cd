"""What the host says about itself: machine facts, /proc/meminfo, container cgroups, shim and daemon memory."""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

from django.db import connections

from ..engine.docker import engine


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo as bytes per field."""
    fields = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name.strip()] = int(parts[0]) * (1024 if parts[1:2] == ["kB"] else 1)
    return fields


# --- machine facts ---------------------------------------------------------------------------------------------------

def machine_facts() -> dict:
    info = {}
    try:
        raw = engine().client.info()
        info = {"docker_version": raw.get("ServerVersion"), "storage_driver": raw.get("Driver"),
                "cgroup_driver": raw.get("CgroupDriver"), "cgroup_version": raw.get("CgroupVersion")}
    except Exception:  # noqa: BLE001 - facts are a courtesy
        pass
    meminfo = parse_meminfo(Path("/proc/meminfo").read_text())
    return {"cpu_count": os.cpu_count(), "memory_total_mb": round(meminfo.get("MemTotal", 0) / 2**20),
            "kernel": platform.release(), "python": platform.python_version(),
            "database": connections["default"].vendor, **info}


def mem_available() -> int:
    return parse_meminfo(Path("/proc/meminfo").read_text())["MemAvailable"]

def cgroup_memory(container_id: str) -> dict[str, int] | None:
    """usage_in_bytes and rss+cache from the container's cgroup (v1, cgroupfs driver; v2 as a fallback)."""
    from django.conf import settings

    # Sandboxes live under the platform's parent cgroup (sandbox/engine/cgroups.py), other containers under docker's.
    parents = [p for p in (settings.SANDCLOUD["SANDBOXES_CGROUP"]["name"].strip("/"), "docker") if p]
    for base in (*(Path("/sys/fs/cgroup/memory") / p / container_id for p in parents),
                 *(Path("/sys/fs/cgroup") / p / container_id for p in parents),
                 Path("/sys/fs/cgroup/system.slice") / f"docker-{container_id}.scope"):
        if (base / "memory.usage_in_bytes").exists():
            stat = parse_meminfo_like((base / "memory.stat").read_text())
            return {"usage": int((base / "memory.usage_in_bytes").read_text()), "rss": stat.get("total_rss", 0),
                    "cache": stat.get("total_cache", 0), "kernel": _read_int(base / "memory.kmem.usage_in_bytes")}
        if (base / "memory.current").exists():
            stat = parse_meminfo_like((base / "memory.stat").read_text())
            return {"usage": int((base / "memory.current").read_text()), "rss": stat.get("anon", 0),
                    "cache": stat.get("file", 0), "kernel": stat.get("kernel", 0)}
    return None


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return 0


def parse_meminfo_like(text: str) -> dict[str, int]:
    """`name value` lines (cgroup memory.stat) as a dict."""
    fields = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            fields[parts[0]] = int(parts[1])
    return fields


def shim_pss(container_ids: set[str]) -> int:
    """Proportional set size of the containerd shims serving these containers (host memory outside their cgroups)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if not argv or b"containerd-shim" not in argv[0]:
                continue
            if "-id" not in (args := [a.decode() for a in argv]) or args[args.index("-id") + 1] not in container_ids:
                continue
            rollup = parse_meminfo((proc / "smaps_rollup").read_text().split("\n", 1)[1])
            total += rollup.get("Pss", 0)
        except (OSError, IndexError, ValueError):
            continue
    return total


def daemons_rss() -> int:
    """Resident memory of dockerd and containerd, which keep state (and log followers) for every container."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() in ("dockerd", "containerd"):
                total += parse_meminfo((proc / "status").read_text()).get("VmRSS", 0)
        except OSError:
            continue
    return total


@dataclass(frozen=True)
class ProcessCpu:
    pid: int
    name: str
    parent: int
    seconds: float  # user + system CPU used so far


def processes_cpu() -> dict[int, ProcessCpu]:
    """Every process's name, parent and CPU seconds so far, from /proc/<pid>/stat (one read each)."""
    tick, found = os.sysconf("SC_CLK_TCK"), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        fields = stat[stat.rindex(")") + 2:].split()
        found[int(entry.name)] = ProcessCpu(pid=int(entry.name), name=stat[stat.index("(") + 1:stat.rindex(")")],
                                            parent=int(fields[1]), seconds=(int(fields[11]) + int(fields[12])) / tick)
    return found


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])  # guest time is counted in user already
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick
