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
# Debian's python3 has no ensurepip (so no `python3 -m venv`) without python3-venv; its npm package brings nodejs.
python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
command -v npm >/dev/null || need+=(npm)
if [ "${WITH_POSTGRES:-0}" = 1 ]; then
  command -v pg_ctlcluster >/dev/null && [ -d /usr/lib/postgresql ] && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 \
    || need+=(postgresql)
fi

if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "==> installing Debian packages: ${need[*]} (a minute or two, once)"
  # Through env: sudo's env_reset would drop a DEBIAN_FRONTEND set in front of it, and CI has no terminal to ask on.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
