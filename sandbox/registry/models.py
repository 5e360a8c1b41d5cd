"""ECR's repositories and what the platform records of their images (the registry holds the images themselves)."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from sandbox.awsapi.models import AwsAccount


def registry_host() -> str:
    """The registry's address as Docker names it: loopback on the host (workstations reach it through the proxy)."""
    return f"127.0.0.1:{settings.SANDCLOUD_REGISTRY['PORT']}"


class Repository(models.Model):
    """A repository in a learner's private registry; its images live in the registry under `<account id>/<name>`."""

    class TagMutability(models.TextChoices):
        MUTABLE = "MUTABLE"
        IMMUTABLE = "IMMUTABLE"

    account = models.ForeignKey(AwsAccount, on_delete=models.CASCADE, related_name="ecr_repositories")
    name = models.CharField(max_length=256)
    created = models.DateTimeField(default=timezone.now)
    image_tag_mutability = models.CharField(max_length=16, choices=TagMutability.choices,
                                            default=TagMutability.MUTABLE)
    scan_on_push = models.BooleanField(default=False)  # accepted and reported; no scanner runs
    encryption_type = models.CharField(max_length=16, default="AES256")  # accepted: the disk is not encrypted
    kms_key = models.CharField(max_length=2048, blank=True)
    lifecycle_policy = models.TextField(blank=True)  # the policy's JSON text exactly as put; empty: none
    lifecycle_evaluated = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "name"], name="registry_repository_unique_name")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.registry_name

    @property
    def registry_name(self) -> str:
        """The name inside the registry: the account's path prefix, then the repository's name."""
        return f"{self.account.account_id}/{self.name}"

    @property
    def uri(self) -> str:
        return f"{registry_host()}/{self.registry_name}"


class Image(models.Model):
    """One manifest pushed to a repository, recorded by the registry's front as the push completed."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="images")
    digest = models.CharField(max_length=100)
    media_type = models.CharField(max_length=200)
    manifest = models.TextField()  # exactly the bytes pushed (their digest is `digest`)
    size = models.BigIntegerField(default=0)  # config plus compressed layers, as ECR's imageSizeInBytes
    blobs = models.JSONField(default=list)  # [[digest, size], ...]: what the image holds on the registry's disk
    pushed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "digest"], name="registry_image_unique_digest")]
        ordering = ["-pushed_at", "digest"]


class ImageTag(models.Model):
    """A tag names one image of its repository at a time; pushing it again moves it."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tags")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=300)
    pushed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "name"], name="registry_tag_unique_name")]
        ordering = ["name"]


class LifecyclePreview(models.Model):
    """The latest StartLifecyclePolicyPreview of a repository: what its policy would expire, as of then."""

    repository = models.OneToOneField(Repository, on_delete=models.CASCADE, related_name="lifecycle_preview")
    policy = models.TextField()
    results = models.JSONField(default=list)  # [{"digest", "tags", "pushed_at", "rule"}]
    created = models.DateTimeField(default=timezone.now)


class ImageExpiry(models.Model):
    """An image a lifecycle policy expired: the console shows these, AWS's console shows the same history."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="expiries")
    digest = models.CharField(max_length=100)
    tags = models.JSONField(default=list)
    size = models.BigIntegerField(default=0)
    rule_priority = models.IntegerField()
    expired_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-expired_at"]


class GarbageCollection(models.Model):
    """One run of the registry's garbage collection, or one asked for (PENDING) after images were deleted."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        DONE = "DONE"
        POSTPONED = "POSTPONED"  # pushes did not drain in time; tried again at the next tend
        FAILED = "FAILED"

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    requested = models.DateTimeField(default=timezone.now)
    finished = models.DateTimeField(null=True, blank=True)
    bytes_before = models.BigIntegerField(default=0)
    bytes_after = models.BigIntegerField(default=0)
    held_writes = models.IntegerField(default=0)  # requests that waited for it
    seconds = models.FloatField(default=0)  # from asking to done, draining included
    held_seconds = models.FloatField(default=0)  # how long every write was held: the collection itself
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested"]
