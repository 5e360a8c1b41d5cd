#!/usr/bin/env bash
# Starts the Docker Engine (with gVisor registered as the runsc runtime) and Redis when they are not answering.
# Prints the names of the services it started, one per line, on stdout so `make run` can stop exactly those.
set -euo pipefail
state_dir="${SANDCLOUD_STATE_DIR:-$(pwd)/var}"
mkdir -p "$state_dir/log"
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
# Learner processes are the kernel OOM killer's first choice (oom_score_adj 1000, sandbox/policy.py); what this
# starts (dockerd, Redis) inherits -500, so they go last.
echo -500 | $sudo tee /proc/$$/oom_score_adj >/dev/null 2>&1 \
  || echo "    note: could not lower the services' OOM score (needs CAP_SYS_RESOURCE)" >&2

daemon_config=/etc/docker/daemon.json

# Two gVisor runtimes: runsc (no network at all, for sandboxes) and runsc-net (gVisor's kernel on the container's own
# Docker network namespace, for Lambda environments the platform must reach; MACHINE-NOTES says what that trades).
runsc_runtime_registered() {
  [ -f "$daemon_config" ] && grep -q '"runsc"' "$daemon_config" && grep -q '"runsc-net"' "$daemon_config"
}

register_runsc_runtime() {
  $sudo mkdir -p /etc/docker
  # /etc/docker belongs to root: the writer runs under $sudo like every other change to the system.
  $sudo python3 - "$daemon_config" <<'PY'
import json, pathlib, sys
path = pathlib.Path(sys.argv[1])
config = json.loads(path.read_text()) if path.exists() and path.read_text().strip() else {}
config.setdefault("runtimes", {})["runsc"] = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}
config["runtimes"]["runsc-net"] = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=host"]}
path.write_text(json.dumps(config, indent=2) + "\n")
PY
  echo "    registered gVisor (runsc, runsc-net) as Docker runtimes" >&2
}

changed=0
if ! runsc_runtime_registered; then
  # Called on its own, not in a condition, so that set -e stops the script when the config cannot be written.
  register_runsc_runtime
  changed=1
fi
if ! docker info >/dev/null 2>&1; then
  echo "==> starting dockerd (log: $state_dir/log/dockerd.log)" >&2
  $sudo setsid dockerd >"$state_dir/log/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see $state_dir/log/dockerd.log" >&2; exit 1; }
  echo dockerd
elif [ "$changed" = 1 ]; then
  $sudo pkill -HUP -x dockerd || true
  sleep 1
fi

# Sandbox bridges may not reach the host or the outside world (idempotent; see the script).
bash "$(dirname "$0")/firewall.sh" >&2

redis_port="${SANDCLOUD_REDIS_PORT:-6379}"
if ! redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
  echo "==> starting redis-server on 127.0.0.1:$redis_port" >&2
  redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no --daemonize yes \
    --pidfile "$state_dir/redis.pid" --logfile "$state_dir/log/redis.log" >&2
  for _ in $(seq 1 40); do redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.25; done
  echo redis
fi
