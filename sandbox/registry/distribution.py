"""The registry's own HTTP API (the OCI distribution API), read and cleaned by the platform with its own tokens,
through the front (so the platform's deletes wait for a garbage collection like anyone's writes)."""
from __future__ import annotations

import shutil

import requests
from django.conf import settings

from .errors import RegistryUnavailable
from .server import storage_dir
from .tokens import platform_token

TIMEOUT = 30  # seconds, per request to the registry on loopback (a delete may wait for a garbage collection)
MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


def _url(path: str) -> str:
    return f"http://127.0.0.1:{settings.SANDCLOUD_REGISTRY['PORT']}/v2/{path}"


def _request(path: str, *, name: str, method: str = "GET", actions: tuple[str, ...] = ("pull",),
             headers: dict | None = None) -> requests.Response:
    token = platform_token(name=name, actions=actions)
    try:
        return requests.request(method, _url(path), timeout=TIMEOUT,
                                headers={"Authorization": f"Bearer {token}", **(headers or {})})
    except requests.RequestException as error:
        raise RegistryUnavailable() from error


def tags_list(*, name: str) -> list[str]:
    """The repository's tags in the registry; none when nothing was ever pushed to it (the registry: NAME_UNKNOWN)."""
    response = _request(f"{name}/tags/list", name=name)
    if response.status_code == 404:
        return []
    if response.status_code != 200:
        raise RegistryUnavailable()
    return sorted(response.json().get("tags") or [])


def manifest_get(*, name: str, reference: str) -> tuple[str, str, bytes] | None:
    """(digest, media type, manifest bytes) of a tag or digest, or None when the registry has no such manifest."""
    response = _request(f"{name}/manifests/{reference}", name=name, headers={"Accept": MANIFEST_TYPES})
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise RegistryUnavailable()
    return response.headers.get("Docker-Content-Digest", ""), response.headers.get("Content-Type", ""), \
        response.content


def manifest_delete(*, name: str, digest: str) -> bool:
    """Deletes a manifest and every tag naming it; its blobs go at the next garbage collection. False: not there."""
    response = _request(f"{name}/manifests/{digest}", name=name, method="DELETE", actions=("delete",))
    if response.status_code == 404:
        return False
    if response.status_code != 202:
        raise RegistryUnavailable()
    return True


def _repository_dir(name: str):
    root = (storage_dir() / "docker" / "registry" / "v2" / "repositories").resolve()
    path = (root / name).resolve()
    return root, path


def tag_remove(*, name: str, tag: str) -> None:
    """Untags without deleting the image: distribution 2.8's API cannot (a DELETE by tag is "unsupported"), so this
    removes the tag's directory from the registry's storage, as its own tag service would."""
    root, repository = _repository_dir(name)
    path = (repository / "_manifests" / "tags" / tag).resolve()
    if path.is_relative_to(repository) and path.parent.name == "tags" and repository.is_relative_to(root):
        shutil.rmtree(path, ignore_errors=True)


def repository_storage_remove(*, name: str) -> None:
    """Removes the repository's links to its manifests and layers from the registry's disk, so a repository made
    again under the same name starts empty; the blobs themselves go at the registry's next garbage collection."""
    root, path = _repository_dir(name)
    if path.is_relative_to(root) and path != root:
        shutil.rmtree(path, ignore_errors=True)
