"""The code store: a function's zip checked, unpacked once on the host, and mounted read-only at /var/task.

A zip is hostile until unpacked safely: names are checked (no absolute paths, no `..`, no control characters), links
and devices are refused, sizes are counted as the bytes really come out of the decompressor (a zip bomb's headers lie),
and nothing is written outside the function's own directory. Unpacked trees are keyed by the learner's account and
the zip's SHA-256, so identical uploads share one tree and a tree is removed when no version uses it.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings

from sandbox.awsapi.errors import AwsError

MAX_ZIPPED_BYTES = 50 * 1024 * 1024
MAX_UNZIPPED_BYTES = 250 * 1024 * 1024  # 262,144,000 as AWS counts it
MAX_ENTRIES = 20_000
_CHUNK = 1024 * 1024

UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."


@dataclass(frozen=True)
class CodeInfo:
    key: str
    sha256: str  # base64, as CodeSha256
    size: int
    unzipped_size: int


def _root() -> Path:
    return Path(settings.SANDCLOUD_FUNCTIONS["CODE_DIR"])


def code_dir(key: str) -> Path:
    return _root() / key


def code_zip_path(key: str) -> Path:
    return _root() / f"{key}.zip"


def _refuse(message: str) -> AwsError:
    return AwsError("InvalidParameterValueException", message)


def _safe_name(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The entry's relative path, or None for a directory entry; refuses anything that could land outside /var/task."""
    name = info.filename
    if any(ord(c) < 32 or c == "\x7f" for c in name) or "\\" in name:
        raise _refuse(f"{UNZIP_FAILED} The entry {name!r} has a name with control characters or backslashes.")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise _refuse(f"{UNZIP_FAILED} The entry {name!r} points outside the function's directory.")
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if info.create_system == 3 and kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        kind = "a symbolic link" if stat.S_ISLNK(mode) else "a special file"
        raise _refuse(f"{UNZIP_FAILED} The entry {name!r} is {kind}; Sandcloud accepts only files and folders.")
    if name.endswith("/") or not path.parts:
        return None
    return path


def code_unpack(*, account_id: str, zip_bytes: bytes, max_unzipped: int | None = None) -> CodeInfo:
    """Checks and unpacks a deployment package into the store (idempotent for a zip already there), refusing it as
    soon as more than `max_unzipped` bytes (at most 250 MB) come out."""
    limit = min(MAX_UNZIPPED_BYTES, max_unzipped if max_unzipped is not None else MAX_UNZIPPED_BYTES)
    if len(zip_bytes) > MAX_ZIPPED_BYTES:
        raise AwsError("RequestEntityTooLargeException",
                       f"Zipped size must be smaller than {MAX_ZIPPED_BYTES} bytes", status=413)
    digest = hashlib.sha256(zip_bytes)
    key = f"{account_id}/{digest.hexdigest()}"
    info = CodeInfo(key=key, sha256=base64.b64encode(digest.digest()).decode(), size=len(zip_bytes),
                    unzipped_size=0)
    target = code_dir(key)
    marker = target / ".sandcloud-unzipped"
    if marker.exists():
        return CodeInfo(**{**info.__dict__, "unzipped_size": int(marker.read_text() or 0)})
    try:
        archive = zipfile.ZipFile(io.BytesIO(zip_bytes))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as error:
        raise _refuse(UNZIP_FAILED) from error
    if len(entries) > MAX_ENTRIES:
        raise _refuse(f"{UNZIP_FAILED} It has {len(entries)} entries; at most {MAX_ENTRIES} are accepted.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unzip-", dir=target.parent))
    total = 0
    try:
        for entry in entries:
            path = _safe_name(entry)
            if path is None:
                (staging / PurePosixPath(entry.filename)).mkdir(parents=True, exist_ok=True)
                continue
            destination = staging.joinpath(*path.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if destination.is_dir():
                raise _refuse(f"{UNZIP_FAILED} The entry {entry.filename!r} is both a file and a folder.")
            try:
                with archive.open(entry) as source, open(destination, "wb") as sink:
                    while chunk := source.read(_CHUNK):
                        total += len(chunk)
                        if total > limit:
                            raise AwsError("InvalidParameterValueException",
                                           f"Unzipped size must be smaller than {MAX_UNZIPPED_BYTES} bytes")
                        sink.write(chunk)
            # What zipfile raises for a hostile or unusual entry: a corrupt stream (BadZipFile, EOFError, zlib's
            # error is an OSError subclass here), a compression method it cannot read (NotImplementedError), an
            # encrypted entry (RuntimeError), a ZIP64 entry it refuses (LargeZipFile). All are the learner's zip.
            except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError,
                    OSError) as error:
                raise _refuse(f"{UNZIP_FAILED} The entry {entry.filename!r} could not be read.") from error
            mode = entry.external_attr >> 16
            os.chmod(destination, 0o755 if mode & 0o111 else 0o644)
        for folder, dirs, _files in os.walk(staging):
            for name in dirs:
                os.chmod(os.path.join(folder, name), 0o755)
        os.chmod(staging, 0o755)
        (staging / ".sandcloud-unzipped").write_text(str(total))
        code_zip_path(key).write_bytes(zip_bytes)
        try:
            staging.rename(target)
        except OSError:
            if not marker.exists():  # not a concurrent unpack of the same zip: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return CodeInfo(**{**info.__dict__, "unzipped_size": total})


def code_remove(key: str) -> None:
    shutil.rmtree(code_dir(key), ignore_errors=True)
    code_zip_path(key).unlink(missing_ok=True)


def code_files(key: str, *, max_bytes: int = 256 * 1024) -> dict[str, str]:
    """The package's small text files by name, for the console's editor (binary and large files are left out)."""
    files: dict[str, str] = {}
    try:
        archive = zipfile.ZipFile(code_zip_path(key))
    except (OSError, zipfile.BadZipFile):
        return files
    with archive:
        for entry in archive.infolist():
            if entry.is_dir() or entry.file_size > max_bytes or len(files) >= 50:
                continue
            try:
                files[entry.filename] = archive.read(entry).decode("utf-8")
            except (UnicodeDecodeError, zipfile.BadZipFile, RuntimeError):
                continue
    return files


def code_zip(files: dict[str, str]) -> bytes:
    """A deployment package made of text files (the console's editor saves through this)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in sorted(files.items()):
            archive.writestr(name, text)
    return buffer.getvalue()
