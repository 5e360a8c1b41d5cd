"""Network isolation: no way out, no way into another learner's sandbox, and no way to the platform's own services."""
from __future__ import annotations

import logging
import socket
import subprocess
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from sandbox import services
from sandbox.engine import fence
from sandbox.engine.docker import engine
from sandbox.engine.fence import Fence, fence_missing_rules
from sandbox.engine.host_gateway import host_gateway_address
from sandbox.engine.images import LEARNER_GID
from sandbox.models import Runtime, Sandbox, WarmContainer
from sandbox.policy import ContainerSpec, bridge_interface_name, labels_for, learner_network_name, workstation_command
from sandbox.states import State
from tests.aws_edge import aws_edge, aws_edge_listener  # noqa: F401 - fixtures
from tests.conftest import run_in

from .observe import assert_host_and_bystander_answer, inspect, network_addresses, tcp_connect_from

pytestmark = pytest.mark.docker

INSTANCE = settings.SANDCLOUD["INSTANCE"]
# Chains ops/firewall.sh never makes: the host as it is after a reboot, without touching the real fence that other
# runs on this engine rely on.
FENCE_AFTER_A_REBOOT = Fence(input_chain="SANDCLOUD-GONE-INPUT", forward_chain="SANDCLOUD-GONE-FORWARD",
                             allow_chain="SANDCLOUD-GONE-ALLOW")


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


def _connect_script(host: str, port: int, *, family: str = "AF_INET", timeout: float = 3) -> list[str]:
    """A TCP connection attempt from inside a container: prints "connected", "timeout" or the errno name."""
    return ["python3", "-c", f"""
import errno, socket
try:
    address = socket.getaddrinfo({host!r}, {port}, socket.{family}, socket.SOCK_STREAM)[0][4]
    s = socket.socket(socket.{family})
    s.settimeout({timeout})
    s.connect(address)
    print("connected")
except socket.timeout:
    print("timeout")
except OSError as error:
    print(errno.errorcode.get(error.errno, str(error.errno)))
"""]


def _connect_from_container(container_id: str, uid: int, host: str, port: int) -> str:
    code, output = engine().exec(container_id, _connect_script(host, port), user=f"{uid}:{LEARNER_GID}", timeout=10)
    assert code == 0, output
    return output.strip()


def _addresses(attrs: dict) -> tuple[str, str]:
    (network,) = attrs["NetworkSettings"]["Networks"].values()
    return network["IPAddress"], network["Gateway"]


@pytest.fixture
def unfenced_container(docker_engine):
    """A container made exactly like a sandbox, on an internal bridge that ops/firewall.sh does not know (it is not
    named sandcl-*): every sandbox would be this if the fence were missing. Yields (container id, uid, gateway)."""
    name = f"sandcloud-{INSTANCE}-unfenced-control"
    network = engine().api.create_network(
        name, driver="bridge", internal=True, labels=labels_for(INSTANCE),
        options={"com.docker.network.bridge.name": f"scctl{uuid.uuid4().hex[:8]}",
                 "com.docker.network.bridge.enable_ip_masquerade": "false"})
    uid = services._free_uid(services.COLD_UIDS)
    container_id = engine().run(ContainerSpec(
        name=f"{name}-{uid}", image=settings.SANDCLOUD["WORKSTATION_IMAGE"], uid=uid, gid=LEARNER_GID,
        labels=labels_for(INSTANCE), limits=services.default_limits(), network=name, command=workstation_command()))
    try:
        yield container_id, uid, _addresses(engine().api.inspect_container(container_id))[1]
    finally:
        engine().remove(container_id)
        engine().api.remove_network(network["Id"])


def test_a_sandbox_has_no_route_out_of_the_machine(start_sandbox, learner, bystander, outside):
    sandbox = start_sandbox(learner)
    # Docker 20.10 still gives containers on an internal network a default route to the bridge's gateway (the host),
    # so "no default route" cannot be the proof; what matters is that nothing is forwarded beyond the host. "Outside"
    # is a server on a routed Docker network the test made, which the host itself reaches. Docker drops forwarded
    # packets from internal networks too, so without the firewall that refuses them outright (ops/firewall.sh) the
    # probe would time out instead of failing at once.
    assert _learner_network(sandbox)["Internal"] is True

    outcome = tcp_connect_from(sandbox, outside.address, outside.port)
    _, interfaces = run_in(sandbox, "ip -o -4 addr show scope global | awk '{print $2, $4}'", timeout=5)

    assert outcome == "ENETUNREACH", f"{outcome}: is ops/firewall.sh installed (ops/services.sh runs it)?"
    own_ip, _ = network_addresses(sandbox)
    assert [line.split()[0] for line in interfaces.splitlines()] == ["eth0"]  # only its learner network, no host one
    assert interfaces.split()[1].startswith(f"{own_ip}/")
    assert_host_and_bystander_answer(bystander)


def test_a_gvisor_sandbox_has_no_network_at_all(start_sandbox, learner, bystander, outside):
    sandbox = start_sandbox(learner, runtime=Runtime.RUNSC)

    code, routes = run_in(sandbox, "ip -4 route", timeout=5)
    outcome = tcp_connect_from(sandbox, outside.address, outside.port)

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


def test_host_services_the_fence_holds_back_and_the_docker_socket_are_out_of_reach(start_sandbox, learner, bystander,
                                                                                  host_service, unfenced_container):
    sandbox = start_sandbox(learner)
    _, gateway = network_addresses(sandbox)
    _, other_gateway = network_addresses(bystander)
    redis_port = int(settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    on_the_gateway = socket.create_server((gateway, 0))  # a service bound to the learner bridge's own address
    control_id, control_uid, control_gateway = unfenced_container
    # A service on every host address answers the host itself through the gateway address, and a container that is
    # not behind the fence reaches it: the probe below can connect, so only the fence stops it…
    socket.create_connection((gateway, host_service), timeout=5).close()
    assert _connect_from_container(control_id, control_uid, control_gateway, host_service) == "connected"

    outcomes = {
        "web app via the gateway": tcp_connect_from(sandbox, gateway, host_service),
        "web app via another learner network's gateway": tcp_connect_from(sandbox, other_gateway, host_service),
        "a service bound to the gateway address": tcp_connect_from(sandbox, gateway, on_the_gateway.getsockname()[1]),
        "redis via the gateway": tcp_connect_from(sandbox, gateway, redis_port),
    }
    _, sockets = run_in(sandbox, "find / \\( -path /proc -o -path /sys \\) -prune -o -type s -print 2>/dev/null",
                        timeout=20)
    # The engine's own socket is nowhere; the learner's docker talks to their proxy socket (sandbox/dockerproxy).
    docker_socket_found, _ = run_in(sandbox, "test -e /var/run/docker.sock -o -e /run/docker.sock", timeout=5)
    _, docker_host = run_in(sandbox, "echo \"$DOCKER_HOST\"", timeout=5)
    on_the_gateway.close()

    # …and no sandbox gets through.
    assert all(outcome != "connected" for outcome in outcomes.values()), f"{outcomes}: is ops/firewall.sh installed?"
    assert "tmux" in sockets, sockets  # the search works: it finds tmux's own socket
    assert all(line.startswith("/run/sandcloud/docker/") for line in sockets.split() if "docker" in line), sockets
    assert docker_socket_found != 0
    assert docker_host.strip() == "unix:///run/sandcloud/docker/docker.sock"
    assert_host_and_bystander_answer(bystander)


def test_the_aws_edge_is_the_one_host_service_a_sandbox_reaches(start_sandbox, learner, bystander, aws_edge,
                                                                 host_service, unfenced_container):
    sandbox = start_sandbox(learner)
    _, gateway = network_addresses(sandbox)
    redis_port = int(settings.REDIS_URL.rsplit(":", 1)[1].split("/")[0])
    # Beside the edge on its own address (a port outside the hole), and the edge's port on the learner's gateway.
    beside_the_edge = socket.create_server((aws_edge.address, 0))
    edge_port_on_the_gateway = socket.create_server((gateway, aws_edge.port))
    services_there = {"a server beside the edge": (aws_edge.address, beside_the_edge.getsockname()[1]),
                      "a service on every host address, at the edge's address": (aws_edge.address, host_service),
                      "the edge's port on the learner's gateway": (gateway, aws_edge.port)}
    # A container outside the fence reaches every one of them, so only the fence can stop a sandbox…
    control_id, control_uid, _ = unfenced_container
    from_the_control = {name: _connect_from_container(control_id, control_uid, *where)
                        for name, where in services_there.items()}

    outcomes = {name: tcp_connect_from(sandbox, *where) for name, where in services_there.items()}
    outcomes["redis at the edge's address"] = tcp_connect_from(sandbox, aws_edge.address, redis_port)
    to_the_edge = tcp_connect_from(sandbox, "aws.sandcloud.internal", aws_edge.port)
    beside_the_edge.close()
    edge_port_on_the_gateway.close()

    # …and it stops everything but the AWS edge, refused at once.
    assert set(from_the_control.values()) == {"connected"}, from_the_control
    assert to_the_edge == "connected"
    assert set(outcomes.values()) == {"ECONNREFUSED"}, outcomes
    assert_host_and_bystander_answer(bystander)


def test_the_aws_edge_serves_no_page_of_the_site(start_sandbox, learner, aws_edge, client):
    sandbox = start_sandbox(learner)
    edge = f"http://aws.sandcloud.internal:{aws_edge.port}"
    site_paths = ["/", "/accounts/login/", "/admin/login/", "/api/sandboxes/", "/aws-keys/", "/lessons/",
                  "/static/sandcloud/polling.js"]

    answers = {path: run_in(sandbox, f"curl -s -o /dev/null -w '%{{http_code}} %{{content_type}}' {edge}{path}",
                            timeout=15)[1] for path in site_paths}
    _, as_the_site = run_in(sandbox, f"curl -s -o /dev/null -w '%{{http_code}}' -H 'Host: 127.0.0.1:8000' "
                                     f"{edge}/accounts/login/", timeout=15)
    _, unsigned = run_in(sandbox, f"curl -s -X POST -d 'Action=GetCallerIdentity&Version=2011-06-15' {edge}/aws/",
                         timeout=15)

    # The site serves those paths (the sign-in page, for one)…
    assert client.get("/accounts/login/").status_code == 200
    # …the edge answers each with a plain-text 404, a Host naming the site with a 400, and /aws in AWS's words.
    assert answers == {path: "404 text/plain; charset=utf-8" for path in site_paths}
    assert as_the_site == "400"
    assert "<Code>MissingAuthenticationToken</Code>" in unsigned


def test_the_warm_pool_is_fenced_while_it_waits_and_after_a_claim(start_sandbox, learner, host_service, outside,
                                                                   monkeypatch):
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 2)
    assert services.warm_pool_fill() == 2
    waiting, neighbour = WarmContainer.objects.order_by("created_at", "pk")
    _, pool_gateway = _addresses(engine().api.inspect_container(waiting.container_id))
    neighbour_ip, _ = _addresses(engine().api.inspect_container(neighbour.container_id))
    engine().exec(neighbour.container_id, ["bash", "-c", "setsid timeout 20 python3 -m http.server 8080 "
                                                         ">/dev/null 2>&1 </dev/null &"],
                  user=f"{neighbour.uid}:{LEARNER_GID}", timeout=5)
    _wait_until_listening(neighbour_ip, 8080)  # the host reaches the neighbour's server

    while_waiting = {
        "the host via the pool's gateway": _connect_from_container(waiting.container_id, waiting.uid, pool_gateway,
                                                                   host_service),
        "another pooled container": _connect_from_container(waiting.container_id, waiting.uid, neighbour_ip, 8080),
        "outside": _connect_from_container(waiting.container_id, waiting.uid, outside.address, outside.port),
    }
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 1)
    sandbox = start_sandbox(learner)  # claims the container that waited longest
    _, gateway = network_addresses(sandbox)
    after_the_claim = {"the host via the learner's gateway": tcp_connect_from(sandbox, gateway, host_service),
                       "outside": tcp_connect_from(sandbox, outside.address, outside.port)}

    assert sandbox.container_id == waiting.container_id
    assert while_waiting["outside"] == after_the_claim["outside"] == "ENETUNREACH", (while_waiting, after_the_claim)
    assert all(outcome != "connected" for outcome in [*while_waiting.values(), *after_the_claim.values()]), \
        (while_waiting, after_the_claim)


def test_a_sandbox_has_no_ipv6_to_go_around_the_fence_with(start_sandbox, learner, monkeypatch):
    # One sandbox claimed from the pool (it gained its learner-network interface after it started) and one cold.
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 1)
    assert services.warm_pool_fill() == 1
    claimed = start_sandbox(learner)
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 0)
    services.warm_pool_drain()  # the claim refilled the pool, and a pooled container is always claimed
    cold = start_sandbox(learner)
    # The learner's bridge has an IPv6 link-local address on the host, and a host service listens on every IPv6 one.
    bridge = bridge_interface_name(learner_network_name(INSTANCE, learner.pk))
    link_local = subprocess.run(["ip", "-6", "-o", "addr", "show", "dev", bridge, "scope", "link"], capture_output=True,
                                text=True, check=True, timeout=5).stdout.split()[3].split("/")[0]
    server = socket.create_server(("::", 0), family=socket.AF_INET6)
    port = server.getsockname()[1]

    found = {}
    for sandbox in (claimed, cold):
        _, addresses = run_in(sandbox, "cat /proc/net/if_inet6; ip -6 route; ip -6 addr", timeout=5)
        _, interface = run_in(sandbox, "ip -o -4 addr show scope global | awk '{print $2}'", timeout=5)
        code, outcome = services.sandbox_exec(
            sandbox=sandbox, command=_connect_script(f"{link_local}%{interface.strip()}", port, family="AF_INET6"))
        found[sandbox.pk] = (addresses.strip(), outcome.strip())
    server.close()

    assert claimed.from_warm_pool and not cold.from_warm_pool
    assert all(addresses == "" and outcome != "connected" for addresses, outcome in found.values()), found


def test_the_fence_check_finds_every_rule_ops_firewall_sh_makes():
    assert fence_missing_rules(fence=Fence()) == []


def test_the_fence_check_names_each_missing_rule():
    # After a reboot nothing is there; after `iptables -F INPUT` and a Docker restart, the chains are there but no
    # packet from a sandbox bridge is sent to them (a bridge pattern nothing jumps on stands in for that).
    after_a_reboot = fence_missing_rules(fence=FENCE_AFTER_A_REBOOT)
    jumps_gone = fence_missing_rules(fence=Fence(bridges="sandcl-gone+"))

    assert after_a_reboot == [
        "iptables chain INPUT lacks `-A INPUT -i sandcl-+ -j SANDCLOUD-GONE-ALLOW`",
        "iptables chain INPUT lacks `-A INPUT -i sandcl-+ -j SANDCLOUD-GONE-INPUT`",
        "iptables chain DOCKER-USER lacks `-A DOCKER-USER -i sandcl-+ -j SANDCLOUD-GONE-FORWARD`",
        "iptables chain SANDCLOUD-GONE-ALLOW does not exist",
        "iptables chain SANDCLOUD-GONE-INPUT does not exist",
        "iptables chain SANDCLOUD-GONE-FORWARD does not exist",
    ]
    assert jumps_gone == ["iptables chain INPUT lacks `-A INPUT -i sandcl-gone+ -j SANDCLOUD-ALLOW`",
                          "iptables chain INPUT lacks `-A INPUT -i sandcl-gone+ -j SANDCLOUD-INPUT`",
                          "iptables chain DOCKER-USER lacks `-A DOCKER-USER -i sandcl-gone+ -j SANDCLOUD-FORWARD`"]


def test_the_fence_check_refuses_while_the_hole_to_the_aws_edge_is_missing_or_wrong():
    # As on a host whose firewall a script from before the AWS edge made, or one made for other edge ports.
    without_the_hole = Fence(allow_chain="SANDCLOUD-GONE-ALLOW")
    other_ports = Fence(edge_ports="4566")

    with pytest.raises(fence.FenceMissing) as refusal:
        fence.fence_verify(fence=without_the_hole)

    address = host_gateway_address()
    assert refusal.value.missing == ["iptables chain INPUT lacks `-A INPUT -i sandcl-+ -j SANDCLOUD-GONE-ALLOW`",
                                     "iptables chain SANDCLOUD-GONE-ALLOW does not exist"]
    assert fence_missing_rules(fence=other_ports) == [
        f"iptables chain SANDCLOUD-ALLOW holds ['-d {address}/32 -p tcp -m tcp --dport 4566:4581 -j ACCEPT'] "
        f"instead of ['-d {address}/32 -p tcp -m tcp --dport 4566 -j ACCEPT']"]


def test_nothing_is_handed_out_while_the_fence_is_missing(start_sandbox, learner, other_learner, monkeypatch, caplog):
    # Given, made while the fence held, another learner's sandbox and a warm container waiting to be claimed…
    real_fence = fence.SANDBOX_FENCE
    bystander = start_sandbox(other_learner)
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 1)
    assert services.warm_pool_fill() == 1
    warm = WarmContainer.objects.get()
    # …and a start accepted then, still waiting for a worker.
    queued = Sandbox.objects.create(owner=learner, image=settings.SANDCLOUD["WORKSTATION_IMAGE"], memory_mb=256,
                                    cpus=0.5, pids_limit=256, uid=services._free_uid(services.COLD_UIDS),
                                    expires_at=timezone.now() + timedelta(hours=1))

    # When the fence is gone (a reboot) and the learner asks for a sandbox, the worker starts the queued one and
    # beat refills the pool…
    monkeypatch.setattr(fence, "SANDBOX_FENCE", FENCE_AFTER_A_REBOOT)
    with pytest.raises(services.SandboxError) as refusal:
        services.sandbox_request(owner=learner)
    services.sandbox_provision(sandbox_id=queued.pk)
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 2)
    refilled = services.warm_pool_fill()

    # …then all three refuse: the learner is told in plain words, the operator what is missing and how to fix it…
    assert str(refusal.value) == ("Sandcloud cannot start sandboxes safely right now and an operator has been "
                                  "alerted. Please try again in a few minutes.")
    queued.refresh_from_db()
    assert queued.state == State.FAILED and queued.failure_reason == str(refusal.value)
    assert refilled == 0
    errors = [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]
    assert any("SANDCLOUD-GONE-INPUT" in message and "ops/firewall.sh" in message for message in errors), errors
    # …nothing was created, and the warm container was neither handed out nor lost;
    containers = engine().api.containers(all=True, filters={"label": f"sandcloud.instance={INSTANCE}"})
    assert sorted(c["Id"] for c in containers) == sorted([bystander.container_id, warm.container_id])
    assert list(WarmContainer.objects.values_list("container_id", flat=True)) == [warm.container_id]
    assert not Sandbox.objects.filter(owner=learner).exclude(pk=queued.pk).exists()
    network = learner_network_name(INSTANCE, learner.pk)
    assert [n for n in engine().api.networks(names=[network]) if n["Name"] == network] == []
    assert_host_and_bystander_answer(bystander)
    # and once ops/firewall.sh has run again, the same learner gets that warm container.
    monkeypatch.setattr(fence, "SANDBOX_FENCE", real_fence)
    monkeypatch.setitem(settings.SANDCLOUD, "WARM_POOL_SIZE", 1)
    assert start_sandbox(learner).container_id == warm.container_id
