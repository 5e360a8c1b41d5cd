#!/usr/bin/env bash
# `make run`: starts Docker, Redis, the web server, the AWS edge for sandboxes, a Celery worker and beat as one group;
# Ctrl-C stops all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export SANDCLOUD_PORT="${SANDCLOUD_PORT:-8000}"
export SANDCLOUD_QUEUE="sandcloud-${SANDCLOUD_INSTANCE:-default}"
mkdir -p var/log
# The web server, worker and beat inherit this: under memory pressure the OOM killer takes learner processes first.
echo -500 | { if [ "$(id -u)" = 0 ]; then tee /proc/$$/oom_score_adj; else sudo -n tee /proc/$$/oom_score_adj; fi; } \
  >/dev/null 2>&1 || echo "    note: could not lower the platform's OOM score (needs CAP_SYS_RESOURCE)" >&2

started=$(bash ops/services.sh)
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "==> stopping: removing this run's sandboxes"
  python manage.py sandbox stop --all >/dev/null 2>&1 || true
  for service in $started; do
    case "$service" in
      redis) redis-cli -h 127.0.0.1 -p "${SANDCLOUD_REDIS_PORT:-6379}" shutdown nosave >/dev/null 2>&1 || true ;;
      dockerd) pkill -TERM -x dockerd || true ;;
    esac
    echo "    stopped $service"
  done
}
trap cleanup INT TERM EXIT

python manage.py migrate --noinput -v 0
python manage.py sandbox images
python manage.py lessons load
python manage.py labs load
echo "==> demo accounts"
python manage.py demo_users
python manage.py collectstatic --noinput -v 0
echo "==> warming the pool of ready workstations"
python manage.py sandbox pool

echo
echo "Sandcloud is starting at http://127.0.0.1:${SANDCLOUD_PORT}/  (Ctrl-C stops everything)"
echo "Workstations reach its AWS endpoint at http://aws.sandcloud.internal:${SANDCLOUD_AWS_EDGE_PORT:-4566}/aws"
echo
honcho -f ops/Procfile -d . start
