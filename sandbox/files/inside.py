"""The file program the editor runs inside a learner's sandbox, as the learner's uid: one operation per run.

It is sent as `python3 -I -S -c <this source>` and uses only the standard library of the sandbox's Python. Its
request is the first line of stdin (JSON), followed by the file's bytes for a write; its answer is one JSON line on
stdout, followed by the file's bytes for a read. Running as the learner, it can do nothing they could not do in the
terminal; what it adds is the editor's promise: every path is walked from the home directory one name at a time
without following a symbolic link (O_NOFOLLOW at each step), so no path and no link leads outside the home directory.
"""
import errno
import json
import os
import stat
import sys

HOME = "/home/learner"
MAX_BYTES = 1024 * 1024
MAX_ENTRIES = 500
SCAN_LIMIT = 5000


class Refused(Exception):
    def __init__(self, code, message, **extra):
        super().__init__(message)
        self.code, self.message, self.extra = code, message, extra


def shown(parts):
    return "~/" + "/".join(parts) if parts else "~"


def open_dir(parts, *, create=False):
    """A descriptor of the directory ~/parts, reached without following any link."""
    fd = os.open(HOME, os.O_RDONLY | os.O_DIRECTORY)
    for depth, name in enumerate(parts):
        try:
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                os.close(fd)
                raise Refused("missing", f"{shown(parts[:depth + 1])} does not exist.")
            os.mkdir(name, 0o755, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as error:
            is_link = error.errno in (errno.ELOOP, errno.ENOTDIR) and stat.S_ISLNK(
                os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
            os.close(fd)
            if is_link:
                raise Refused("link", f"{shown(parts[:depth + 1])} is a link; the editor does not follow links "
                                      f"in a path. Open the folder it points to instead.")
            if error.errno == errno.ENOTDIR:
                raise Refused("not_dir", f"{shown(parts[:depth + 1])} is a file, not a folder.")
            raise
        os.close(fd)
        fd = child
    return fd


def link_target(fd, name, parts):
    """Where a link inside the home directory leads, as parts; a link leading out is refused."""
    target = os.readlink(name, dir_fd=fd)
    absolute = os.path.normpath(target if target.startswith("/") else
                                os.path.join(HOME, *parts[:-1], target))
    if absolute != HOME and not absolute.startswith(HOME + "/"):
        raise Refused("outside", f"{shown(parts)} is a link to {target}, outside your home directory; the editor "
                                 f"only opens files in your home directory.")
    return [p for p in absolute[len(HOME):].split("/") if p]


def entry_of(name, info):
    mode = info.st_mode
    kind = ("dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else
            "link" if stat.S_ISLNK(mode) else "other")
    return {"name": name, "kind": kind, "size": info.st_size, "mtime": stamp(info)}


def stamp(info):
    return round(info.st_mtime_ns / 1e9, 6)


def op_list(request, parts, body):
    fd = open_dir(parts)
    try:
        entries, truncated = [], False
        with os.scandir(fd) as scan:
            for count, item in enumerate(scan):
                if count >= SCAN_LIMIT:
                    truncated = True
                    break
                try:
                    entries.append(entry_of(item.name, item.stat(follow_symlinks=False)))
                except OSError:
                    continue
        for entry in entries:
            if entry["kind"] == "link":
                try:
                    entry["target"] = os.readlink(entry["name"], dir_fd=fd)
                except OSError:
                    entry["target"] = ""
    finally:
        os.close(fd)
    entries.sort(key=lambda e: (e["kind"] != "dir", e["name"].lower(), e["name"]))
    if len(entries) > MAX_ENTRIES:
        entries, truncated = entries[:MAX_ENTRIES], True
    return {"path": "/".join(parts), "entries": entries, "truncated": truncated}, b""


def open_file(parts, *, follow_link_once=True):
    """(descriptor, info, parts) of a regular file ~/parts; a link inside the home directory is followed once."""
    if not parts:
        raise Refused("not_file", "Your home directory is a folder, not a file.")
    fd = open_dir(parts[:-1])
    try:
        name = parts[-1]
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            raise Refused("missing", f"{shown(parts)} does not exist.")
        if stat.S_ISLNK(info.st_mode):
            target = link_target(fd, name, parts)
            if not follow_link_once:
                raise Refused("link", f"{shown(parts)} is a link; change the file it points to instead.")
            os.close(fd)
            fd = -1
            return open_file(target, follow_link_once=False)
        if stat.S_ISDIR(info.st_mode):
            raise Refused("not_file", f"{shown(parts)} is a folder, not a file.")
        if not stat.S_ISREG(info.st_mode):
            raise Refused("not_file", f"{shown(parts)} is not a regular file (a pipe, socket or device).")
        file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        return file_fd, os.fstat(file_fd), parts
    finally:
        if fd >= 0:
            os.close(fd)


def read_bounded(file_fd):
    chunks, size = [], 0
    while size <= MAX_BYTES:
        chunk = os.read(file_fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def op_read(request, parts, body):
    file_fd, info, parts = open_file(parts)
    try:
        answer = {"path": "/".join(parts), "size": info.st_size, "mtime": stamp(info)}
        if info.st_size > MAX_BYTES:
            return {**answer, "editable": False, "reason": "too_large"}, b""
        data = read_bounded(file_fd)
    finally:
        os.close(file_fd)
    if len(data) > MAX_BYTES:
        return {**answer, "editable": False, "reason": "too_large"}, b""
    if request.get("raw"):
        return {**answer, "size": len(data)}, data
    try:
        if b"\0" in data:
            raise UnicodeDecodeError("utf-8", b"", 0, 1, "NUL")
        data.decode("utf-8")
    except UnicodeDecodeError:
        return {**answer, "editable": False, "reason": "binary"}, b""
    return {**answer, "size": len(data), "editable": True}, data


def write_into(fd, name, parts, body, *, mode):
    """Writes `body` to a new file beside `name` and renames it over `name`, so a full disk leaves the old file whole."""
    temporary = f".{name[:200]}.sandcloud-{os.urandom(4).hex()}"
    out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=fd)
    try:
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(out, view):]
            os.fchmod(out, mode)
        finally:
            os.close(out)
        os.rename(temporary, name, src_dir_fd=fd, dst_dir_fd=fd)
    except BaseException:
        try:
            os.unlink(temporary, dir_fd=fd)
        except OSError:
            pass
        raise
    return os.stat(name, dir_fd=fd, follow_symlinks=False)


def op_write(request, parts, body):
    if not parts:
        raise Refused("not_file", "Your home directory is a folder, not a file.")
    if len(body) > MAX_BYTES:
        raise Refused("too_large", "too large")
    fd = open_dir(parts[:-1], create=True)
    try:
        name = parts[-1]
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            info = None
        mode = 0o644
        if info is not None:
            if stat.S_ISLNK(info.st_mode):
                link_target(fd, name, parts)  # refuses a link leading out with the same words as a read
                raise Refused("link", f"{shown(parts)} is a link; open the file it points to and save that instead.")
            if stat.S_ISDIR(info.st_mode):
                raise Refused("not_file", f"{shown(parts)} is a folder; choose another name.")
            if not stat.S_ISREG(info.st_mode):
                raise Refused("not_file", f"{shown(parts)} is not a regular file (a pipe, socket or device).")
            expected = request.get("mtime")
            if request.get("exclusive"):
                raise Refused("exists", f"{shown(parts)} already exists.")
            if not request.get("force") and (expected is None or abs(stamp(info) - float(expected)) > 2e-6):
                raise Refused("conflict", f"{shown(parts)} changed on disk since you opened it (in the terminal, "
                                          f"or in another tab). Reload it from disk, or overwrite it with yours.",
                              conflict=True, mtime=stamp(info))
            mode = stat.S_IMODE(info.st_mode)
        elif request.get("mtime") is not None and not request.get("force"):
            raise Refused("conflict", f"{shown(parts)} was deleted or renamed since you opened it. Save again to "
                                      f"create it with your text.", conflict=True, mtime=None)
        info = write_into(fd, name, parts, body, mode=mode)
    finally:
        os.close(fd)
    return {"path": "/".join(parts), "size": info.st_size, "mtime": stamp(info)}, b""


def op_create(request, parts, body):
    if not parts:
        raise Refused("exists", "Your home directory already exists.")
    fd = open_dir(parts[:-1], create=True)
    try:
        name = parts[-1]
        try:
            if request.get("kind") == "dir":
                os.mkdir(name, 0o755, dir_fd=fd)
            else:
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=fd))
        except FileExistsError:
            raise Refused("exists", f"{shown(parts)} already exists.")
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
    finally:
        os.close(fd)
    return {"path": "/".join(parts), "mtime": stamp(info)}, b""


def op_rename(request, parts, body):
    target = request["to"]
    if not parts or not target:
        raise Refused("bad_path", "Your home directory itself cannot be renamed.")
    if target[:len(parts)] == parts:
        raise Refused("bad_path", f"{shown(parts)} cannot be moved inside itself.")
    source_fd = open_dir(parts[:-1])
    try:
        target_fd = open_dir(target[:-1], create=True)
        try:
            try:
                os.stat(parts[-1], dir_fd=source_fd, follow_symlinks=False)
            except FileNotFoundError:
                raise Refused("missing", f"{shown(parts)} does not exist.")
            try:
                os.stat(target[-1], dir_fd=target_fd, follow_symlinks=False)
                raise Refused("exists", f"{shown(target)} already exists; choose another name.")
            except FileNotFoundError:
                pass
            os.rename(parts[-1], target[-1], src_dir_fd=source_fd, dst_dir_fd=target_fd)
        finally:
            os.close(target_fd)
    finally:
        os.close(source_fd)
    return {"path": "/".join(target)}, b""


def op_delete(request, parts, body):
    if not parts:
        raise Refused("bad_path", "Your home directory itself cannot be deleted.")
    fd = open_dir(parts[:-1])
    try:
        name = parts[-1]
        try:
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            raise Refused("missing", f"{shown(parts)} does not exist.")
        if stat.S_ISDIR(info.st_mode):
            import shutil  # only here: every other operation starts faster without it

            shutil.rmtree(name, dir_fd=fd)  # descriptor-based: a link inside is removed, never followed
        else:
            os.unlink(name, dir_fd=fd)
    finally:
        os.close(fd)
    return {}, b""


OPERATIONS = {"list": op_list, "read": op_read, "write": op_write, "create": op_create, "rename": op_rename,
              "delete": op_delete}
FAILURES = {errno.ENOSPC: "disk_full", errno.EDQUOT: "disk_full", errno.EACCES: "denied", errno.EPERM: "denied",
            errno.EROFS: "denied", errno.ENAMETOOLONG: "bad_path", errno.EINVAL: "bad_path", errno.ENOTEMPTY: "exists",
            errno.EMLINK: "bad_path", errno.ENOENT: "missing"}


def main():
    stdin = sys.stdin.buffer
    request = json.loads(stdin.readline(64 * 1024))
    body = stdin.read(MAX_BYTES + 1) if request["op"] in ("write",) else b""
    try:
        answer, data = OPERATIONS[request["op"]](request, request["path"], body)
        answer = {"ok": True, **answer}
    except Refused as refusal:
        answer, data = {"ok": False, "code": refusal.code, "message": refusal.message, **refusal.extra}, b""
    except OSError as error:
        answer = {"ok": False, "code": FAILURES.get(error.errno, "os_error"), "message": os.strerror(error.errno or 0)}
        data = b""
    out = sys.stdout.buffer
    out.write(json.dumps(answer).encode() + b"\n")
    out.write(data)
    out.flush()


if __name__ == "__main__":
    main()
