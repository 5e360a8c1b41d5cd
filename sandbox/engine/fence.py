"""Whether ops/firewall.sh's fence around the learner bridges is in place, checked before a sandbox is handed out."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass

from ..policy import BRIDGE_PREFIX
from .docker import EngineError

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
    bridges: str = BRIDGE_PREFIX + "+"

    def jumps(self) -> list[tuple[str, str, bool]]:
        """(chain, rule, ordered): the rules that send a sandbox's packets into the fence. An ordered one must come
        before any rule of its chain that would accept a sandbox's new connections, or the packet never reaches it."""
        # FORWARD belongs to Docker, which keeps DOCKER-USER its first jump by deleting and re-inserting it (and its
        # own rules, each for one bridge) whenever it creates a network: only its presence is checked.
        return [("INPUT", f"-i {self.bridges} -j {self.input_chain}", True),
                ("FORWARD", "-j DOCKER-USER", False),
                ("DOCKER-USER", f"-i {self.bridges} -j {self.forward_chain}", True)]

    def chains(self) -> dict[str, list[str]]:
        """The fence's own chains, rule for rule."""
        return {self.input_chain: ["-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
                                   "-j REJECT --reject-with icmp-port-unreachable"],
                self.forward_chain: ["-m physdev --physdev-is-bridged -j RETURN",
                                     "-j REJECT --reject-with icmp-net-unreachable"]}


SANDBOX_FENCE = Fence()

_verified_at: dict[Fence, float] = {}


def fence_missing_rules(*, fence: Fence) -> list[str]:
    """What the host's IPv4 filter table lacks of `fence`, one operator-readable line per missing rule.

    Docker deletes and re-inserts its FORWARD jump whenever it creates a network, so one reading can miss it for an
    instant: only what is missing from every one of five readings, 0.3 s apart, counts (a busy host can take that
    long to put a rule back; a refusal is worth the wait). IPv6 is not checked:
    sandboxes have no IPv6 at all (policy.py disables it in their network namespace).
    """
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
    """What an `iptables -S` listing of the filter table lacks of `fence`, one line per missing rule."""
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
