"""What a workstation gets of the learner's Docker: its uid's socket directory, mounted read-only, and DOCKER_HOST."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings


def learner_socket_dir(uid: int) -> Path:
    """The host directory holding `uid`'s socket, made here; the proxy listens in every such directory it finds."""
    path = Path(settings.SANDCLOUD_DOCKER_PROXY["DIR"]) / f"uid-{uid}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def workstation_docker(*, uid: int, runtime: str) -> tuple[tuple[tuple[str, str], ...], dict[str, str]]:
    """(binds, environment) for a workstation running as `uid`: none when the proxy is off, or under gVisor, whose
    sandbox cannot connect to a socket on the host (runsc refuses host Unix sockets unless told otherwise)."""
    config = settings.SANDCLOUD_DOCKER_PROXY
    if not config["ENABLED"] or runtime != "runc":
        return (), {}
    # A directory, not the socket file: a proxy restarted makes a new socket, which a file mount would not see.
    binds = ((str(learner_socket_dir(uid)), config["MOUNT"]),)
    return binds, {"DOCKER_HOST": f"unix://{config['MOUNT']}/docker.sock"}
