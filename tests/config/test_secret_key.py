"""The generated secret key: private from the moment it exists, and one key for processes that start together."""
import json
import stat
import subprocess
import sys

from django.conf import settings

# Runs in each process: waits for "go" so all start together, creates the key, and reports it together with every file
# in the key's folder that others could read. The audit hook looks before each file operation Python performs, so a
# file created with loose permissions is seen before the chmod (itself audited) that would tighten it.
CREATOR = r"""
import importlib.util, json, os, stat, sys
from pathlib import Path

folder = Path(sys.argv[1])
loose = set()
looking = False

def look(event, args):
    global looking
    if looking or not event.startswith(("open", "os.", "tempfile.")):
        return
    looking = True
    try:
        for entry in os.scandir(folder):
            mode = stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)
            if mode & 0o077:
                loose.add(f"{entry.name} {mode:o}")
    except FileNotFoundError:
        pass
    finally:
        looking = False

os.umask(0o022)
# Loaded by path: importing the config package would start Celery's app, which this does not need.
spec = importlib.util.spec_from_file_location("secret_key", "config/secret_key.py")
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
secret_key_read_or_create = module.secret_key_read_or_create
sys.addaudithook(look)
print("ready", flush=True)
sys.stdin.readline()
key = secret_key_read_or_create(path=folder / "secret_key")
look("os.end", ())
print(json.dumps({"key": key, "loose": sorted(loose)}), flush=True)
"""

PROCESSES = 8


def test_processes_starting_together_share_one_key_that_nobody_else_can_read(tmp_path):
    # Given eight processes that will create the key at the same moment
    folder = tmp_path / "var"
    folder.mkdir()
    processes = [subprocess.Popen([sys.executable, "-c", CREATOR, str(folder)], cwd=settings.BASE_DIR,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                 for _ in range(PROCESSES)]
    for process in processes:
        assert process.stdout.readline().strip() == "ready"

    # When they all go at once
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    reports = [json.loads(process.communicate(timeout=60)[0]) for process in processes]

    # Then no file in the folder was ever readable by others, every process has the same key, and it is the one kept
    assert [report["loose"] for report in reports] == [[]] * PROCESSES
    keys = {report["key"] for report in reports}
    assert len(keys) == 1
    key_file = folder / "secret_key"
    assert key_file.read_text() == keys.pop()
    assert len(key_file.read_text()) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # and no temporary file is left beside it
    assert [path.name for path in folder.iterdir()] == ["secret_key"]


def test_a_kept_key_is_read_back_unchanged(tmp_path):
    from config.secret_key import secret_key_read_or_create

    # Given a key kept by an earlier start
    first = secret_key_read_or_create(path=tmp_path / "secret_key")

    # When the site starts again, then it reads the same key
    assert secret_key_read_or_create(path=tmp_path / "secret_key") == first
