"""ECR's repositories: rows the platform keeps beside the registry, which holds the images themselves."""
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
