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

# Most of the suite's time goes on waiting for Docker, servers and Chromium, not on the CPU, so pytest-xdist runs it in
# a few processes at once (SANDCLOUD_TEST_PROCESSES), each an instance of its own: test$$-gw0, ... (config/settings.py).
# Whole files go to one process, since their module fixtures start real servers, and in pytest-django's order, which
# puts the quick tests without a database last (xdist would otherwise start the files with the most tests first and
# leave the long, few-test ones such as the browser journeys for the end). Tests that measure the machine are marked
# run_alone (tests/conftest.py) and run afterwards, by themselves.
processes="${SANDCLOUD_TEST_PROCESSES:-3}"
status=0
python manage.py labs validate || status=$?
if [ "$status" = 0 ]; then
  parallel=0 alone=0
  # After "$@", so that each phase keeps its part whatever the arguments (call pytest directly to choose with -m).
  pytest "$@" -n "$processes" --dist loadfile --no-loadscope-reorder -m "not run_alone" || parallel=$?
  pytest "$@" -n 0 -m run_alone || alone=$?
  # 5 is pytest's "no tests collected": expected of one phase (a selection need not hold a run_alone test), not both.
  if [ "$parallel" = 5 ] && [ "$alone" = 5 ]; then status=5
  elif [ "$parallel" != 0 ] && [ "$parallel" != 5 ]; then status=$parallel
  elif [ "$alone" != 5 ]; then status=$alone
  fi
fi
# Whatever a failing test left behind goes with this run's namespaces: test$$ and its workers' test$$-gw0, ...
leftovers() {  # leftovers container ls -a | leftovers network ls: the ids of this run's objects, by either label
  local label
  for label in sandcloud.instance sandcloud.test; do
    docker "$@" --filter "label=$label" --format "{{.ID}} {{.Label \"$label\"}}" 2>/dev/null \
      | awk -v run="$SANDCLOUD_INSTANCE" '$2 == run || index($2, run "-") == 1 { print $1 }'
  done
}
leftovers container ls -a | xargs -r docker rm -f >/dev/null 2>&1 || true
leftovers network ls | xargs -r docker network rm >/dev/null 2>&1 || true
exit $status
