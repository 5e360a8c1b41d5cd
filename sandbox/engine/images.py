"""Builds Sandcloud's container images locally: docker pull when a registry answers, else debootstrap + docker import."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
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

PROJECT_DIR = Path(__file__).resolve().parents[2]

# The workstation's `aws` CLI (v1) and boto3, at the versions pyproject.toml pins for the site itself. The image has
# no pip: the host's (Python 3.11, as the image's Debian python3) installs and compiles them, and the build adds them
# to the image's root filesystem, where the image's python3 finds them.
WORKSTATION_PYTHON_PACKAGES = ("awscli", "boto3", "botocore")
IMAGE_SITE_PACKAGES = "/usr/local/lib/python3.11/dist-packages"
# Debian's docker CLI (package docker.io, which ops/system-deps.sh installs for the engine): the learner's `docker`.
DOCKER_CLI = "/usr/bin/docker"
IMAGE_COMMANDS = ("aws",)  # pip's scripts that go to /usr/local/bin, run by the image's python3
# awscli v1 plugins are modules that ~/.aws/config's [plugins] section names and that Python imports from sys.path
# (v1 knows no cli_legacy_plugin_path; a [plugins] line naming a directory makes every command fail). This directory
# is on the image's sys.path through a .pth file; the plugins present when the image is built are copied into it.
AWSCLI_PLUGIN_DIR = "/usr/local/lib/sandcloud/awscli-plugins"
AWSCLI_PLUGIN_SOURCES = (PROJECT_DIR / "sandbox" / "logs" / "awscli_plugin" / "sandcloud_logs_tail.py",
                         PROJECT_DIR / "sandbox" / "awsapi" / "awscli_plugin" / "sandcloud_cli_compat.py")
# Those plugins' [plugins] section, which sandbox/aws_profile.py appends to the learner's ~/.aws/config when present.
AWSCLI_PLUGINS_CONFIG = "/usr/local/share/sandcloud/awscli-plugins.ini"

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
    # Added on top of the debootstrapped root filesystem: pip requirements ("awscli==1.46.2") and awscli plugin
    # modules (file name, contents).
    python_requirements: tuple[str, ...] = ()
    awscli_plugins: tuple[tuple[str, bytes], ...] = ()
    # Programs copied from the host into the image (host path, image path): Debian's docker CLI, from the docker.io
    # package the host runs its engine from (dynamically linked against glibc only, which the image has).
    host_programs: tuple[tuple[str, str], ...] = ()

    @property
    def base_digest(self) -> str:
        """What debootstrap makes; its root filesystem is cached under this, so a change to what is added on top
        rebuilds in seconds, not minutes."""
        text = "|".join([RECIPE_VERSION, self.tag, ",".join(self.packages), ";".join(self.changes), str(self.workstation),
                         BASHRC if self.workstation else "", TMUX_CONF if self.workstation else ""])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def digest(self) -> str:
        """The whole recipe: an image labelled with another digest is rebuilt."""
        if not self.python_requirements and not self.awscli_plugins and not self.host_programs:
            return self.base_digest
        plugins = [f"{name}:{hashlib.sha256(content).hexdigest()}" for name, content in self.awscli_plugins]
        programs = [f"{source}:{target}:{os.stat(source).st_size}:{int(os.stat(source).st_mtime)}"
                    for source, target in self.host_programs]
        text = "|".join([self.base_digest, ",".join(self.python_requirements), ",".join(IMAGE_COMMANDS),
                         IMAGE_SITE_PACKAGES, AWSCLI_PLUGIN_DIR, AWSCLI_PLUGINS_CONFIG, *plugins, *programs])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def awscli_plugins_config(self) -> str:
        """The [plugins] section that turns on the image's awscli plugins (empty when it has none)."""
        modules = [Path(name).stem for name, _ in self.awscli_plugins]
        return "[plugins]\n" + "".join(f"{module} = {module}\n" for module in modules) if modules else ""


def pinned_requirements(names: Iterable[str]) -> tuple[str, ...]:
    """The requirement lines pyproject.toml gives these packages ("awscli==1.46.2")."""
    dependencies = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]["dependencies"]
    by_name = {re.split(r"[\s\[=<>!~;]", line, maxsplit=1)[0].lower(): line for line in dependencies}
    return tuple(by_name[name] for name in names)


def awscli_plugins_present() -> tuple[tuple[str, bytes], ...]:
    """The awscli plugins that exist in this checkout right now, as (file name, contents)."""
    return tuple((path.name, path.read_bytes()) for path in AWSCLI_PLUGIN_SOURCES if path.is_file())


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
                      "vim-tiny", "tmux", "ncurses-base", "util-linux", "file", "zip", "unzip"),
            changes=common + ("ENV HOME=/home/learner", "WORKDIR /home/learner", "CMD [\"/bin/bash\"]"),
            python_requirements=pinned_requirements(WORKSTATION_PYTHON_PACKAGES),
            awscli_plugins=awscli_plugins_present(),
            host_programs=tuple((path, path) for path in (DOCKER_CLI,) if os.path.isfile(path)),
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
        base = _cache_dir() / f"{recipe.name}-{recipe.base_digest}.tar"
        if force or not base.exists():
            _build_rootfs_tarball(recipe, base, say)
        else:
            say(f"reusing cached root filesystem {base}")
        if recipe.digest == recipe.base_digest:
            _import(client, recipe, base, say)
        else:
            with _tarball_with_additions(recipe, base, say, force=force) as tarball:
                _import(client, recipe, tarball, say)
        built.append(recipe.tag)
    return built


@contextmanager
def _tarball_with_additions(recipe: ImageRecipe, base: Path, say, *, force: bool) -> Iterator[Path]:
    """A temporary copy of the base root filesystem tarball with the recipe's Python packages, commands and awscli
    plugins appended, every file owned by root and without setuid or setgid bits."""
    packages = _python_packages(recipe.python_requirements, say, force=force) if recipe.python_requirements else None
    with tarfile.open(base) as archive:
        # docker import refuses a path twice, so what the base already has (a parent directory) is not added again.
        existing = set(archive.getnames())
    with tempfile.TemporaryDirectory(prefix="sandcloud-image-", dir=_cache_dir()) as workdir:
        tarball = Path(workdir) / "rootfs.tar"
        shutil.copyfile(base, tarball)
        say("adding " + ", ".join([*recipe.python_requirements, *(name for name, _ in recipe.awscli_plugins),
                                   *(target for _, target in recipe.host_programs)]))
        with tarfile.open(tarball, "a") as archive:
            additions = _Additions(archive, existing)
            if packages is not None:
                for child in sorted(packages.iterdir()):
                    if child.name != "bin":  # pip's scripts, written for the host's Python
                        additions.tree(child, f"{IMAGE_SITE_PACKAGES}/{child.name}")
                for command in IMAGE_COMMANDS:
                    script = (packages / "bin" / command).read_text().split("\n", 1)[1]
                    additions.file(f"/usr/local/bin/{command}", "#!/usr/bin/python3\n" + script, mode=0o755)
            additions.file(f"{IMAGE_SITE_PACKAGES}/sandcloud-awscli-plugins.pth", AWSCLI_PLUGIN_DIR + "\n")
            additions.directory(AWSCLI_PLUGIN_DIR)
            for name, content in recipe.awscli_plugins:
                additions.file(f"{AWSCLI_PLUGIN_DIR}/{name}", content)
            if recipe.awscli_plugins:
                additions.file(AWSCLI_PLUGINS_CONFIG, recipe.awscli_plugins_config())
            for source, target in recipe.host_programs:
                additions.file(target, Path(source).read_bytes(), mode=0o755)
        yield tarball


def _python_packages(requirements: tuple[str, ...], say, *, force: bool) -> Path:
    """A directory holding `requirements` and their dependencies as pip installs them for Python 3.11, compiled for
    the image's paths (its root filesystem is read-only, so Python could not write the bytecode there itself).
    Cached by the requirements: pip runs again only when a pin changes."""
    key = hashlib.sha256("|".join([f"{sys.version_info[0]}.{sys.version_info[1]}", IMAGE_SITE_PACKAGES,
                                   *requirements]).encode()).hexdigest()[:16]
    target = _cache_dir() / f"python-packages-{key}"
    if target.is_dir() and not force:
        say(f"reusing cached Python packages {target}")
        return target
    if sys.version_info[:2] != (3, 11):
        raise ImageBuildError(f"the workstation's Python packages are installed with the host's Python 3.11, like the "
                              f"image's; this is {sys.version_info[0]}.{sys.version_info[1]}")
    say(f"installing {' '.join(requirements)} with pip (from PyPI; once)")
    partial = Path(tempfile.mkdtemp(prefix="python-packages-", dir=_cache_dir()))
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-warn-script-location", "--only-binary=:all:", "--no-compile", "--target", str(partial),
                        *requirements], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "0", "-s", str(partial),
                        "-p", IMAGE_SITE_PACKAGES, str(partial)], check=True, stdout=subprocess.DEVNULL)
        if force:
            shutil.rmtree(target, ignore_errors=True)
        try:
            partial.rename(target)
        except OSError:
            if not target.is_dir():
                raise  # anything but another build having put the same packages there first
    except subprocess.CalledProcessError as error:
        raise ImageBuildError(f"pip could not install {' '.join(requirements)} (exit code {error.returncode})") \
            from error
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


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


class _Additions:
    """Files added to a root filesystem tarball: owned by root, never setuid, setgid or writable by others, each parent
    directory made once, and no path the tarball already has."""

    def __init__(self, archive: tarfile.TarFile, existing: set[str]):
        self.archive, self.existing, self.mtime = archive, existing, int(time.time())

    def _member(self, path: str, *, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo | None:
        name = "." + path
        if name in self.existing:
            if kind == tarfile.DIRTYPE:
                return None
            raise ImageBuildError(f"the image already has {path}; it cannot be added")
        parent = str(Path(path).parent)
        if parent != "/":
            self.directory(parent)
        self.existing.add(name)
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.size, info.mtime = kind, mode & 0o1755, size, self.mtime
        info.uname = info.gname = "root"
        return info

    def directory(self, path: str) -> None:
        if (info := self._member(path, kind=tarfile.DIRTYPE, mode=0o755)) is not None:
            self.archive.addfile(info)

    def file(self, path: str, content: str | bytes, *, mode: int = 0o644, mtime: int | None = None) -> None:
        data = content.encode() if isinstance(content, str) else content
        info = self._member(path, kind=tarfile.REGTYPE, mode=mode, size=len(data))
        if mtime is not None:
            info.mtime = mtime  # compiled modules are only used while their source keeps the mtime they recorded
        self.archive.addfile(info, io.BytesIO(data))

    def tree(self, source: Path, path: str) -> None:
        if source.is_symlink():
            raise ImageBuildError(f"{source} is a symbolic link; only files and directories are added to images")
        if source.is_dir():
            self.directory(path)
            for child in sorted(source.iterdir()):
                self.tree(child, f"{path}/{child.name}")
        else:
            stat = source.stat()
            self.file(path, source.read_bytes(), mode=stat.st_mode & 0o777, mtime=int(stat.st_mtime))


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
