"""A real Celery worker whose pool halts, the first time any of its processes has started a container, until killed.

A test waits for the halt (the halting process writes its pid to $SANDCLOUD_TEST_HALT_FILE) and then SIGKILLs the pool
process or the whole worker at exactly that point of provisioning: the container exists, the row still says so.
Usage: python -m tests.workers.halting_worker worker --queues=...
"""
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from config.celery import app  # noqa: E402
from sandbox.engine.docker import DockerEngine  # noqa: E402

HALT_FILE = Path(os.environ["SANDCLOUD_TEST_HALT_FILE"])
_run = DockerEngine.run


def _run_then_halt(self, spec):
    container_id = _run(self, spec)
    try:
        # O_EXCL: only the first process to get here halts; a redelivered task runs straight through.
        descriptor = os.open(HALT_FILE, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return container_id
    os.write(descriptor, f"{os.getpid()} {container_id}\n".encode())
    os.close(descriptor)
    while True:
        time.sleep(3600)


DockerEngine.run = _run_then_halt  # the pool processes are forked from this one, patch included

if __name__ == "__main__":
    app.worker_main(sys.argv[1:])
