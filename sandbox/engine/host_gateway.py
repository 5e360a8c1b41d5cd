"""The host's address that Docker's `host-gateway` names inside containers: where sandboxes reach the AWS edge."""
from __future__ import annotations

import fcntl
import ipaddress
import socket
import struct

import requests
from docker.errors import APIError, NotFound

from .docker import EngineError, engine

_SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address

_address: str | None = None


class HostGatewayUnknown(EngineError):
    """The engine's default bridge, and so the address sandboxes reach the host by, could not be found."""

    def __init__(self, detail: str):
        super().__init__("Sandcloud cannot reach its AWS endpoint from sandboxes right now. Please try again later.")
        self.detail = detail


def host_gateway_address() -> str:
    """The host's IPv4 address on the engine's default bridge (docker0, normally 172.17.0.1), read once per process.

    dockerd writes this address for `host-gateway` in a container's /etc/hosts (unless it was started with
    --host-gateway-ip, which Sandcloud does not support). Every sandbox reaches it through its default route, whichever
    learner network it is on; ops/firewall.sh reads it the same way, from the same two places.
    """
    global _address
    if _address is None:
        _address = _read_address()
    return _address


def _read_address() -> str:
    try:
        bridge = engine().api.inspect_network("bridge")
    except NotFound as error:
        raise HostGatewayUnknown("the engine has no default bridge network (dockerd --bridge=none?)") from error
    except (APIError, requests.exceptions.RequestException) as error:
        raise HostGatewayUnknown(f"the engine did not describe its default bridge: {error}") from error
    for pool in (bridge.get("IPAM") or {}).get("Config") or []:
        gateway = pool.get("Gateway", "")
        if gateway and ipaddress.ip_address(gateway).version == 4:
            return gateway  # set when dockerd was given --bip
    # Otherwise the engine does not say: the bridge device's own address is the gateway it hands containers.
    device = (bridge.get("Options") or {}).get("com.docker.network.bridge.name", "docker0")
    try:
        return _interface_address(device)
    except OSError as error:
        raise HostGatewayUnknown(f"the default bridge's device {device} has no IPv4 address on this host "
                                 f"({error.strerror or error})") from error


def _interface_address(device: str) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        answer = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, struct.pack("256s", device.encode()[:15]))
    return socket.inet_ntoa(answer[20:24])
