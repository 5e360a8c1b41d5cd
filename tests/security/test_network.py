"""Network isolation: no way out, no way into another learner's sandbox, and no way to the platform's own services."""
from __future__ import annotations

import socket
import time

import pytest
from django.conf import settings

from sandbox.engine.docker import engine
from sandbox.models import Runtime
from tests.conftest import run_in

from .observe import OUTSIDE_ADDRESS, assert_host_and_bystander_answer, inspect, network_addresses, tcp_connect_from

pytestmark = pytest.mark.docker


def _learner_network(sandbox) -> dict:
    (name,) = inspect(sandbox)["NetworkSettings"]["Networks"]
    return engine().api.inspect_network(name)


def _wait_until_listening(host: str, port: int, *, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_sandbox_has_no_route_out_of_the_machine(start_sandbox, learner, bystander):
    sandbox = start_sandbox(learner)
    # Docker 20.10 still gives containers on an internal network a default route to the bridge's gateway (the host),
    # so "no default route" cannot be the proof; what matters is that nothing is forwarded beyond the host. Docker
    # drops such packets on the host, so the probe below goes nowhere even if the firewall that refuses them outright
    # (ops/firewall.sh) were missing: it would then time out instead of failing at once.
    assert _learner_network(sandbox)["Internal"] is True

    outcome = tcp_connect_from(sandbox, OUTSIDE_ADDRESS, 80)
    _, interfaces = run_in(sandbox, "ip -o -4 addr show scope global | awk '{print $2, $4}'", timeout=5)

    assert outcome == "ENETUNREACH", f"{outcome}: is ops/firewall.sh installed (ops/services.sh runs it)?"
    own_ip, _ = network_addresses(sandbox)
    assert [line.split()[0] for line in interfaces.splitlines()] == ["eth0"]  # only its learner network, no host one
    assert interfaces.split()[1].startswith(f"{own_ip}/")
    assert_host_and_bystander_answer(bystander)


def test_a_gvisor_sandbox_has_no_network_at_all(start_sandbox, learner, bystander):
    sandbox = start_sandbox(learner, runtime=Runtime.RUNSC)

    code, routes = run_in(sandbox, "ip -4 route", timeout=5)
    outcome = tcp_connect_from(sandbox, OUTSIDE_ADDRESS, 80)

    assert code == 0 and "default" not in routes and "eth0" not in routes, routes
    assert outcome in ("ENETUNREACH", "EHOSTUNREACH")  # gVisor's network stack says the latter
    assert_host_and_bystander_answer(bystander)


def test_a_learner_cannot_reach_another_learners_sandbox(start_sandbox, learner, bystander):
    sandbox = start_sandbox(learner)
    run_in(bystander, "setsid timeout 20 python3 -m http.server 8080 >/dev/null 2>&1 </dev/null &", timeout=5)
    bystander_ip, _ = network_addresses(bystander)
    # The host reaches the bystander's server, so it is up at that address…
    _wait_until_listening(bystander_ip, 8080)

    outcome = tcp_connect_from(sandbox, bystander_ip, 8080)

    # …but the attacker, on a different internal network, does not.
    assert _learner_network(sandbox)["Id"] != _learner_network(bystander)["Id"]
    assert outcome != "connected", outcome
    assert_host_and_bystander_answer(bystander)


def test_the_host_redis_web_app_and_docker_socket_are_out_of_reach(start_sandbox, learner, bystander, host_service):
    sandbox = start_sandbox(learner)
    _, gateway = network_addresses(sandbox)
    _, other_gateway = network_addresses(bystander)
    redis_port = int(settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    # A service on every host address answers the host itself through the gateway address…
    socket.create_connection((gateway, host_service), timeout=5).close()

    outcomes = {
        "web app via the gateway": tcp_connect_from(sandbox, gateway, host_service),
        "web app via another learner network's gateway": tcp_connect_from(sandbox, other_gateway, host_service),
        "redis via the gateway": tcp_connect_from(sandbox, gateway, redis_port),
        "redis on the sandbox's loopback": tcp_connect_from(sandbox, "127.0.0.1", redis_port),
    }
    _, sockets = run_in(sandbox, "find / \\( -path /proc -o -path /sys \\) -prune -o -type s -print 2>/dev/null",
                        timeout=20)
    docker_socket_found, _ = run_in(sandbox, "test -e /var/run/docker.sock -o -e /run/docker.sock -o -n \"$DOCKER_HOST\"",
                                    timeout=5)

    # …but not a sandbox.
    assert all(outcome != "connected" for outcome in outcomes.values()), f"{outcomes}: is ops/firewall.sh installed?"
    assert "tmux" in sockets and "docker" not in sockets, sockets  # the search works: it finds tmux's own socket
    assert docker_socket_found != 0
    assert_host_and_bystander_answer(bystander)
