"""The editor's file operations against a real running sandbox: what they do, and every refusal they promise."""
from __future__ import annotations

import json

import pytest
from django.urls import reverse

from sandbox.events import redis_client
from sandbox.files import services
from sandbox.files.services import MAX_BUSY_PER_SANDBOX, FileRefused
from sandbox.services import sandbox_stop
from tests.conftest import run_in

pytestmark = pytest.mark.docker


@pytest.fixture
def sandbox(start_sandbox, learner):
    return start_sandbox(learner)


def shell(sandbox, script: str) -> str:
    code, output = run_in(sandbox, script)
    assert code == 0, output
    return output


def refused(call, **kwargs) -> FileRefused:
    with pytest.raises(FileRefused) as caught:
        call(**kwargs)
    return caught.value


def test_a_saved_file_is_the_learners_own_and_the_terminal_reads_it(sandbox, learner):
    saved = services.file_write(sandbox=sandbox, user=learner, path="answers/hello.py", content="print('hi')\n",
                                mtime=None)

    assert saved["path"] == "answers/hello.py" and saved["size"] == 12
    assert shell(sandbox, "cat ~/answers/hello.py") == "print('hi')\n"
    assert shell(sandbox, "stat -c '%u %a' ~/answers/hello.py").split() == [str(sandbox.uid), "644"]
    opened = services.file_read(sandbox=sandbox, path="~/answers/hello.py")
    assert (opened.content, opened.mtime) == ("print('hi')\n", saved["mtime"])


def test_the_tree_lists_folders_first_and_shows_where_links_lead(sandbox):
    shell(sandbox, "mkdir -p ~/zeta && echo x > ~/alpha.txt && ln -s /etc/hostname ~/host")

    listing = services.file_list(sandbox=sandbox, path="")

    entries = {entry["name"]: entry for entry in listing["entries"]}
    assert listing["entries"][0]["kind"] == "dir"
    assert entries["alpha.txt"]["kind"] == "file" and entries["alpha.txt"]["size"] == 2
    assert entries["host"] == {**entries["host"], "kind": "link", "target": "/etc/hostname"}
    assert listing["truncated"] is False


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "~root/.bashrc", "a/../../x"])
def test_a_path_outside_the_home_directory_is_refused_before_the_sandbox_is_asked(sandbox, learner, path):
    refusal = refused(services.file_write, sandbox=sandbox, user=learner, path=path, content="x", mtime=None)

    assert refusal.status == 400 and "home directory" in refusal.message
    assert "x" not in shell(sandbox, "ls ~")


def test_a_link_leading_outside_home_is_neither_read_nor_written_through(sandbox, learner):
    # /tmp is writable by the learner: the editor must still not reach it through a link in their home.
    shell(sandbox, "echo original > /tmp/outside.txt && ln -s /tmp/outside.txt ~/notes.txt")

    read = refused(services.file_read, sandbox=sandbox, path="notes.txt")
    written = refused(services.file_write, sandbox=sandbox, user=learner, path="notes.txt", content="changed",
                      mtime=None, force=True)

    assert "outside your home directory" in read.message and read.status == 400
    assert "outside your home directory" in written.message
    assert shell(sandbox, "cat /tmp/outside.txt") == "original\n"
    assert shell(sandbox, "readlink ~/notes.txt") == "/tmp/outside.txt\n"


def test_a_linked_folder_in_a_path_is_not_followed(sandbox, learner):
    shell(sandbox, "mkdir -p /tmp/elsewhere && echo original > /tmp/elsewhere/a.txt && ln -s /tmp/elsewhere ~/work")

    read = refused(services.file_read, sandbox=sandbox, path="work/a.txt")
    written = refused(services.file_write, sandbox=sandbox, user=learner, path="work/a.txt", content="changed",
                      mtime=None, force=True)
    listed = refused(services.file_list, sandbox=sandbox, path="work")

    assert all("is a link" in refusal.message for refusal in (read, written, listed))
    assert shell(sandbox, "cat /tmp/elsewhere/a.txt") == "original\n"


def test_a_link_to_a_file_inside_home_opens_that_file(sandbox):
    shell(sandbox, "mkdir -p ~/answers && echo 42 > ~/answers/n.txt && ln -s answers/n.txt ~/n")

    opened = services.file_read(sandbox=sandbox, path="n")

    assert opened.content == "42\n" and opened.path == "answers/n.txt"


def test_a_file_over_one_megabyte_is_shown_as_too_large_and_not_overwritten(sandbox, learner):
    shell(sandbox, "head -c 2000000 /dev/zero | tr '\\0' a > ~/big.txt")

    opened = services.file_read(sandbox=sandbox, path="big.txt")
    too_big = refused(services.file_write, sandbox=sandbox, user=learner, path="big.txt",
                      content="b" * (1024 * 1024 + 1), mtime=opened.mtime)

    assert opened.content is None and "too large" in opened.reason and opened.size == 2_000_000
    assert too_big.status == 413
    assert shell(sandbox, "wc -c < ~/big.txt; head -c 3 ~/big.txt") == "2000000\naaa"


def test_a_binary_file_is_not_editable_but_downloads_whole(sandbox):
    shell(sandbox, "printf 'ELF\\0\\1\\2\\377' > ~/program")

    opened = services.file_read(sandbox=sandbox, path="program")
    name, data = services.file_download(sandbox=sandbox, path="program")

    assert opened.content is None and opened.reason.startswith("Binary file, not editable")
    assert (name, data) == ("program", b"ELF\x00\x01\x02\xff")


def test_a_full_disk_saves_nothing_and_leaves_the_file_whole(sandbox, learner):
    saved = services.file_write(sandbox=sandbox, user=learner, path="keep.txt", content="version 1\n", mtime=None)
    run_in(sandbox, "dd if=/dev/zero of=$HOME/filler bs=1M count=100 2>/dev/null")

    refusal = refused(services.file_write, sandbox=sandbox, user=learner, path="keep.txt",
                      content="version 2\n" * 20_000, mtime=saved["mtime"])

    assert refusal.status == 507 and "full" in refusal.message and "unchanged" in refusal.message
    assert shell(sandbox, "cat ~/keep.txt") == "version 1\n"
    assert shell(sandbox, "ls -A ~ | grep -v '^.aws$' | sort") == "filler\nkeep.txt\n"  # no temporary file left


def test_a_stopped_sandbox_says_so_and_changes_nothing(sandbox, learner):
    sandbox_stop(sandbox_id=sandbox.pk)
    sandbox.refresh_from_db()

    refusal = refused(services.file_write, sandbox=sandbox, user=learner, path="a.txt", content="x", mtime=None)

    assert refusal.status == 409 and "start a new one" in refusal.message


def test_a_file_changed_in_the_terminal_since_it_was_opened_is_not_overwritten_silently(sandbox, learner):
    saved = services.file_write(sandbox=sandbox, user=learner, path="app.py", content="one\n", mtime=None)
    shell(sandbox, "sleep 0.01; echo from-terminal > ~/app.py")

    conflict = refused(services.file_write, sandbox=sandbox, user=learner, path="app.py", content="editor\n",
                       mtime=saved["mtime"])
    assert conflict.status == 409 and conflict.extra["conflict"] is True and "changed on disk" in conflict.message
    assert shell(sandbox, "cat ~/app.py") == "from-terminal\n"

    services.file_write(sandbox=sandbox, user=learner, path="app.py", content="editor\n", mtime=saved["mtime"],
                        force=True)
    assert shell(sandbox, "cat ~/app.py") == "editor\n"


def test_saving_keeps_the_files_mode(sandbox, learner):
    shell(sandbox, "printf '#!/bin/sh\\necho 1\\n' > ~/run.sh && chmod 755 ~/run.sh")
    opened = services.file_read(sandbox=sandbox, path="run.sh")

    services.file_write(sandbox=sandbox, user=learner, path="run.sh", content="#!/bin/sh\necho 2\n",
                        mtime=opened.mtime)

    assert shell(sandbox, "stat -c %a ~/run.sh; sh ~/run.sh") == "755\n2\n"


def test_create_rename_and_delete(sandbox, learner):
    services.file_create(sandbox=sandbox, user=learner, path="project/src", kind="dir")
    services.file_create(sandbox=sandbox, user=learner, path="project/src/app.py", kind="file")
    exists = refused(services.file_create, sandbox=sandbox, user=learner, path="project/src/app.py", kind="file")
    services.file_rename(sandbox=sandbox, user=learner, path="project/src/app.py", to="project/main.py")
    taken = refused(services.file_rename, sandbox=sandbox, user=learner, path="project/main.py", to="project/src")

    assert exists.status == 409 and taken.status == 409
    assert shell(sandbox, "cd ~/project && find . | sort") == ".\n./main.py\n./src\n"
    services.file_delete(sandbox=sandbox, user=learner, path="project")
    assert shell(sandbox, "ls ~") == ""


def test_deleting_a_folder_removes_links_inside_it_without_following_them(sandbox, learner):
    shell(sandbox, "mkdir -p /tmp/precious ~/box && echo keep > /tmp/precious/a && ln -s /tmp/precious ~/box/link")

    services.file_delete(sandbox=sandbox, user=learner, path="box")

    assert shell(sandbox, "cat /tmp/precious/a; ls ~") == "keep\n"


def test_the_home_directory_itself_cannot_be_deleted_or_renamed(sandbox, learner):
    deleted = refused(services.file_delete, sandbox=sandbox, user=learner, path="~")
    renamed = refused(services.file_rename, sandbox=sandbox, user=learner, path="", to="elsewhere")

    assert deleted.status == 400 and renamed.status == 400


def test_a_pipe_is_refused_without_hanging(sandbox):
    shell(sandbox, "mkfifo ~/pipe")

    refusal = refused(services.file_read, sandbox=sandbox, path="pipe")

    assert "not a regular file" in refusal.message


def test_an_upload_creates_the_file_and_asks_before_replacing_it(sandbox, learner):
    data = bytes(range(256)) * 8
    services.file_upload(sandbox=sandbox, user=learner, folder="data", name="blob.bin", data=data)
    again = refused(services.file_upload, sandbox=sandbox, user=learner, folder="data", name="blob.bin", data=b"x")

    assert again.status == 409 and again.extra == {"exists": True}
    assert services.file_download(sandbox=sandbox, path="data/blob.bin") == ("blob.bin", data)
    services.file_upload(sandbox=sandbox, user=learner, folder="data", name="blob.bin", data=b"x", overwrite=True)
    assert shell(sandbox, "cat ~/data/blob.bin") == "x"


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", ""])
def test_an_upload_name_with_a_folder_in_it_is_refused(sandbox, learner, name):
    refusal = refused(services.file_upload, sandbox=sandbox, user=learner, folder="", name=name, data=b"x")

    assert refusal.status == 400


def test_a_flood_of_operations_at_once_is_told_to_wait(sandbox):
    key = f"sandcloud:{services.settings.SANDCLOUD['INSTANCE']}:files:{sandbox.pk}:busy"
    client = redis_client()
    client.set(key, MAX_BUSY_PER_SANDBOX)  # as if that many were running right now
    try:
        refusal = refused(services.file_list, sandbox=sandbox, path="")
    finally:
        client.delete(key)

    assert refusal.status == 429 and "wait" in refusal.message
    assert services.file_list(sandbox=sandbox, path="")["path"] == ""  # and the slot was given back


# --- through HTTP ---------------------------------------------------------------------------------------------------

def post(client, sandbox, action: str, payload: dict):
    return client.post(reverse(f"files-{action}", args=[sandbox.pk]), json.dumps(payload),
                       content_type="application/json")


def test_the_learner_saves_and_reads_through_the_endpoints(client, sandbox, learner):
    client.force_login(learner)

    saved = post(client, sandbox, "write", {"path": "answers/a.txt", "content": "b\n", "mtime": None})
    opened = client.get(reverse("files-read", args=[sandbox.pk]), {"path": "answers/a.txt"})

    assert saved.status_code == 200
    assert opened.json() == {"path": "answers/a.txt", "size": 2, "mtime": saved.json()["mtime"], "editable": True,
                             "content": "b\n"}


def test_an_instructor_shadowing_reads_but_cannot_change_files(client, sandbox, learner, instructor):
    shell(sandbox, "echo mine > ~/a.txt")
    client.force_login(instructor)

    opened = client.get(reverse("files-read", args=[sandbox.pk]), {"path": "a.txt"})
    written = post(client, sandbox, "write", {"path": "a.txt", "content": "theirs", "mtime": None, "force": True})
    deleted = post(client, sandbox, "delete", {"path": "a.txt"})

    assert opened.status_code == 200 and opened.json()["content"] == "mine\n"
    assert written.status_code == 403 and "read-only" in written.json()["error"]
    assert deleted.status_code == 403
    assert shell(sandbox, "cat ~/a.txt") == "mine\n"


def test_another_learner_is_refused_the_sandboxs_files(client, sandbox, other_learner):
    client.force_login(other_learner)

    listed = client.get(reverse("files-list", args=[sandbox.pk]), {"path": ""})
    written = post(client, sandbox, "write", {"path": "a.txt", "content": "x", "mtime": None})

    assert listed.status_code == 403 and written.status_code == 403
    assert listed.json() == {"error": "This sandbox belongs to another learner."}
    assert shell(sandbox, "ls ~") == ""


def test_malformed_requests_get_a_sentence(client, sandbox, learner):
    client.force_login(learner)

    not_json = client.post(reverse("files-write", args=[sandbox.pk]), "{", content_type="application/json")
    no_text = post(client, sandbox, "write", {"path": "a.txt", "content": 5, "mtime": None})
    bad_stamp = post(client, sandbox, "write", {"path": "a.txt", "content": "x", "mtime": "yesterday"})
    bad_path = post(client, sandbox, "write", {"path": ["a"], "content": "x", "mtime": None})

    assert [r.status_code for r in (not_json, no_text, bad_stamp, bad_path)] == [400, 400, 400, 400]
    assert all(r.json()["error"] for r in (not_json, no_text, bad_stamp, bad_path))


def test_an_upload_over_the_limit_is_refused_before_it_is_read(client, sandbox, learner):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(learner)
    big = SimpleUploadedFile("big.bin", b"x" * (1024 * 1024 + 70_000))

    response = client.post(reverse("files-upload", args=[sandbox.pk]), {"dir": "", "file": big})

    assert response.status_code == 413 and "1 MB" in response.json()["error"]
    assert shell(sandbox, "ls ~") == ""


def test_the_files_benchmark_measures_every_operation(transactional_db, docker_engine):
    from sandbox.files.benchmarks import bench_files

    result = bench_files(runs=1)

    assert all(result[name]["n"] == 1 and result[name]["p50"] > 0 for name in ("list_ms", "open_ms", "save_ms",
                                                                                 "open_1mb_ms", "save_1mb_ms"))
    assert set(result["targets"]) == {"open_ms", "save_ms", "list_ms"}
