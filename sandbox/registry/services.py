"""Writes to ECR: repositories, the images the registry's front records as pushes complete, and their deletion (the
registry holds the images; these keep the rows the API and the console read)."""
from __future__ import annotations

import hashlib
import json
import logging
import re

from django.db import IntegrityError, transaction
from django.utils import timezone

from sandbox.awsapi.models import AwsAccount

from . import collection, distribution, selectors
from .errors import RepositoryAlreadyExists, RepositoryNotEmpty, RepositoryNotFound
from .models import Image, ImageTag, Repository

logger = logging.getLogger(__name__)
DIGEST = re.compile(r"[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+")


def repository_create(*, account: AwsAccount, name: str, tag_mutability: str = Repository.TagMutability.MUTABLE,
                      scan_on_push: bool = False, encryption_type: str = "AES256", kms_key: str = "") -> Repository:
    try:
        with transaction.atomic():
            repository = Repository.objects.create(account=account, name=name, image_tag_mutability=tag_mutability,
                                                   scan_on_push=scan_on_push, encryption_type=encryption_type,
                                                   kms_key=kms_key)
    except IntegrityError:
        raise RepositoryAlreadyExists(name=name, registry_id=account.account_id) from None
    repository.account = account
    return repository


def repository_delete(*, account: AwsAccount, name: str, force: bool = False) -> Repository:
    """Deletes the repository; one that holds images only with `force`, which deletes them too."""
    repository = selectors.repository_for(account=account, name=name)
    if repository is None:
        raise RepositoryNotFound(name=name, registry_id=account.account_id)
    if not force and (repository.images.exists() or distribution.tags_list(name=repository.registry_name)):
        raise RepositoryNotEmpty(name=name, registry_id=account.account_id)
    # Its images leave the registry's disk when the row goes (repository_storage_on_delete).
    Repository.objects.filter(pk=repository.pk).delete()
    logger.info("ECR repository %s deleted", repository.registry_name)
    return repository


def repository_storage_on_delete(sender, instance: Repository, **kwargs) -> None:
    """post_delete of a repository, however it goes (DeleteRepository, or its account closed): once the deletion
    commits, its images go from the registry's disk too, and a garbage collection is asked for."""
    registry_name = instance.registry_name

    def remove() -> None:
        distribution.repository_storage_remove(name=registry_name)
        collection.gc_request()
    transaction.on_commit(remove)


def repository_tag_mutability_put(*, repository: Repository, mutability: str) -> Repository:
    repository.image_tag_mutability = mutability
    repository.save(update_fields=["image_tag_mutability"])
    return repository


# --- Images, as the front records them ----------------------------------------------------------------------------

def _blobs_of(manifest: dict) -> list[list]:
    parts = [manifest.get("config") or {}, *(manifest.get("layers") or [])]
    return [[part["digest"], int(part.get("size") or 0)] for part in parts if part.get("digest")]


def image_record(*, registry_name: str, digest: str, media_type: str, manifest: bytes, tag: str | None) -> Image | None:
    """Records a manifest the registry accepted (a push's last step) and moves `tag` to it; None when the repository
    went meanwhile. Its size is ECR's imageSizeInBytes: the config and the compressed layers."""
    repository = selectors.repository_by_registry_name(registry_name)
    if repository is None:
        return None
    try:
        parsed = json.loads(manifest)
    except ValueError:
        parsed = {}
    blobs = _blobs_of(parsed) if isinstance(parsed, dict) else []
    blobs.append([digest, len(manifest)])  # the manifest is a blob on the registry's disk too
    with transaction.atomic():
        image, _ = Image.objects.get_or_create(repository=repository, digest=digest, defaults={
            "media_type": (isinstance(parsed, dict) and parsed.get("mediaType")) or media_type,
            "manifest": manifest.decode("utf-8", "replace"), "blobs": blobs,
            "size": sum(size for blob_digest, size in blobs[:-1])})
        if tag:
            ImageTag.objects.update_or_create(repository=repository, name=tag,
                                              defaults={"image": image, "pushed_at": timezone.now()})
    return image


def tag_overwrite_refusal(*, registry_name: str, tag: str, manifest: bytes) -> str | None:
    """ECR's words when a push would move a tag of an IMMUTABLE repository to another image; None when it may.
    Pushing the very same manifest again overwrites nothing, so it is let through."""
    repository = selectors.repository_by_registry_name(registry_name)
    if repository is None or repository.image_tag_mutability != Repository.TagMutability.IMMUTABLE:
        return None
    current = ImageTag.objects.filter(repository=repository, name=tag).select_related("image").first()
    if current is None or current.image.digest == "sha256:" + hashlib.sha256(manifest).hexdigest():
        return None
    return (f"The image tag '{tag}' already exists in the '{repository.name}' repository and cannot be overwritten "
            f"because the repository is immutable.")


# --- Deleting images ----------------------------------------------------------------------------------------------

def _failure(wanted: dict, code: str, reason: str) -> dict:
    return {"imageId": wanted, "failureCode": code, "failureReason": reason}


def image_delete(*, image: Image) -> list[dict]:
    """Deletes the image and all its tags (from the registry, then its rows); the image ids deleted, as AWS lists
    them: one per tag, or the digest alone for an untagged image."""
    tags = list(image.tags.values_list("name", flat=True))
    distribution.manifest_delete(name=image.repository.registry_name, digest=image.digest)
    Image.objects.filter(pk=image.pk).delete()
    collection.gc_request()
    return [{"imageDigest": image.digest, "imageTag": tag} for tag in tags] or [{"imageDigest": image.digest}]


def images_delete(*, repository: Repository, image_ids: list[dict]) -> tuple[list[dict], list[dict]]:
    """BatchDeleteImage: by digest (the image and its tags) or by tag (the tag; the image too when it was its last
    tag). Answers (deleted ids, failures) as AWS does, one failure per id it could not delete."""
    deleted, failures = [], []
    for wanted in image_ids:
        digest, tag = wanted.get("imageDigest"), wanted.get("imageTag")
        if not digest and not tag:
            failures.append(_failure(wanted, "MissingDigestAndTag",
                                     "Invalid request parameters: both tag and digest cannot be null"))
            continue
        if digest and not DIGEST.fullmatch(digest):
            failures.append(_failure(wanted, "InvalidImageDigest", "Invalid request parameters: image digest should "
                                                                   "satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"))
            continue
        image = selectors.image_find(repository=repository, digest=digest, tag=tag)
        if image is None:
            failures.append(_failure(wanted, "ImageNotFound", "Requested image not found"))
            continue
        names = set(image.tags.values_list("name", flat=True))
        if digest and tag and tag not in names:
            failures.append(_failure(wanted, "ImageTagDoesNotMatchDigest",
                                     "Invalid request parameters: given tag does not map to the given digest"))
            continue
        if tag and not digest and names - {tag}:
            distribution.tag_remove(name=repository.registry_name, tag=tag)
            ImageTag.objects.filter(repository=repository, name=tag).delete()
            deleted.append({"imageDigest": image.digest, "imageTag": tag})
            continue
        deleted.extend(image_delete(image=image))
    return deleted, failures
