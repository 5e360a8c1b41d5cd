"""The fence check's reading of `iptables -S` listings (pure logic; tests/security/test_network.py reads the host's)."""
from __future__ import annotations

from sandbox.engine.fence import Fence, edge_ports, missing_from_listing

# What ops/firewall.sh leaves on a host where Docker runs, as `iptables -S` prints it.
FENCED = """\
-P INPUT ACCEPT
-P FORWARD DROP
-P OUTPUT ACCEPT
-N DOCKER
-N DOCKER-USER
-N SANDCLOUD-ALLOW
-N SANDCLOUD-FORWARD
-N SANDCLOUD-INPUT
-A INPUT -i sandcl-+ -j SANDCLOUD-ALLOW
-A INPUT -i sandcl-+ -j SANDCLOUD-INPUT
-A INPUT -i lo -j ACCEPT
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A DOCKER-USER -i sandcl-+ -j SANDCLOUD-FORWARD
-A DOCKER-USER -j RETURN
-A SANDCLOUD-ALLOW -d 172.17.0.1/32 -p tcp -m tcp --dport 4566:4581 -j ACCEPT
-A SANDCLOUD-FORWARD -m physdev --physdev-is-bridged -j RETURN
-A SANDCLOUD-FORWARD -j REJECT --reject-with icmp-net-unreachable
-A SANDCLOUD-INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
-A SANDCLOUD-INPUT -j REJECT --reject-with icmp-port-unreachable
"""
# The fence on that host: its one hole is TCP to the host-gateway address on the edge listeners' ports.
FENCE = Fence(edge_address="172.17.0.1", edge_ports=edge_ports(4566, 4581))


def test_the_fence_ops_firewall_sh_makes_is_complete():
    assert missing_from_listing(FENCED, fence=FENCE) == []


def test_a_rule_that_accepts_before_the_jump_to_the_fence_opens_it():
    listing = FENCED.replace("-A INPUT -i sandcl-+ -j SANDCLOUD-INPUT\n",
                             "-A INPUT -p tcp --dport 8000 -j ACCEPT\n-A INPUT -i sandcl-+ -j SANDCLOUD-INPUT\n")

    assert missing_from_listing(listing, fence=FENCE) == [
        "iptables chain INPUT accepts packets (`-A INPUT -p tcp --dport 8000 -j ACCEPT`) before "
        "`-A INPUT -i sandcl-+ -j SANDCLOUD-INPUT`"]


def test_a_fence_chain_emptied_by_a_flush_is_missing():
    listing = "".join(line + "\n" for line in FENCED.splitlines() if not line.startswith("-A SANDCLOUD-INPUT"))

    assert missing_from_listing(listing, fence=FENCE) == [
        "iptables chain SANDCLOUD-INPUT holds [] instead of "
        "['-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN', '-j REJECT --reject-with icmp-port-unreachable']"]


def test_a_forward_chain_that_skips_docker_user_leaves_the_outside_unfenced():
    listing = FENCED.replace("-A FORWARD -j DOCKER-USER\n", "")

    assert missing_from_listing(listing, fence=FENCE) == ["iptables chain FORWARD lacks `-A FORWARD -j DOCKER-USER`"]


def test_rules_that_cannot_accept_a_sandboxs_new_connections_may_come_first():
    # Loopback, replies, and Docker reordering FORWARD around its own per-bridge rules while it creates a network.
    listing = FENCED.replace(
        "-A INPUT -i sandcl-+ -j SANDCLOUD-INPUT\n",
        "-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        "-A INPUT -i sandcl-+ -j SANDCLOUD-INPUT\n",
    ).replace("-A FORWARD -j DOCKER-USER\n",
              "-A FORWARD -i sandcl-1a2b3c4d -o sandcl-1a2b3c4d -j ACCEPT\n-A FORWARD -j DOCKER-USER\n")

    assert missing_from_listing(listing, fence=FENCE) == []


def test_an_accept_for_one_sandbox_bridge_before_the_jump_opens_the_fence_for_it():
    listing = FENCED.replace("-A INPUT -i sandcl-+ -j SANDCLOUD-INPUT\n",
                             "-A INPUT -i sandcl-1a2b3c4d -j ACCEPT\n-A INPUT -i sandcl-+ -j SANDCLOUD-INPUT\n")

    assert missing_from_listing(listing, fence=FENCE) == [
        "iptables chain INPUT accepts packets (`-A INPUT -i sandcl-1a2b3c4d -j ACCEPT`) before "
        "`-A INPUT -i sandcl-+ -j SANDCLOUD-INPUT`"]


def test_a_fence_without_its_hole_is_missing_the_hole():
    # As a host fenced by the ops/firewall.sh of before the AWS edge: sandboxes could not reach the endpoint.
    listing = "".join(line + "\n" for line in FENCED.splitlines() if "SANDCLOUD-ALLOW" not in line)

    assert missing_from_listing(listing, fence=FENCE) == [
        "iptables chain INPUT lacks `-A INPUT -i sandcl-+ -j SANDCLOUD-ALLOW`",
        "iptables chain SANDCLOUD-ALLOW does not exist"]


def test_a_hole_behind_the_refusal_is_no_hole():
    listing = FENCED.replace("-A INPUT -i sandcl-+ -j SANDCLOUD-ALLOW\n-A INPUT -i sandcl-+ -j SANDCLOUD-INPUT\n",
                             "-A INPUT -i sandcl-+ -j SANDCLOUD-INPUT\n-A INPUT -i sandcl-+ -j SANDCLOUD-ALLOW\n")

    assert missing_from_listing(listing, fence=FENCE) == [
        "iptables chain INPUT sends sandbox packets to SANDCLOUD-INPUT, which refuses them, before SANDCLOUD-ALLOW: "
        "`-A INPUT -i sandcl-+ -j SANDCLOUD-ALLOW` must come first"]


def test_a_wider_hole_than_the_edge_listeners_opens_the_fence():
    # Every port of the address, or another address than the edge's: each would let sandboxes reach host services.
    every_port = FENCED.replace("-p tcp -m tcp --dport 4566:4581 -j ACCEPT", "-j ACCEPT")
    another_address = FENCED.replace("-d 172.17.0.1/32", "-d 10.224.0.1/32")
    two_rules = FENCED.replace("-A SANDCLOUD-ALLOW -d 172.17.0.1/32 -p tcp -m tcp --dport 4566:4581 -j ACCEPT\n",
                               "-A SANDCLOUD-ALLOW -d 172.17.0.1/32 -p tcp -m tcp --dport 4566:4581 -j ACCEPT\n"
                               "-A SANDCLOUD-ALLOW -p tcp -m tcp --dport 6379 -j ACCEPT\n")

    assert [missing_from_listing(listing, fence=FENCE) for listing in (every_port, another_address, two_rules)] == [
        ["iptables chain SANDCLOUD-ALLOW holds ['-d 172.17.0.1/32 -j ACCEPT'] instead of "
         "['-d 172.17.0.1/32 -p tcp -m tcp --dport 4566:4581 -j ACCEPT']"],
        ["iptables chain SANDCLOUD-ALLOW holds ['-d 10.224.0.1/32 -p tcp -m tcp --dport 4566:4581 -j ACCEPT'] "
         "instead of ['-d 172.17.0.1/32 -p tcp -m tcp --dport 4566:4581 -j ACCEPT']"],
        ["iptables chain SANDCLOUD-ALLOW holds ['-d 172.17.0.1/32 -p tcp -m tcp --dport 4566:4581 -j ACCEPT', "
         "'-p tcp -m tcp --dport 6379 -j ACCEPT'] instead of "
         "['-d 172.17.0.1/32 -p tcp -m tcp --dport 4566:4581 -j ACCEPT']"],
    ]


def test_a_single_edge_port_reads_as_iptables_prints_it():
    assert edge_ports(4566, 4566) == "4566" and edge_ports(4566, 4581) == "4566:4581"
