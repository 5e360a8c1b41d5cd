"""DNS is no way out: a sandbox resolves its learner's own containers and nothing else, whatever the host's resolver."""
from __future__ import annotations

import io
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field

import pytest
from django.conf import settings

from sandbox import services
from sandbox.engine.docker import DockerEngine
from sandbox.engine.images import LEARNER_GID, LEARNER_UID_FIRST
from sandbox.policy import ContainerSpec, bridge_interface_name, labels_for, subnet_candidates
from tests.conftest import run_in

from .observe import assert_host_and_bystander_answer, inspect

pytestmark = pytest.mark.docker

INSTANCE = settings.SANDCLOUD["INSTANCE"]
# Every name a sandbox asks the outside for is a fresh one under a domain that exists nowhere, so a reply can only
# come from the test's own resolver.
OUTSIDE_DOMAIN = "sandcloud-dns-test.invalid"
ANSWER = "203.0.113.7"  # TEST-NET-3: what the test's resolver says every name is


@dataclass
class LoopbackResolver:
    """A DNS server on a host loopback address, as systemd-resolved (127.0.0.53) or dnsmasq would be: it answers every
    A query with ANSWER and remembers the names it was asked."""

    address: str
    sock: socket.socket
    asked: list[str] = field(default_factory=list)

    def serve(self) -> None:
        while True:
            try:
                query, peer = self.sock.recvfrom(512)
            except OSError:
                return  # closed: the test is over
            labels, at = [], 12
            while query[at]:
                labels.append(query[at + 1:at + 1 + query[at]].decode())
                at += query[at] + 1
            self.asked.append(".".join(labels))
            header = query[:2] + b"\x81\x80" + query[4:6] + b"\x00\x01\x00\x00\x00\x00"
            answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton(ANSWER)
            self.sock.sendto(header + query[12:at + 5] + answer, peer)


@pytest.fixture
def loopback_resolver():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(20):
        address = f"127.53.{os.getpid() % 250}.{uuid.uuid4().int % 250 + 1}"
        try:
            sock.bind((address, 53))
            break
        except OSError:
            continue
    else:
        pytest.fail("no free port 53 on a 127.53.x.y address for the test's resolver")
    resolver = LoopbackResolver(address=address, sock=sock)
    thread = threading.Thread(target=resolver.serve, daemon=True)
    thread.start()
    yield resolver
    sock.close()
    thread.join(timeout=5)


def _idle_image_tar() -> bytes:
    """A root filesystem of the host's `sleep` and the libraries it links: all a container needs to idle in, so the
    second engine below starts in seconds instead of importing a workstation image."""
    sleep = shutil.which("sleep")
    linked = subprocess.run(["ldd", sleep], capture_output=True, text=True, check=True, timeout=10).stdout
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in [sleep, *re.findall(r"(/\S+\.so[.\d]*)", linked)]:
            tar.add(os.path.realpath(path), arcname=path.lstrip("/"))
    return buffer.getvalue()


@pytest.fixture
def engine_with_a_loopback_resolver(tmp_path, loopback_resolver):
    """The same dockerd as the platform's, on a host whose /etc/resolv.conf names a loopback resolver.

    The embedded DNS takes its upstream from the host's resolv.conf when a container starts, so reproducing the attack
    needs a host whose resolv.conf points at loopback; this one is that host's view, given to a second dockerd in a
    mount namespace of its own (the real file, everybody else's DNS and the platform's engine are untouched). It shares
    the host's network namespace, as dockerd always does: that is where the embedded DNS forwards loopback queries
    from. It makes no iptables rules of its own; its bridge is named like a sandbox's, so ops/firewall.sh's fence holds
    around it exactly as around the platform's.
    """
    dockerd, unshare = shutil.which("dockerd"), shutil.which("unshare")
    if not dockerd or not unshare:
        pytest.fail("this test starts a second dockerd with unshare(1); both must be installed (make test does)")
    (tmp_path / "resolv.conf").write_text(f"nameserver {loopback_resolver.address}\n")
    (tmp_path / "daemon.json").write_text("{}\n")
    url = f"unix://{tmp_path}/docker.sock"
    network_name = f"sandcloud-{INSTANCE}-dns-test"
    # Its default bridge is one the test makes: with `--bridge none` dockerd deletes the host's docker0 at start (it
    # shares the host's network namespace), which would break the platform's engine for everyone.
    default_bridge = bridge_interface_name(f"{network_name}-default")
    (default_subnet,) = subnet_candidates(pool="198.18.0.0/15", prefix=29, name=f"{INSTANCE}-default", count=1)
    gateway = str(next(ipaddress.ip_network(default_subnet).hosts()))
    for step in (["link", "add", default_bridge, "type", "bridge"],
                 ["addr", "add", f"{gateway}/29", "dev", default_bridge], ["link", "set", default_bridge, "up"]):
        subprocess.run(["ip", *step], capture_output=True, check=True, timeout=10)
    command = (f"mount --bind {tmp_path}/resolv.conf /etc/resolv.conf && exec {dockerd} "
               f"--config-file {tmp_path}/daemon.json --data-root {tmp_path}/root --exec-root {tmp_path}/exec "
               f"-H {url} --pidfile {tmp_path}/docker.pid --bridge {default_bridge} --iptables=false --ip-forward=false "
               f"--ip-masq=false --userland-proxy=false")
    with open(tmp_path / "dockerd.log", "wb") as log:
        daemon = subprocess.Popen([unshare, "--mount", "--propagation", "private", "sh", "-c", command],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    engine = DockerEngine(url=url, timeout=60, instance=INSTANCE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                engine.api.ping()
                break
            except Exception:  # noqa: BLE001 - not listening yet
                if daemon.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the second dockerd did not start: {(tmp_path / 'dockerd.log').read_text()[-2000:]}")
                time.sleep(0.2)
        engine.api.import_image_from_data(_idle_image_tar(), repository="sandcloud-dns-test", tag="1")
        # A range no Docker on this host hands out (RFC 2544's benchmarking block), one /29 per instance.
        subnet = subnet_candidates(pool="198.18.0.0/15", prefix=29, name=INSTANCE, count=1)
        engine.ensure_network(network_name, labels=labels_for(INSTANCE), subnets=subnet)
        yield engine, network_name
    finally:
        try:
            for container in engine.api.containers(all=True):
                engine.api.remove_container(container["Id"], force=True)
            engine.api.remove_network(network_name)
        except Exception:  # noqa: BLE001 - the daemon may be the thing that failed; the bridge is removed below
            pass
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=10)
        for bridge in (bridge_interface_name(network_name), default_bridge):
            subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False, timeout=10)
        shutil.rmtree(tmp_path, ignore_errors=True)


def _lookup_from_network_namespace(engine: DockerEngine, container_id: str, name: str) -> str:
    """Asks the container's resolver (Docker's embedded DNS at 127.0.0.11) for `name`, from inside its network
    namespace as any program of the learner would: "answered" with the address, "no answer", or the refusal code."""
    script = f"""
import socket, struct
labels = b"".join(bytes([len(part)]) + part.encode() for part in {name!r}.split("."))
query = struct.pack(">6H", 0x5c5c, 0x0100, 1, 0, 0, 0) + labels + b"\\0" + struct.pack(">2H", 1, 1)
resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
resolver.settimeout(2)
resolver.sendto(query, ("127.0.0.11", 53))
try:
    reply = resolver.recv(512)
except OSError:
    print("no answer")
else:
    answers = struct.unpack(">H", reply[6:8])[0]
    print("answered " + socket.inet_ntoa(reply[-4:]) if answers else "rcode %d" % (reply[3] & 15))
"""
    pid = engine.api.inspect_container(container_id)["State"]["Pid"]
    done = subprocess.run(["nsenter", "--target", str(pid), "--net", sys.executable, "-c", script],
                          capture_output=True, text=True, timeout=20, check=True)
    return done.stdout.strip()


def test_a_resolver_on_the_hosts_loopback_answers_no_sandbox(engine_with_a_loopback_resolver, loopback_resolver):
    engine, network = engine_with_a_loopback_resolver
    # A container the engine makes with its own defaults on the same internal network: the embedded DNS relays its
    # query from the host's namespace to the loopback resolver (CVE-2024-29018), which shows the setup reproduces it…
    plain = engine.client.containers.run("sandcloud-dns-test:1", ["/usr/bin/sleep", "600"], network=network,
                                         detach=True, name=f"sandcloud-{INSTANCE}-dns-test-plain")
    plain_name = f"plain-{uuid.uuid4().hex[:8]}.{OUTSIDE_DOMAIN}"
    assert _lookup_from_network_namespace(engine, plain.id, plain_name) == f"answered {ANSWER}"
    assert plain_name in loopback_resolver.asked

    # …while a sandbox, made from the platform's own container spec, gets no answer and the resolver hears nothing.
    sandbox_id = engine.run(ContainerSpec(
        name=f"sandcloud-{INSTANCE}-dns-test-sandbox", image="sandcloud-dns-test:1", uid=LEARNER_UID_FIRST,
        gid=LEARNER_GID, labels=labels_for(INSTANCE), limits=services.default_limits(), network=network,
        command=("/usr/bin/sleep", "600")))
    sandbox_name = f"sandbox-{uuid.uuid4().hex[:8]}.{OUTSIDE_DOMAIN}"
    outcome = _lookup_from_network_namespace(engine, sandbox_id, sandbox_name)

    assert not outcome.startswith("answered"), outcome
    assert sandbox_name not in loopback_resolver.asked, loopback_resolver.asked
    # Its neighbour on the same network still has a name it can be found by.
    plain.reload()
    assert _lookup_from_network_namespace(engine, sandbox_id, plain.name) == \
        "answered " + plain.attrs["NetworkSettings"]["Networks"][network]["IPAddress"]


def test_a_sandbox_resolves_its_learners_own_containers_and_nothing_else(start_sandbox, learner, bystander):
    first, second = start_sandbox(learner), start_sandbox(learner)
    second_name = inspect(second)["Name"].lstrip("/")
    (second_network,) = inspect(second)["NetworkSettings"]["Networks"].values()
    bystander_name = inspect(bystander)["Name"].lstrip("/")

    _, own = run_in(first, f"getent hosts {second_name}", timeout=10)
    other_code, other = run_in(bystander, f"getent hosts {second_name}", timeout=10)
    bystander_code, _ = run_in(first, f"getent hosts {bystander_name}", timeout=10)
    outside_code, outside = run_in(first, f"getent hosts www.{OUTSIDE_DOMAIN}", timeout=30)

    assert own.split() == [second_network["IPAddress"], second_name]
    assert other_code != 0 and bystander_code != 0, other  # another learner's names are not even visible
    assert outside_code != 0, outside
    assert_host_and_bystander_answer(bystander)
