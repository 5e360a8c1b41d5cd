"""Builds Sandcloud's container images locally: docker pull when a registry answers, else debootstrap + docker import."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, TextIO

import docker
from docker.errors import APIError, ImageNotFound

# Learners run as a uid of their own (so RLIMIT_NPROC, which the kernel counts per uid across the host, isolates them);
# every uid in this range resolves to the name "learner" so prompts, `whoami` and `ls -l` read naturally.
LEARNER_UID_FIRST = 20000
LEARNER_UID_COUNT = 5000
LEARNER_GID = 20000
RECIPE_VERSION = "3"

BASHRC = r"""
# Sandcloud workstation
export LANG=C.UTF-8 TERM=${TERM:-xterm-256color} HOME=/home/learner
PS1='\[\e[1;32m\]learner@sandbox\[\e[0m\]:\[\e[1;34m\]\w\[\e[0m\]\$ '
alias ls='ls --color=auto'
"""

TMUX_CONF = """
# One persistent shell per sandbox: reconnecting browsers re-attach and tmux redraws the screen.
set -g status off
set -g escape-time 0
set -g history-limit 5000
set -g default-terminal "screen-256color"
set -g default-command "/bin/bash"
set -g window-size latest
set -g aggressive-resize on
"""


@dataclass(frozen=True)
class ImageRecipe:
    name: str
    tag: str
    packages: tuple[str, ...]
    pull_reference: str = ""
    changes: tuple[str, ...] = field(default_factory=tuple)
    workstation: bool = False

    @property
    def digest(self) -> str:
        text = "|".join([RECIPE_VERSION, self.tag, ",".join(self.packages), ";".join(self.changes), str(self.workstation),
                         BASHRC if self.workstation else "", TMUX_CONF if self.workstation else ""])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_recipes(*, workstation_tag: str, python_tag: str, pull: dict[str, str] | None = None) -> list[ImageRecipe]:
    pull = pull or {}
    common = ("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "ENV LANG=C.UTF-8")
    return [
        ImageRecipe(
            name="python", tag=python_tag, packages=("python3",), pull_reference=pull.get("python", ""),
            changes=common + ("CMD [\"python3\"]",),
        ),
        ImageRecipe(
            name="workstation", tag=workstation_tag, workstation=True, pull_reference=pull.get("workstation", ""),
            packages=("bash", "coreutils", "procps", "python3", "curl", "ca-certificates", "iproute2", "less",
                      "vim-tiny", "tmux", "ncurses-base", "util-linux", "file"),
            changes=common + ("ENV HOME=/home/learner", "WORKDIR /home/learner", "CMD [\"/bin/bash\"]"),
        ),
    ]


class ImageBuildError(RuntimeError):
    pass


def _cache_dir() -> Path:
    path = Path(os.environ.get("SANDCLOUD_CACHE_DIR", Path.home() / ".cache" / "sandcloud")) / "images"
    path.mkdir(parents=True, exist_ok=True)
    return path


def image_is_current(client: docker.DockerClient, recipe: ImageRecipe) -> bool:
    try:
        image = client.images.get(recipe.tag)
    except ImageNotFound:
        return False
    return (image.labels or {}).get("sandcloud.recipe") == recipe.digest


def ensure_images(recipes: list[ImageRecipe], *, client: docker.DockerClient, out: TextIO = sys.stdout,
                  force: bool = False) -> list[str]:
    """Builds each image that is missing or stale; returns the tags it built. A second run is a no-op."""
    built = []
    for number, recipe in enumerate(recipes, start=1):
        say = _printer(out, f"[{number}/{len(recipes)} {recipe.name}]")
        if not force and image_is_current(client, recipe):
            say(f"{recipe.tag} is up to date")
            continue
        if recipe.pull_reference and _try_pull(client, recipe, say):
            built.append(recipe.tag)
            continue
        tarball = _cache_dir() / f"{recipe.name}-{recipe.digest}.tar"
        if force or not tarball.exists():
            _build_rootfs_tarball(recipe, tarball, say)
        else:
            say(f"reusing cached root filesystem {tarball}")
        _import(client, recipe, tarball, say)
        built.append(recipe.tag)
    return built


def _printer(out: TextIO, prefix: str) -> Callable[[str], None]:
    def say(message: str) -> None:
        out.write(f"{prefix} {message}\n")
        out.flush()
    return say


def _try_pull(client: docker.DockerClient, recipe: ImageRecipe, say) -> bool:
    say(f"trying docker pull {recipe.pull_reference}")
    try:
        client.images.pull(recipe.pull_reference)
    except APIError as error:
        say(f"pull failed ({error.explanation or error}); building locally instead")
        return False
    adopt_pulled_image(client, reference=recipe.pull_reference, tag=recipe.tag, say=say)
    say(f"pulled {recipe.pull_reference} as {recipe.tag}")
    return True


SETUID_BITS = 0o6000


def adopt_pulled_image(client: docker.DockerClient, *, reference: str, tag: str, say: Callable[[str], None]) -> None:
    """Tags a pulled image for sandboxes with the promise a locally built one keeps: no setuid or setgid program.

    An image that has some (Debian's own images carry su, mount, passwd…) becomes a one-layer copy without those bits,
    keeping its files, environment, working directory and command; the copy is checked again before it is tagged.
    """
    found = setuid_files(client, reference)
    if not found:
        client.images.get(reference).tag(tag)
        return
    say(f"{reference} carries {len(found)} setuid or setgid programs ({', '.join(found[:4])}…); removing the bits")
    _import_without_setuid(client, reference=reference, tag=tag)
    if left := setuid_files(client, tag):
        raise ImageBuildError(f"{tag} still carries setuid or setgid programs: {', '.join(left)}")


def setuid_files(client: docker.DockerClient, image: str) -> list[str]:
    """Every regular file of the image with a setuid or setgid bit, read from its exported filesystem: the image's
    programs never run, and it needs no shell or find of its own."""
    with _exported_filesystem(client, image) as stream, tarfile.open(fileobj=stream, mode="r|") as archive:
        return sorted(member.name for member in archive if member.isreg() and member.mode & SETUID_BITS)


def _import_without_setuid(client: docker.DockerClient, *, reference: str, tag: str) -> None:
    repository, _, version = tag.rpartition(":")
    with tempfile.TemporaryFile(dir=_cache_dir()) as flat:
        with _exported_filesystem(client, reference) as stream, \
                tarfile.open(fileobj=stream, mode="r|") as source, tarfile.open(fileobj=flat, mode="w|") as target:
            for member in source:
                if member.name in _DOCKER_INIT_FILES:
                    continue
                if member.isreg() or member.islnk():
                    member.mode &= ~SETUID_BITS
                target.addfile(member, source.extractfile(member) if member.isreg() else None)
        flat.seek(0)
        client.api.import_image_from_data(flat, repository=repository, tag=version,
                                          changes=_config_as_changes(client.api.inspect_image(reference)["Config"]))


# Placeholders Docker adds to every container (and so to an export); each run mounts its own over them.
_DOCKER_INIT_FILES = frozenset({".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf", "dev/console"})


def _config_as_changes(config: dict) -> list[str]:
    """An image's run configuration as the Dockerfile instructions `docker import` takes, so a flattened copy runs
    the same way."""
    changes = [f"ENV {name}={json.dumps(value)}" for name, _, value in
               (entry.partition("=") for entry in config.get("Env") or [])]
    changes += [f"LABEL {json.dumps(name)}={json.dumps(value)}" for name, value in (config.get("Labels") or {}).items()]
    for instruction, key in (("ENTRYPOINT", "Entrypoint"), ("CMD", "Cmd")):
        if config.get(key):
            changes.append(f"{instruction} {json.dumps(config[key])}")
    for instruction, key in (("WORKDIR", "WorkingDir"), ("USER", "User")):
        if config.get(key):
            changes.append(f"{instruction} {config[key]}")
    return changes


@contextmanager
def _exported_filesystem(client: docker.DockerClient, image: str) -> Iterator[io.BufferedReader]:
    """The image's filesystem as a tar stream, through a container that is created and never started."""
    container = client.api.create_container(image, command=["true"], network_disabled=True)
    try:
        yield io.BufferedReader(_ChunkReader(client.api.export(container["Id"])), buffer_size=1 << 20)
    finally:
        client.api.remove_container(container["Id"], force=True)


class _ChunkReader(io.RawIOBase):
    """A file-like view of the chunks the Docker SDK streams, for tarfile's stream mode."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks, self._pending = iter(chunks), b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size], self._pending = self._pending[:size], self._pending[size:]
        return size


def _build_rootfs_tarball(recipe: ImageRecipe, tarball: Path, say) -> None:
    if not shutil.which("debootstrap"):
        raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap)")
    say("building a minimal Debian root filesystem with debootstrap (about a minute; once)")
    with tempfile.TemporaryDirectory(prefix="sandcloud-rootfs-") as workdir:
        rootfs = Path(workdir) / "rootfs"
        command = ["debootstrap", "--variant=minbase", f"--include={','.join(recipe.packages)}", "bookworm", str(rootfs)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        shown = 0
        for line in process.stdout:
            line = line.strip()
            # debootstrap prints one I: line per package; show a heartbeat rather than hundreds of lines.
            if line.startswith(("I: Retrieving", "I: Validating", "I: Unpacking", "I: Configuring")):
                shown += 1
                if shown % 40 == 0:
                    say(f"  … {line[3:]}")
            elif line.startswith(("E:", "W:")) or "Base system installed" in line:
                say(f"  {line}")
        if process.wait() != 0:
            raise ImageBuildError(f"debootstrap failed with exit code {process.returncode}")
        _trim(rootfs)
        if recipe.workstation:
            _prepare_workstation(rootfs)
        say("packing the root filesystem")
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.rename(tarball)


def _trim(rootfs: Path) -> None:
    for relative in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                     "usr/share/locale", "usr/share/info"):
        target = rootfs / relative
        if target.exists():
            shutil.rmtree(target)
            target.mkdir(parents=True)
    # No setuid or setgid programs: with no-new-privileges they could not escalate anyway; this is the second lock.
    subprocess.run(["find", str(rootfs), "-xdev", "-type", "f", "-perm", "/6000", "-exec", "chmod", "ug-s", "{}", "+"],
                   check=True)


def _prepare_workstation(rootfs: Path) -> None:
    passwd = rootfs / "etc/passwd"
    group = rootfs / "etc/group"
    lines = [f"learner:x:{LEARNER_UID_FIRST + n}:{LEARNER_GID}:Sandcloud learner:/home/learner:/bin/bash"
             for n in range(LEARNER_UID_COUNT)]
    passwd.write_text(passwd.read_text() + "\n".join(lines) + "\n")
    group.write_text(group.read_text() + f"learners:x:{LEARNER_GID}:\n")
    (rootfs / "home/learner").mkdir(parents=True, exist_ok=True)
    bashrc = rootfs / "etc/bash.bashrc"
    bashrc.write_text(bashrc.read_text() + BASHRC)
    (rootfs / "etc/skel/.bashrc").unlink(missing_ok=True)
    (rootfs / "etc/tmux.conf").write_text(TMUX_CONF)
    (rootfs / "etc/motd").write_text("")


def _import(client: docker.DockerClient, recipe: ImageRecipe, tarball: Path, say) -> None:
    say(f"importing into Docker as {recipe.tag}")
    changes = list(recipe.changes) + [f"LABEL sandcloud.recipe={recipe.digest}", f"LABEL sandcloud.image={recipe.name}"]
    repository, _, tag = recipe.tag.rpartition(":")
    with tarball.open("rb") as data:
        client.api.import_image_from_data(data, repository=repository, tag=tag, changes=changes)
    if not image_is_current(client, recipe):
        raise ImageBuildError(f"docker import of {recipe.tag} did not produce the expected image")
    say(f"{recipe.tag} ready ({client.images.get(recipe.tag).attrs['Size'] // 1_000_000} MB)")
