#!/usr/bin/env bash
# Installs the Debian packages Sandcloud needs, only when something is missing (idempotent, fast when done).
set -euo pipefail

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v runsc >/dev/null || need+=(runsc)
command -v redis-server >/dev/null || need+=(redis-server)
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v iptables >/dev/null || need+=(iptables)
if [ "${WITH_POSTGRES:-0}" = 1 ]; then
  command -v pg_ctlcluster >/dev/null && [ -d /usr/lib/postgresql ] && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 \
    || need+=(postgresql)
fi

if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "==> installing Debian packages: ${need[*]} (a minute or two, once)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
