"""The parent cgroup's files, against a directory laid out as the kernel lays out /sys/fs/cgroup (v1 and v2)."""
from __future__ import annotations

import pytest

from sandbox.engine.cgroups import CgroupError, ParentCgroup, parent_cgroup_ensure, parent_cgroup_limits

PARENT = ParentCgroup(name="sandcloud", memory_mb=1024, cpus=1.5, pids=4096)
UNLIMITED = "9223372036854771712"


def _kernel_files(directory, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in files.items():
        (directory / name).write_text(value + "\n")


def test_v1_gets_memory_swap_cpu_and_pid_limits_in_their_hierarchies(tmp_path):
    _kernel_files(tmp_path / "memory/sandcloud", {"memory.limit_in_bytes": UNLIMITED,
                                                  "memory.memsw.limit_in_bytes": UNLIMITED})
    _kernel_files(tmp_path / "cpu/sandcloud", {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1"})
    _kernel_files(tmp_path / "pids/sandcloud", {"pids.max": "max"})

    parent_cgroup_ensure(PARENT, version="1", root=tmp_path)

    assert parent_cgroup_limits(PARENT, version="1", root=tmp_path) == {
        "memory.limit_in_bytes": str(1024 << 20), "memory.memsw.limit_in_bytes": str(1024 << 20),
        "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "150000", "pids.max": "4096"}


def test_limits_already_in_place_are_not_written_again(tmp_path):
    # An operator made it as root beforehand: a worker that may not write it still accepts it.
    _kernel_files(tmp_path / "memory/sandcloud", {"memory.limit_in_bytes": str(1024 << 20)})
    _kernel_files(tmp_path / "cpu/sandcloud", {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "150000"})
    _kernel_files(tmp_path / "pids/sandcloud", {"pids.max": "4096"})
    written = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*") if path.is_file()}

    parent_cgroup_ensure(PARENT, version="1", root=tmp_path)

    assert {path: path.stat().st_mtime_ns for path in written} == written


def test_v2_enables_the_controllers_for_the_containers_and_caps_the_parent(tmp_path):
    _kernel_files(tmp_path, {"cgroup.subtree_control": "cpuset cpu io memory pids"})
    _kernel_files(tmp_path / "sandcloud", {"cgroup.subtree_control": "", "memory.max": "max", "memory.swap.max": "max",
                                           "cpu.max": "max 100000", "pids.max": "max"})

    parent_cgroup_ensure(PARENT, version="2", root=tmp_path)

    assert (tmp_path / "sandcloud/cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert parent_cgroup_limits(PARENT, version="2", root=tmp_path)["memory.max"] == str(1024 << 20)
    assert (tmp_path / "sandcloud/cpu.max").read_text() == "150000 100000"
    assert (tmp_path / "sandcloud/memory.swap.max").read_text() == "0"


def test_a_parent_that_cannot_be_made_is_an_error_for_the_operator(tmp_path):
    with pytest.raises(CgroupError, match="cannot set up the sandboxes' parent cgroup"):
        parent_cgroup_ensure(PARENT, version="1", root=tmp_path / "no-such-hierarchy")


def test_the_name_is_one_plain_directory():
    with pytest.raises(CgroupError):
        ParentCgroup(name="../etc", memory_mb=1, cpus=1, pids=1)
