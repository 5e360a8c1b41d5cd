"""Builds the Lambda runtime image: the python image plus AWS's runtime interface client, boto3 and Sandcloud's init.

`awslambdaric` (AWS's own Python runtime client, from PyPI) is the bootstrap of every zip function, as in AWS's
python3.11 runtime; boto3 is there because AWS's runtime has it too. The image has no pip, so the packages are
installed on the host with `pip install --target` (same Python version, manylinux wheels) into a cached directory and
copied in by a `docker build` on top of the python image: no registry is needed.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import TextIO

import docker
from docker.errors import APIError, BuildError, ImageNotFound

from .images import ImageBuildError

RUNTIME_PACKAGES = ("awslambdaric==4.2.2", "boto3==1.44.5", "botocore==1.44.8")
INIT_SOURCE = Path(__file__).resolve().parent.parent / "functions" / "runtime" / "init.py"
RECIPE_VERSION = "1"

DOCKERFILE = """\
FROM {base}
COPY runtime/ /var/runtime/
COPY init.py /opt/sandcloud/init.py
RUN mkdir -p /var/task /opt/sandcloud && python3 -m compileall -q /var/runtime /opt/sandcloud \\
 && find /var/runtime /opt/sandcloud -perm /6000 -type f -exec chmod ug-s {{}} +
ENV LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime PYTHONPATH=/var/runtime \\
    PYTHONDONTWRITEBYTECODE=1 LANG=en_US.UTF-8 TZ=:UTC PATH=/usr/local/bin:/usr/bin:/bin
WORKDIR /var/task
ENTRYPOINT ["python3", "-I", "-S", "-u", "/opt/sandcloud/init.py"]
CMD []
"""


def recipe_digest(*, base_id: str) -> str:
    text = "|".join([RECIPE_VERSION, base_id, ",".join(RUNTIME_PACKAGES), DOCKERFILE, INIT_SOURCE.read_text()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _packages_dir(out: TextIO) -> Path:
    cache = Path(os.environ.get("SANDCLOUD_CACHE_DIR", Path.home() / ".cache" / "sandcloud")) / "lambda-runtime"
    key = hashlib.sha256(",".join(RUNTIME_PACKAGES).encode()).hexdigest()[:12]
    target = cache / key
    if (target / ".complete").exists():
        return target
    out.write(f"[lambda runtime] installing {', '.join(RUNTIME_PACKAGES)} from PyPI\n")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--target", str(target), "--only-binary=:all:", "--platform", "manylinux2014_x86_64",
               "--python-version", "3.11", "--implementation", "cp", *RUNTIME_PACKAGES]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    except subprocess.CalledProcessError as error:
        raise ImageBuildError(f"pip could not install the Lambda runtime packages: {error.stderr[-2000:]}") from error
    shutil.rmtree(target / "bin", ignore_errors=True)
    (target / ".complete").write_text("ok")
    return target


def _context(packages: Path, base: str) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        dockerfile = DOCKERFILE.format(base=base).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(str(INIT_SOURCE), arcname="init.py")

        def clean(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
            if member.name.endswith((".pyc",)) or "/__pycache__" in member.name or member.name.endswith(".complete"):
                return None
            member.uid = member.gid = 0
            member.uname = member.gname = "root"
            member.mode &= 0o755
            return member

        tar.add(str(packages), arcname="runtime", filter=clean)
    buffer.seek(0)
    return buffer


def runtime_image_ensure(*, client: docker.DockerClient, tag: str, base: str, out: TextIO = sys.stdout,
                         force: bool = False) -> bool:
    """Builds the runtime image when it is missing or stale; returns whether it built one."""
    try:
        base_id = client.images.get(base).id
    except ImageNotFound as error:
        raise ImageBuildError(f"the base image {base} is missing: build it first") from error
    digest = recipe_digest(base_id=base_id)
    if not force:
        try:
            if (client.images.get(tag).labels or {}).get("sandcloud.recipe") == digest:
                out.write(f"[lambda runtime] {tag} is up to date\n")
                return False
        except ImageNotFound:
            pass
    packages = _packages_dir(out)
    out.write(f"[lambda runtime] building {tag} on {base}\n")
    try:
        client.images.build(fileobj=_context(packages, base), custom_context=True, tag=tag, rm=True,
                            forcerm=True, pull=False, labels={"sandcloud.recipe": digest}, network_mode="none")
    except (BuildError, APIError) as error:
        raise ImageBuildError(f"building {tag} failed: {error}") from error
    out.write(f"[lambda runtime] {tag} ready\n")
    return True
