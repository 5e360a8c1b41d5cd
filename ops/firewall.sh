#!/usr/bin/env bash
# Fences Sandcloud's learner bridges off from the host and the outside world. Idempotent: run it after dockerd starts.
#
# Docker 20.10's internal networks drop forwarded traffic silently but still give every container a default route to
# the bridge's gateway address, which is the host itself: any host service listening on 0.0.0.0 (or a future one)
# would be reachable from a sandbox. These rules touch only bridges named sandcl-* (sandbox/policy.py BRIDGE_PREFIX):
#   - to the host: only replies to connections the host opened (e.g. a proxy into a sandbox) come back in;
#   - routed anywhere else (the internet, docker0, another learner's bridge): refused at once with "network unreachable";
#   - traffic between containers on the same bridge is left to Docker (icc on learner networks, off on the pool);
#   - one hole (SANDCLOUD-ALLOW, consulted first): new TCP connections to the AWS edge listeners (`manage.py awsedge`),
#     on the host's address Docker calls host-gateway (docker0's, e.g. 172.17.0.1) and the ports
#     SANDCLOUD_AWS_EDGE_PORTS (default 4566-4581, one per Sandcloud install on the host) alone.
# sandbox/engine/fence.py reads these rules back (`iptables -S`) before every sandbox is handed out and refuses
# while any is missing: change both together. Nothing here survives a reboot or a firewall reload by itself; the
# README's production section runs this script from systemd after docker.service.
set -euo pipefail
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
bridges="sandcl-+"
edge_ports="${SANDCLOUD_AWS_EDGE_PORTS:-4566-4581}"
edge_ports="${edge_ports/-/:}"

apply() {
  local tool=$1 net_unreachable=$2
  command -v "$tool" >/dev/null 2>&1 || return 0
  $sudo "$tool" -N SANDCLOUD-INPUT 2>/dev/null || $sudo "$tool" -F SANDCLOUD-INPUT
  $sudo "$tool" -A SANDCLOUD-INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
  $sudo "$tool" -A SANDCLOUD-INPUT -j REJECT
  $sudo "$tool" -N SANDCLOUD-FORWARD 2>/dev/null || $sudo "$tool" -F SANDCLOUD-FORWARD
  $sudo "$tool" -A SANDCLOUD-FORWARD -m physdev --physdev-is-bridged -j RETURN
  $sudo "$tool" -A SANDCLOUD-FORWARD -j REJECT --reject-with "$net_unreachable"
  $sudo "$tool" -C INPUT -i "$bridges" -j SANDCLOUD-INPUT 2>/dev/null \
    || $sudo "$tool" -I INPUT 1 -i "$bridges" -j SANDCLOUD-INPUT
  # Docker re-inserts its own FORWARD jumps at the top whenever it creates a network, but never touches DOCKER-USER,
  # which it always consults first: the forwarding fence lives there (created here when dockerd has not made it).
  $sudo "$tool" -N DOCKER-USER 2>/dev/null || true
  $sudo "$tool" -C FORWARD -j DOCKER-USER 2>/dev/null || $sudo "$tool" -I FORWARD 1 -j DOCKER-USER
  $sudo "$tool" -C FORWARD -i "$bridges" -j SANDCLOUD-FORWARD 2>/dev/null \
    && $sudo "$tool" -D FORWARD -i "$bridges" -j SANDCLOUD-FORWARD  # where an earlier version of this script put it
  $sudo "$tool" -C DOCKER-USER -i "$bridges" -j SANDCLOUD-FORWARD 2>/dev/null \
    || $sudo "$tool" -I DOCKER-USER 1 -i "$bridges" -j SANDCLOUD-FORWARD
}

# The host's address on Docker's default bridge, which containers' `host-gateway` names: the gateway dockerd was given
# (--bip), else the bridge device's own address. sandbox/engine/host_gateway.py reads it the same way.
host_gateway_address() {
  local gateway device
  gateway=$(docker network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}} {{end}}' \
    | tr ' ' '\n' | grep -m1 -E '^[0-9.]+$' || true)
  if [ -z "$gateway" ]; then
    device=$(docker network inspect bridge --format '{{index .Options "com.docker.network.bridge.name"}}')
    gateway=$(ip -4 -o addr show dev "${device:-docker0}" | awk '{ split($4, a, "/"); print a[1]; exit }')
  fi
  [ -n "$gateway" ] && echo "$gateway"
}

allow_edge() {
  local address
  address=$(host_gateway_address) || {
    echo "    the Docker engine's default bridge address could not be read: sandboxes cannot reach the AWS endpoint" \
         "(the fence itself is in place; run this script again once dockerd answers)" >&2
    return 1
  }
  # Rebuilt only when it differs, so running the script again never closes the hole for an instant.
  local wanted="-A SANDCLOUD-ALLOW -d $address/32 -p tcp -m tcp --dport $edge_ports -j ACCEPT"
  if [ "$($sudo iptables -S SANDCLOUD-ALLOW 2>/dev/null | grep -v '^-N ')" != "$wanted" ]; then
    $sudo iptables -N SANDCLOUD-ALLOW 2>/dev/null || $sudo iptables -F SANDCLOUD-ALLOW
    $sudo iptables -A SANDCLOUD-ALLOW -d "$address/32" -p tcp -m tcp --dport "$edge_ports" -j ACCEPT
  fi
  # Its jump must come before the jump to SANDCLOUD-INPUT, which refuses everything else: put (or move) it first.
  local rules allow_at fence_at
  rules=$($sudo iptables -S INPUT)
  allow_at=$(grep -nxF -e "-A INPUT -i $bridges -j SANDCLOUD-ALLOW" <<<"$rules" | head -1 | cut -d: -f1 || true)
  fence_at=$(grep -nxF -e "-A INPUT -i $bridges -j SANDCLOUD-INPUT" <<<"$rules" | head -1 | cut -d: -f1 || true)
  if [ -z "$allow_at" ] || [ "$allow_at" -gt "${fence_at:-0}" ]; then
    while $sudo iptables -C INPUT -i "$bridges" -j SANDCLOUD-ALLOW 2>/dev/null; do
      $sudo iptables -D INPUT -i "$bridges" -j SANDCLOUD-ALLOW
    done
    $sudo iptables -I INPUT 1 -i "$bridges" -j SANDCLOUD-ALLOW
  fi
}

apply iptables icmp-net-unreachable
# IPv6 is best-effort: ip6tables fails where the kernel has IPv6 disabled, and sandboxes have no IPv6 at all (policy.py
# switches it off in their network namespace, and Docker gives learner networks none unless asked). The subshell keeps
# set -e stopping at the first failing rule without ending the script (calling apply in a condition would switch set -e
# off inside it).
set +e
(set -e; apply ip6tables icmp6-no-route)
ipv6_status=$?
set -e
if [ "$ipv6_status" != 0 ]; then
  echo "    ip6tables failed (IPv6 disabled?): the IPv6 fence for sandcl-* bridges was not applied" >&2
fi
# Last, so the fence above stands even when the hole cannot be made (the script then fails, saying why).
allow_edge
