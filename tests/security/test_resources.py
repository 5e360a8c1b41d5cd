"""Abuse of shared resources: processes, memory, CPU, disk and log output stay inside the attacker's own limits."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from sandbox import services
from sandbox.engine.docker import engine
from sandbox.models import Sandbox
from sandbox.policy import Limits
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

    # Make the workstation's main process the OOM killer's first choice, then fill the memory-backed home, /tmp and
    # /dev/shm (64 + 32 + 32 MB) past the 96 MB limit: memory no process owns, so the container itself dies of it.
    run_in(sandbox, "echo 1000 > /proc/$(pgrep -fx 'sleep infinity')/oom_score_adj && "
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
