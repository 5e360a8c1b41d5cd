"""Reads of ECR repositories and their recorded images, always within one account."""
from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from sandbox.awsapi.models import AwsAccount

from .models import Image, ImageExpiry, Repository


def repositories_for(*, account: AwsAccount) -> QuerySet[Repository]:
    return Repository.objects.filter(account=account).select_related("account").order_by("name")


def repository_for(*, account: AwsAccount, name: str) -> Repository | None:
    return repositories_for(account=account).filter(name=name).first()


def repository_by_registry_name(registry_name: str) -> Repository | None:
    """The repository a registry name (`<account id>/<name>`) stands for."""
    account_id, _, name = registry_name.partition("/")
    return Repository.objects.filter(account__account_id=account_id, name=name).select_related("account").first()


def repository_exists(*, account_id: str, name: str) -> bool:
    return Repository.objects.filter(account__account_id=account_id, name=name).exists()


def account_exists(*, account_id: str) -> bool:
    """Whether the account an authorization token names is still open (a closed one's tokens are refused)."""
    return AwsAccount.objects.filter(account_id=account_id).exists()


def images_for(*, repository: Repository) -> list[Image]:
    """The repository's images, newest push first, each with `tag_names` (sorted)."""
    images = list(Image.objects.filter(repository=repository).prefetch_related("tags").order_by("-pushed_at", "digest"))
    for image in images:
        image.tag_names = sorted(tag.name for tag in image.tags.all())
    return images


def image_find(*, repository: Repository, digest: str | None = None, tag: str | None = None) -> Image | None:
    """The image a digest or a tag names (a digest wins when both are given)."""
    if digest:
        return Image.objects.filter(repository=repository, digest=digest).first()
    return Image.objects.filter(repository=repository, tags__name=tag).first()


def _distinct_bytes(blob_lists) -> int:
    seen: dict[str, int] = {}
    for blobs in blob_lists:
        for digest, size in blobs:
            seen[digest] = size
    return sum(seen.values())


def repository_bytes(*, repository: Repository) -> int:
    """What the repository holds on disk: its images' distinct layers, configs and manifests."""
    return _distinct_bytes(Image.objects.filter(repository=repository).values_list("blobs", flat=True))


def account_storage_bytes(*, account_id: str) -> int:
    """What counts against a learner's registry quota: the distinct blobs of all their repositories' images."""
    return _distinct_bytes(Image.objects.filter(repository__account__account_id=account_id)
                           .values_list("blobs", flat=True))


def quota_bytes() -> int:
    return settings.SANDCLOUD_REGISTRY["QUOTA_MB"] * 1024 * 1024


def expiries_for(*, repository: Repository, limit: int = 20) -> list[ImageExpiry]:
    return list(ImageExpiry.objects.filter(repository=repository)[:limit])

