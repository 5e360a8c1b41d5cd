#!/usr/bin/env bash
# `make test`: the whole suite against the real Docker Engine, Redis and Chromium. --postgres runs it on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
# A namespace of its own: this run's containers, networks, queues and channels never touch `make run`'s.
export SANDCLOUD_INSTANCE="test$$"
export SANDCLOUD_WARM_POOL_SIZE="${SANDCLOUD_WARM_POOL_SIZE:-0}"
# No demand-sized pools either: tests that want warm containers fill them themselves (sandbox/pools).
export SANDCLOUD_WARM_POOL_MAX="${SANDCLOUD_WARM_POOL_MAX:-0}"

sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"

# psql as the postgres superuser: runuser when root (sudo may not be installed), sudo -u otherwise.
psql_as_postgres() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- psql "$@"); else (cd / && sudo -u postgres psql "$@"); fi
}

if [ "${1:-}" = "--postgres" ]; then
  shift
  version=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters -h 2>/dev/null | grep -q online; then
    $sudo pg_ctlcluster "$version" main start 2>/dev/null \
      || { $sudo pg_createcluster "$version" main >/dev/null && $sudo pg_ctlcluster "$version" main start; }
  fi
  psql_as_postgres -qtAc "SELECT 1 FROM pg_roles WHERE rolname='sandcloud'" | grep -q 1 \
    || psql_as_postgres -qc "CREATE ROLE sandcloud LOGIN SUPERUSER PASSWORD 'sandcloud'"
  export DATABASE_URL="postgres://sandcloud:sandcloud@127.0.0.1:5432/sandcloud"
  echo "==> running the suite on PostgreSQL $version"
fi

status=0
python manage.py labs validate || status=$?
[ "$status" = 0 ] && { pytest "$@" || status=$?; }
# Whatever a failing test left behind goes with this run's namespace.
docker ps -aq --filter "label=sandcloud.instance=$SANDCLOUD_INSTANCE" | xargs -r docker rm -f >/dev/null 2>&1 || true
docker ps -aq --filter "label=sandcloud.test=$SANDCLOUD_INSTANCE" | xargs -r docker rm -f >/dev/null 2>&1 || true
for label in "sandcloud.instance=$SANDCLOUD_INSTANCE" "sandcloud.test=$SANDCLOUD_INSTANCE"; do
  docker network ls -q --filter "label=$label" | xargs -r docker network rm >/dev/null 2>&1 || true
done
exit $status
