"""Whether ops/firewall.sh's fence around the learner bridges is in place, checked before a sandbox is handed out."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, replace

from django.conf import settings

from ..policy import BRIDGE_PREFIX
from .docker import EngineError
from .host_gateway import host_gateway_address

log = logging.getLogger(__name__)

# A verified fence is trusted this long, so a burst of requests costs one `iptables -S`; a missing one is re-read on
# every request, so the operator's fix takes effect at once.
CACHE_SECONDS = 5.0

FIX = ("run `sudo bash ops/firewall.sh` (ops/services.sh does it at start-up) and make the rules persistent as the "
       "README's production section says")


class FenceMissing(EngineError):
    """The firewall around sandbox networks is not in place: str() is for the learner, `missing` for the operator."""

    def __init__(self, missing: list[str]):
        super().__init__("Sandcloud cannot start sandboxes safely right now and an operator has been alerted. "
                         "Please try again in a few minutes.")
        self.missing = missing


@dataclass(frozen=True)
class Fence:
    """The rules ops/firewall.sh makes, as `iptables -S` prints them (the names are arguments so tests can point the
    check at chains that do not exist, as after a reboot, without touching the real ones)."""

    input_chain: str = "SANDCLOUD-INPUT"
    forward_chain: str = "SANDCLOUD-FORWARD"
    # The fence's one hole: what sandboxes may open connections to on the host (the AWS edge listeners), consulted
    # before the input chain refuses everything else.
    allow_chain: str = "SANDCLOUD-ALLOW"
    bridges: str = BRIDGE_PREFIX + "+"
    # The hole's address and ports (iptables' "4566:4581"); left empty they are this host's, filled in by
    # fence_missing_rules: the engine's host-gateway address and SANDCLOUD_AWS_EDGE_PORTS.
    edge_address: str = ""
    edge_ports: str = ""

    def jumps(self) -> list[tuple[str, str, bool]]:
        """(chain, rule, ordered): the rules that send a sandbox's packets into the fence. An ordered one must come
        before any rule of its chain that would accept a sandbox's new connections, or the packet never reaches it."""
        # FORWARD belongs to Docker, which keeps DOCKER-USER its first jump by deleting and re-inserting it (and its
        # own rules, each for one bridge) whenever it creates a network: only its presence is checked.
        return [("INPUT", self.allow_jump, True),
                ("INPUT", self.input_jump, True),
                ("FORWARD", "-j DOCKER-USER", False),
                ("DOCKER-USER", f"-i {self.bridges} -j {self.forward_chain}", True)]

    @property
    def allow_jump(self) -> str:
        return f"-i {self.bridges} -j {self.allow_chain}"

    @property
    def input_jump(self) -> str:
        return f"-i {self.bridges} -j {self.input_chain}"

    def chains(self) -> dict[str, list[str]]:
        """The fence's own chains, rule for rule."""
        return {self.allow_chain: [f"-d {self.edge_address}/32 -p tcp -m tcp --dport {self.edge_ports} -j ACCEPT"],
                self.input_chain: ["-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
                                   "-j REJECT --reject-with icmp-port-unreachable"],
                self.forward_chain: ["-m physdev --physdev-is-bridged -j RETURN",
                                     "-j REJECT --reject-with icmp-net-unreachable"]}


def edge_ports(first: int, last: int) -> str:
    """A port range as `iptables -S` prints it."""
    return str(first) if first == last else f"{first}:{last}"


def _on_this_host(fence: Fence) -> Fence:
    """`fence` with the hole it leaves to the host filled in. Raises HostGatewayUnknown when the engine cannot say."""
    return replace(fence, edge_address=fence.edge_address or host_gateway_address(),
                   edge_ports=fence.edge_ports or edge_ports(*settings.SANDCLOUD_AWS_EDGE_PORTS))


SANDBOX_FENCE = Fence()

_verified_at: dict[Fence, float] = {}


def fence_missing_rules(*, fence: Fence) -> list[str]:
    """What the host's IPv4 filter table lacks of `fence`, one operator-readable line per missing rule.

    Docker deletes and re-inserts its FORWARD jump whenever it creates a network, so one reading can miss it for an
    instant: only what is missing from every one of five readings, 0.3 s apart, counts (a busy host can take that
    long to put a rule back; a refusal is worth the wait). IPv6 is not checked:
    sandboxes have no IPv6 at all (policy.py disables it in their network namespace).
    """
    try:
        fence = _on_this_host(fence)
    except EngineError as error:
        return [f"the address of the fence's hole to the AWS endpoint is unknown: {getattr(error, 'detail', error)}"]
    missing = _missing_now(fence)
    for _ in range(4):
        if not missing:
            break
        time.sleep(0.3)
        again = _missing_now(fence)
        missing = [line for line in missing if line in again]
    return missing


def _missing_now(fence: Fence) -> list[str]:
    try:
        listing = _iptables_listing()
    except (OSError, subprocess.SubprocessError) as error:
        return [f"the firewall could not be read ({error}); the check runs `iptables -S`, which needs root or "
                f"passwordless sudo"]
    return missing_from_listing(listing, fence=fence)


def missing_from_listing(listing: str, *, fence: Fence) -> list[str]:
    """What an `iptables -S` listing of the filter table lacks of `fence` (its hole's address and ports filled in),
    one line per missing rule."""
    rules: dict[str, list[str]] = {}  # chain: its rules, each as printed after `-A <chain> `
    for line in listing.splitlines():
        flag, _, rest = line.partition(" ")
        chain, _, rule = rest.partition(" ")
        if flag in ("-P", "-N"):
            rules.setdefault(chain, [])
        elif flag == "-A":
            rules.setdefault(chain, []).append(rule)
    missing = []
    for chain, rule, ordered in fence.jumps():
        chain_rules = rules.get(chain, [])
        if rule not in chain_rules:
            missing.append(f"iptables chain {chain} lacks `-A {chain} {rule}`")
            continue
        accepted_before = [r for r in chain_rules[:chain_rules.index(rule)] if _accepts_from_a_sandbox(r)]
        if ordered and accepted_before:
            missing.append(f"iptables chain {chain} accepts packets (`-A {chain} {accepted_before[0]}`) before "
                           f"`-A {chain} {rule}`")
    inputs = rules.get("INPUT", [])
    if fence.allow_jump in inputs and fence.input_jump in inputs \
            and inputs.index(fence.allow_jump) > inputs.index(fence.input_jump):
        missing.append(f"iptables chain INPUT sends sandbox packets to {fence.input_chain}, which refuses them, "
                       f"before {fence.allow_chain}: `-A INPUT {fence.allow_jump}` must come first")
    for chain, expected in fence.chains().items():
        if chain not in rules:
            missing.append(f"iptables chain {chain} does not exist")
        elif rules[chain] != expected:
            missing.append(f"iptables chain {chain} holds {rules[chain]} instead of {expected}")
    return missing


def _accepts_from_a_sandbox(rule: str) -> bool:
    """Whether an iptables rule could accept a new connection coming in from a sandbox bridge."""
    words = rule.split()
    if words[-2:] != ["-j", "ACCEPT"]:
        return False
    for option in ("--ctstate", "--state"):
        if option in words and set(words[words.index(option) + 1].split(",")) <= {"ESTABLISHED", "RELATED"}:
            return False  # replies only, which the fence lets through too
    if "-i" not in words or words[words.index("-i") - 1] == "!":
        return True
    interface = words[words.index("-i") + 1]
    if interface.endswith("+"):
        return BRIDGE_PREFIX.startswith(interface[:-1]) or interface[:-1].startswith(BRIDGE_PREFIX)
    return interface.startswith(BRIDGE_PREFIX)


def fence_verify(*, fence: Fence | None = None) -> None:
    """Raises FenceMissing (after logging what is missing and how to fix it) unless the fence is in place."""
    fence = fence or SANDBOX_FENCE
    if time.monotonic() - _verified_at.get(fence, float("-inf")) < CACHE_SECONDS:
        return
    missing = fence_missing_rules(fence=fence)
    if missing:
        _verified_at.pop(fence, None)
        log.error("refusing to provision sandboxes: their networks are not fenced off from the host: %s. Fix: %s.",
                  "; ".join(missing), FIX)
        raise FenceMissing(missing)
    _verified_at[fence] = time.monotonic()


def _iptables_listing() -> str:
    command = [shutil.which("iptables") or "/usr/sbin/iptables", "-w", "5", "-t", "filter", "-S"]
    if os.geteuid() != 0:
        command = ["sudo", "-n", *command]  # as ops/run.sh does: works where the operator allowed it without a password
    done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        raise subprocess.SubprocessError(done.stderr.strip() or f"exit code {done.returncode}")
    return done.stdout
