"""The host's view of a sandbox under attack: docker inspect, its cgroup and log files, and whether neighbours answer."""
from __future__ import annotations

import subprocess
from pathlib import Path

from sandbox.engine.docker import engine
from sandbox.events import redis_client
from sandbox.models import Sandbox
from tests.conftest import run_in

def inspect(sandbox: Sandbox) -> dict:
    return engine().api.inspect_container(sandbox.container_id)


def cgroup_file(sandbox: Sandbox, controller: str, name: str) -> Path:
    """A file of the container's cgroup on the host (cgroup v1 controller hierarchy, else the unified v2 one)."""
    pid = inspect(sandbox)["State"]["Pid"]
    unified = None
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return Path("/sys/fs/cgroup", controllers, path.lstrip("/"), name)
        if controllers == "":
            unified = Path("/sys/fs/cgroup", path.lstrip("/"), name)
    assert unified is not None, f"no {controller} cgroup for pid {pid}"
    return unified


def network_addresses(sandbox: Sandbox) -> tuple[str, str]:
    """The sandbox's (own IP, gateway IP) on its one network; the gateway address is the host."""
    (network,) = inspect(sandbox)["NetworkSettings"]["Networks"].values()
    return network["IPAddress"], network["Gateway"]


def tcp_connect_from(sandbox: Sandbox, host: str, port: int, *, timeout: float = 3) -> str:
    """Tries a TCP connection from inside the sandbox: "connected", "timeout" or the errno name (ECONNREFUSED…)."""
    script = f"""python3 - <<'EOF'
import errno, socket
s = socket.socket()
s.settimeout({timeout})
try:
    s.connect(({host!r}, {port}))
    print("connected")
except socket.timeout:
    print("timeout")
except OSError as error:
    print(errno.errorcode.get(error.errno, str(error.errno)))
EOF"""
    code, output = run_in(sandbox, script, timeout=int(timeout) + 5)
    assert code == 0, output
    return output.strip()


def assert_host_and_bystander_answer(bystander: Sandbox) -> None:
    """The attack did not spill over: another learner's sandbox, the engine, Redis and the host itself still respond."""
    assert run_in(bystander, "echo ok", timeout=5) == (0, "ok\n")
    engine().ping()
    assert redis_client().ping()
    assert subprocess.run(["true"], check=False, timeout=5).returncode == 0
