"""Malformed and hostile Docker API requests on a learner's socket: refused by the proxy, the engine never asked."""
from __future__ import annotations

import http.client
import io
import json
import socket
import tarfile

import docker
import pytest


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("docker", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


def request(docker_cli, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    connection = UnixConnection(str(docker_cli.socket_path))
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, json.loads(data) if data.strip().startswith(b"{") else data


def raw(docker_cli, payload: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(docker_cli.socket_path))
        sock.sendall(payload)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
        return b"".join(chunks)


def engine_containers() -> int:
    return len(docker.from_env().api.containers(all=True))


def test_a_json_body_over_the_cap_is_refused_before_the_engine(ada_docker):
    before = engine_containers()
    huge = json.dumps({"Image": "sandcloud/python:3.11", "Env": ["X=" + "a" * (2 * 1024 * 1024)]}).encode()
    status, answer = request(ada_docker, "POST", "/v1.41/containers/create", huge,
                             {"Content-Type": "application/json"})
    assert status == 413 and "larger than 1 MB" in answer["message"]
    assert engine_containers() == before


@pytest.mark.parametrize("payload", [
    # Both framings at once (request smuggling), a chunk size that is not hex, a chunk longer than it says.
    b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\n",
    b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /v1.41/containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: -1\r\n\r\n{}",
    b"GET /v1.41/containers/json HTTP/1.1\r\nHost: d\r\n" + b"X-Junk: " + b"a" * 200_000 + b"\r\n\r\n",
], ids=["cl-and-te", "bad-chunk-size", "negative-length", "huge-header"])
def test_malformed_framing_is_answered_400_and_the_connection_closed(ada_docker, payload):
    before = engine_containers()
    # Connection: close, so the answer is followed by the end of the connection (the proxy keeps connections alive).
    answer = raw(ada_docker, payload.replace(b"Host: d\r\n", b"Host: d\r\nConnection: close\r\n", 1))
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
    assert engine_containers() == before


@pytest.mark.parametrize("path", [
    "/v1.41/containers/..%2F..%2Fimages/json", "/v1.41/containers/%2e%2e/json", "/v1.41/swarm/init",
    "/v1.41/plugins", "/v1.41/secrets", "/v1.41/images/get", "/v1.41/images/load", "/v1.41/commit",
    "/v1.41/session", "/v1.41/system/df", "/v1.41/images/prune", "/v1.41/build/prune",
])
def test_an_endpoint_the_proxy_does_not_know_is_refused(ada_docker, path):
    status, answer = request(ada_docker, "POST", path)
    assert status in (400, 403, 404), (status, answer)
    assert "message" in answer


def test_docker_cp_with_a_step_up_is_refused(ada_docker, tmp_path):
    ada_docker.ok("run", "-d", "--name", "target", "sandcloud/python:3.11", "sleep", "30")
    error = ada_docker.refused("cp", "target:/tmp/../../etc/shadow", str(tmp_path))
    assert "'..' step" in error


def _tar_with(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        archive.addfile(member, io.BytesIO(data))
    return out.getvalue()


@pytest.mark.parametrize("kind", ["absolute", "step-up", "link-out", "device"])
def test_an_archive_that_leads_out_is_refused_before_the_engine(ada_docker, kind):
    ada_docker.ok("run", "-d", "--name", "target", "sandcloud/python:3.11", "sleep", "30")
    member = tarfile.TarInfo({"absolute": "/etc/evil", "step-up": "../../evil"}.get(kind, "evil"))
    if kind == "link-out":
        member.type, member.linkname = tarfile.SYMTYPE, "/etc/shadow"
    elif kind == "device":
        member.type, member.devmajor, member.devminor = tarfile.CHRTYPE, 1, 3
    container = ada_docker.ok("inspect", "--format", "{{.Id}}", "target").strip()
    status, answer = request(ada_docker, "PUT", f"/v1.41/containers/{container}/archive?path=/tmp",
                             _tar_with(member), {"Content-Type": "application/x-tar"})
    assert status == 400 and "archive" in answer["message"], answer
    assert ada_docker.ok("exec", "target", "ls", "-A", "/tmp").strip() == ""


def test_a_build_context_with_a_link_to_a_host_path_is_refused(ada_docker, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM sandcloud/python:3.11\nCOPY secret /secret\n")
    (tmp_path / "secret").symlink_to("/etc/shadow")
    error = ada_docker.refused("build", "-t", "sneaky:1", str(tmp_path))
    assert "link that leads outside" in error


def test_a_build_context_over_the_cap_is_refused_with_advice(ada_docker, tmp_path, settings):
    (tmp_path / "Dockerfile").write_text("FROM sandcloud/python:3.11\n")
    (tmp_path / "big.bin").write_bytes(b"\0" * (51 * 1024 * 1024))
    error = ada_docker.refused("build", "-t", "big:1", str(tmp_path))
    assert "larger than 50 MB" in error and ".dockerignore" in error


def test_a_builds_run_step_is_fenced_like_the_learners_containers(ada_docker, tmp_path):
    """A server on the host's side of the learner's bridge (where the platform listens) is out of reach of RUN."""
    from sandbox.engine.host_gateway import host_gateway_address

    address = host_gateway_address()
    with socket.create_server((address, 0)) as listener:
        port = listener.getsockname()[1]
        (tmp_path / "Dockerfile").write_text(
            "FROM sandcloud/python:3.11\n"
            f"RUN python3 -c \"import socket; socket.create_connection(('{address}', {port}), timeout=3); "
            f"print('REA' + 'CHED')\"\n")
        done = ada_docker.run("build", "-t", "escape:1", str(tmp_path))
    output = done.stdout.decode() + done.stderr.decode()
    assert done.returncode != 0 and "REACHED" not in output and "Connection refused" in output, output
