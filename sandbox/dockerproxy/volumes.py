"""Learners' named volumes, each a size-capped filesystem of its own: an ext4 image file the platform loop-mounts.

Docker's local volumes are plain directories on the host's disk with no size limit here (overlay2 on ext4, no project
quotas), so a learner writing to a volume could fill the host. Instead the proxy makes a sparse file of VOLUME_MB,
formats it, mounts it under the proxy's directory, and creates the learner's volume as a bind of that mount: full at
VOLUME_MB ("No space left on device" in the learner's container), whatever they write.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

from django.conf import settings


def _base() -> Path:
    path = Path(settings.SANDCLOUD_DOCKER_PROXY["DIR"]) / "volumes"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _paths(engine_name: str) -> tuple[Path, Path]:
    return _base() / f"{engine_name}.img", _base() / engine_name


def volume_disk_create(engine_name: str) -> str:
    """Makes and mounts the volume's filesystem; returns the directory the engine's volume binds."""
    image, mountpoint = _paths(engine_name)
    size_mb = settings.SANDCLOUD_DOCKER_PROXY["VOLUME_MB"]
    with open(image, "wb") as disk:
        disk.truncate(size_mb * 1024 * 1024)  # sparse: takes disk only as it fills
    subprocess.run(["mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", str(image)], check=True,
                   capture_output=True, timeout=60)
    _mount(image, mountpoint)
    return str(mountpoint)


def _mount(image: Path, mountpoint: Path) -> None:
    mountpoint.mkdir(exist_ok=True)
    if not os.path.ismount(mountpoint):
        subprocess.run(["mount", "-o", "loop,nosuid,nodev", str(image), str(mountpoint)], check=True,
                       capture_output=True, timeout=60)
    # Only the learner's own containers mount it; they run as the uid of the workstation they came from.
    os.chmod(mountpoint, 0o1777)


def volume_disk_remove(engine_name: str) -> None:
    image, mountpoint = _paths(engine_name)
    if os.path.ismount(mountpoint):
        subprocess.run(["umount", "-l", str(mountpoint)], check=False, capture_output=True, timeout=60)
    image.unlink(missing_ok=True)
    if mountpoint.is_dir():
        mountpoint.rmdir()


def volume_disks_tend(engine_volumes: set[str]) -> None:
    """At the proxy's start: mounts each volume's filesystem again (after a reboot), and removes those whose volume
    the engine no longer has (removed behind the proxy's back)."""
    for image in _base().glob("*.img"):
        name = image.name.removesuffix(".img")
        if name in engine_volumes:
            _mount(image, _base() / name)
        else:
            volume_disk_remove(name)
