"""The registry's own HTTP API (the OCI distribution API), read and cleaned by the platform with its own tokens."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import requests
from django.conf import settings

from .errors import RegistryUnavailable
from .server import storage_dir
from .tokens import platform_token

TIMEOUT = 10  # seconds, per request to the registry on loopback
MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


def _url(path: str) -> str:
    return f"http://127.0.0.1:{settings.SANDCLOUD_REGISTRY['PORT']}/v2/{path}"


def _get(path: str, *, name: str, method: str = "GET", headers: dict | None = None) -> requests.Response:
    token = platform_token(name=name, actions=("pull",))
    try:
        return requests.request(method, _url(path), timeout=TIMEOUT,
                                headers={"Authorization": f"Bearer {token}", **(headers or {})})
    except requests.RequestException as error:
        raise RegistryUnavailable() from error


def tags_list(*, name: str) -> list[str]:
    """The repository's tags in the registry; none when nothing was ever pushed to it (the registry: NAME_UNKNOWN)."""
    response = _get(f"{name}/tags/list", name=name)
    if response.status_code == 404:
        return []
    if response.status_code != 200:
        raise RegistryUnavailable()
    return sorted(response.json().get("tags") or [])


def manifest_get(*, name: str, reference: str) -> tuple[str, str, dict] | None:
    """(digest, media type, manifest) of a tag or digest, or None when the registry has no such manifest."""
    response = _get(f"{name}/manifests/{reference}", name=name, headers={"Accept": MANIFEST_TYPES})
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise RegistryUnavailable()
    return (response.headers.get("Docker-Content-Digest", ""), response.headers.get("Content-Type", ""),
            response.json())


@dataclass(frozen=True)
class Image:
    """One manifest in a repository, with every tag that names it."""

    digest: str
    tags: tuple[str, ...]
    size: int  # the compressed layers and the config, as ECR counts an image's size
    media_type: str
    pushed_at: dt.datetime | None


def _pushed_at(name: str, digest: str) -> dt.datetime | None:
    """When the manifest first arrived: the registry's API does not say, so this reads the time its revision link was
    written in the registry's storage (distribution's filesystem layout, stable since 2.0)."""
    algorithm, _, hexdigest = digest.partition(":")
    link = (storage_dir() / "docker" / "registry" / "v2" / "repositories" / name / "_manifests" / "revisions"
            / algorithm / hexdigest / "link")
    try:
        return dt.datetime.fromtimestamp(link.stat().st_mtime, tz=dt.timezone.utc).replace(microsecond=0)
    except OSError:
        return None


def images_list(*, name: str) -> list[Image]:
    """The repository's tagged images, oldest push first (untagged manifests are not listed by the registry's API)."""
    by_digest: dict[str, dict] = {}
    for tag in tags_list(name=name):
        found = manifest_get(name=name, reference=tag)
        if found is None:
            continue  # the tag went between the two requests
        digest, media_type, manifest = found
        entry = by_digest.setdefault(digest, {"tags": [], "media_type": media_type, "manifest": manifest})
        entry["tags"].append(tag)
    images = []
    for digest, entry in by_digest.items():
        manifest = entry["manifest"]
        parts = [manifest.get("config") or {}, *(manifest.get("layers") or [])]
        images.append(Image(digest=digest, tags=tuple(sorted(entry["tags"])),
                            size=sum(int(part.get("size") or 0) for part in parts),
                            media_type=manifest.get("mediaType") or entry["media_type"],
                            pushed_at=_pushed_at(name, digest)))
    epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return sorted(images, key=lambda image: (image.pushed_at or epoch, image.digest))
