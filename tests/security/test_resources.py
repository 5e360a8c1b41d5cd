"""Abuse of shared resources: processes, memory, CPU, disk and log output stay inside the attacker's own limits."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from django.conf import settings

from sandbox import services
from sandbox.engine.cgroups import CGROUP_ROOT, ParentCgroup, host_memory_mb, parent_cgroup_limits
from sandbox.engine.docker import DockerEngine, engine
from sandbox.engine.images import LEARNER_GID
from sandbox.models import Sandbox
from sandbox.policy import ContainerSpec, Limits, labels_for
from tests.conftest import run_in

from .observe import assert_host_and_bystander_answer, cgroup_file, inspect

pytestmark = pytest.mark.docker

MB = 1024 * 1024


def test_a_fork_bomb_stops_at_the_pid_limit_and_neighbours_keep_working(start_sandbox, learner, bystander):
    sandbox = start_sandbox(learner)
    current = cgroup_file(sandbox, "pids", "pids.current")

    run_in(sandbox, "setsid timeout 8 bash -c ':(){ :|:& };:' >/dev/null 2>&1 </dev/null &", timeout=5)
    # The learner's process limit (RLIMIT_NPROC, per uid) and the cgroup's pid limit are equal; whichever refuses the
    # fork first, the container's process count climbs to the wall and no further.
    limit, peak, deadline = sandbox.pids_limit, 0, time.monotonic() + 3
    while time.monotonic() < deadline:
        peak = max(peak, int(current.read_text()))
        time.sleep(0.02)

    assert limit == services.default_limits().pids
    assert limit * 0.95 <= peak <= limit, f"peak of {peak} processes against a limit of {limit}"
    assert_host_and_bystander_answer(bystander)  # while the bomb is still running


def test_a_memory_bomb_is_killed_at_the_memory_limit_and_the_sandbox_survives(start_sandbox, learner, bystander):
    sandbox = start_sandbox(learner)

    # Stops by itself after 1 GB (four times the limit) so that a missing limit cannot take the host's memory.
    code, output = run_in(sandbox, "python3 -c 'b = [bytearray(16 << 20) for _ in range(64)]'", timeout=30)

    assert code == 137, f"the bomb was not SIGKILLed (exit {code}): {output}"
    assert _oom_kills(sandbox) >= 1
    assert engine().state(sandbox.container_id).running
    assert_host_and_bystander_answer(bystander)


def _oom_kills(sandbox: Sandbox) -> int:
    """How many processes the kernel's OOM killer has killed in the container (cgroup v1, else v2)."""
    counters = cgroup_file(sandbox, "memory", "memory.oom_control")
    if not counters.exists():
        counters = cgroup_file(sandbox, "memory", "memory.events")
    return int(re.search(r"oom_kill (\d+)", counters.read_text()).group(1))


def test_a_sandbox_whose_workstation_process_runs_out_of_memory_ends_failed_saying_so(start_sandbox, learner):
    sandbox = start_sandbox(learner, limits=Limits(memory_mb=96))

    # Every learner process starts as the OOM killer's first choice (1000): lower all but the workstation's main process
    # to 0, the least a learner may, then fill the memory-backed home, /tmp and /dev/shm (64 + 32 + 32 MB) past the
    # 96 MB limit: memory no process owns, so the container itself dies of it.
    lower_the_others = "for p in $(pgrep -v -fx 'sleep infinity'); do echo 0 >/proc/$p/oom_score_adj; done 2>/dev/null"
    run_in(sandbox, f"{lower_the_others}; "
                    "for dir in /home/learner /tmp /dev/shm; do dd if=/dev/zero of=$dir/fill bs=1M count=64; done",
           timeout=30)
    deadline = time.monotonic() + 10
    while engine().state(sandbox.container_id).running and time.monotonic() < deadline:
        time.sleep(0.1)
    services.sandbox_reap()

    sandbox.refresh_from_db()
    assert sandbox.state == Sandbox.State.FAILED
    assert "out of memory" in sandbox.failure_reason
    assert engine().state(sandbox.container_id) is None


def test_a_cpu_burning_loop_gets_its_quota_not_the_host(start_sandbox, learner, bystander):
    sandbox = start_sandbox(learner)

    # Two burners, one per host core: without a quota they would take 200 % of a CPU.
    run_in(sandbox, "for n in 1 2; do setsid timeout 10 sh -c 'while :; do :; done' >/dev/null 2>&1 </dev/null & done",
           timeout=5)
    time.sleep(1)
    samples = [engine().stats(sandbox.container_id)["cpu_percent"] for _ in range(2)]

    quota_percent = sandbox.cpus * 100
    assert max(samples) <= quota_percent * 1.3, samples
    assert max(samples) >= quota_percent * 0.3, f"the loop was not measured burning at all: {samples}"
    assert_host_and_bystander_answer(bystander)


def test_filling_every_writable_place_stops_at_its_cap_and_leaves_the_host_disk_alone(start_sandbox, learner,
                                                                                       bystander):
    sandbox = start_sandbox(learner)
    limits = services.default_limits()
    caps = {"/home/learner": limits.home_mb * MB, "/tmp": limits.tmp_mb * MB, "/dev/shm": limits.tmp_mb * MB}

    _, output = run_in(sandbox, "for dir in /home/learner /tmp /dev/shm; do "
                                "  dd if=/dev/zero of=$dir/fill bs=1M count=200 2>&1 | grep -o 'No space left'; "
                                "  echo \"$dir $(stat -c %s $dir/fill)\"; "
                                "done", timeout=30)

    written = dict(line.split() for line in output.splitlines() if line.startswith("/"))
    assert output.count("No space left") == 3, output
    for directory, cap in caps.items():
        assert cap - MB <= int(written[directory]) <= cap, (directory, written[directory])
    upper = Path(inspect(sandbox)["GraphDriver"]["Data"]["UpperDir"])
    on_host_disk = sum(f.stat().st_size for f in upper.rglob("*") if f.is_file() and not f.is_symlink())
    assert on_host_disk < 64 * 1024
    assert_host_and_bystander_answer(bystander)


def _docker_size(text: str) -> int:
    """Docker's log-opt sizes ("1m", "512k") are decimal units."""
    number, unit = re.fullmatch(r"(\d+)([kmg]?)b?", text.lower()).groups()
    return int(number) * {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[unit]


def test_an_output_flood_keeps_the_container_log_within_its_rotation_cap(start_sandbox, learner, bystander):
    sandbox = start_sandbox(learner)
    limits = services.default_limits()
    # Writes to the workstation's own stdout (what docker logs records) for four seconds, as fast as dockerd takes it.
    flood = ("python3 - <<'EOF'\n"
             "import time\n"
             "chunk, written, end = b'x' * 16383 + b'\\n', 0, time.monotonic() + 4\n"
             "with open('/proc/1/fd/1', 'wb', buffering=0) as out:\n"
             "    while time.monotonic() < end:\n"
             "        written += out.write(chunk)\n"
             "print(written)\n"
             "EOF")

    code, output = run_in(sandbox, flood, timeout=15)

    assert code == 0, output
    cap = _docker_size(limits.log_max_size) * limits.log_max_files
    log_path = Path(inspect(sandbox)["LogPath"])
    logs = [p for p in log_path.parent.iterdir() if p.name.startswith(log_path.name)]
    on_disk = sum(p.stat().st_size for p in logs)
    assert int(output.split()[-1]) >= 10 * cap, "the flood was too small to prove anything"
    assert len(logs) == limits.log_max_files  # it rotated…
    assert on_disk <= cap + limits.log_max_files * 64 * 1024  # …and kept no more than max-file × max-size
    assert_host_and_bystander_answer(bystander)


def test_every_sandbox_runs_under_the_shared_parent_cgroup_whose_limits_stay_below_the_hosts(start_sandbox, learner):
    sandbox = start_sandbox(learner)
    parent = engine().parent

    own_memory_cgroup = cgroup_file(sandbox, "memory", "memory.limit_in_bytes").parent

    assert parent.name == settings.SANDCLOUD["SANDBOXES_CGROUP"]["name"]  # "sandcloud" unless an operator renamed it
    assert inspect(sandbox)["HostConfig"]["CgroupParent"] == f"/{parent.name}"
    assert own_memory_cgroup.parent == CGROUP_ROOT / "memory" / parent.name
    limits = parent_cgroup_limits(parent, version="1")
    assert int(limits["memory.limit_in_bytes"]) == parent.memory_mb * MB < host_memory_mb() * MB
    assert int(limits["pids.max"]) == parent.pids < int(Path("/proc/sys/kernel/pid_max").read_text())
    assert int(limits["cpu.cfs_quota_us"]) == int(parent.cpus * int(limits["cpu.cfs_period_us"])) > 0


@pytest.fixture
def small_parent(docker_engine):
    """A parent cgroup of this test's own (64 MB), never the real one, and an engine that starts containers under it."""
    instance = settings.SANDCLOUD["INSTANCE"]
    parent = ParentCgroup(name=f"sandcloud-test-{instance}", memory_mb=64, cpus=1, pids=128)
    test_engine = DockerEngine(url=settings.SANDCLOUD["DOCKER_URL"], timeout=30, instance=instance, parent=parent)
    yield test_engine
    for summary in docker_engine.api.containers(all=True, filters={"label": f"sandcloud.instance={instance}"}):
        if docker_engine.api.inspect_container(summary["Id"])["HostConfig"]["CgroupParent"] == parent.docker_path:
            docker_engine.remove(summary["Id"])
    for directory in CGROUP_ROOT.glob(f"*/{parent.name}"):  # runc made it in every hierarchy
        for _ in range(50):
            try:
                directory.rmdir()
                break
            except OSError:  # the removed container's own cgroup may linger for a moment
                time.sleep(0.1)


def test_the_parent_limit_kills_a_container_whose_own_limit_is_higher_than_what_is_left(small_parent, bystander):
    instance = settings.SANDCLOUD["INSTANCE"]
    # Its own limit (256 MB) allows the 100 MB it writes; only the parent's 64 MB for all its containers does not.
    spec = ContainerSpec(name=f"sandcloud-{instance}-parent-test", image=settings.SANDCLOUD["WORKSTATION_IMAGE"],
                         uid=services._free_uid(services.COLD_UIDS), gid=LEARNER_GID, labels=labels_for(instance),
                         limits=Limits(memory_mb=256),
                         command=("python3", "-c", "b = b'x' * (100 << 20); print('survived', len(b))"))

    container_id = small_parent.run(spec)
    exit_code = small_parent.api.wait(container_id, timeout=60)["StatusCode"]

    attrs = small_parent.api.inspect_container(container_id)
    assert attrs["HostConfig"]["CgroupParent"] == "/" + small_parent.parent.name
    assert attrs["HostConfig"]["Memory"] == 256 * MB
    assert int(parent_cgroup_limits(small_parent.parent, version="1")["memory.limit_in_bytes"]) == 64 * MB
    assert exit_code == 137, small_parent.api.logs(container_id)
    assert b"survived" not in small_parent.api.logs(container_id)
    assert_host_and_bystander_answer(bystander)


def test_learner_processes_are_the_oom_killers_first_choice_and_cannot_make_themselves_less_so(start_sandbox,
                                                                                               learner):
    sandbox = start_sandbox(learner)

    _, scores = run_in(sandbox, "for pid in 1 $(pgrep -o tmux) $$; do cat /proc/$pid/oom_score_adj; done", timeout=5)
    code, output = run_in(sandbox, "echo -1 > /proc/self/oom_score_adj", timeout=5)

    assert inspect(sandbox)["HostConfig"]["OomScoreAdj"] == 1000
    assert scores.split() == ["1000"] * 3  # the container's init, the workstation's tmux and an exec'd shell
    assert code != 0 and "Permission denied" in output
