"""Writes to ECR: creating and deleting repositories (the registry holds their images; these keep the rows)."""
from __future__ import annotations

import logging
import shutil

from django.db import IntegrityError, transaction

from sandbox.awsapi.models import AwsAccount

from . import distribution, selectors
from .errors import RepositoryAlreadyExists, RepositoryNotEmpty, RepositoryNotFound
from .models import Repository
from .server import storage_dir

logger = logging.getLogger(__name__)


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


def _repository_storage_remove(registry_name: str) -> None:
    """Removes the repository's links to its manifests and layers from the registry's disk, so a repository made
    again under the same name starts empty; the blobs themselves go at the registry's next garbage collection."""
    root = (storage_dir() / "docker" / "registry" / "v2" / "repositories").resolve()
    path = (root / registry_name).resolve()
    if path.is_relative_to(root) and path != root:
        shutil.rmtree(path, ignore_errors=True)


def repository_delete(*, account: AwsAccount, name: str, force: bool = False) -> Repository:
    """Deletes the repository; one that holds images only with `force`, which deletes them too."""
    repository = selectors.repository_for(account=account, name=name)
    if repository is None:
        raise RepositoryNotFound(name=name, registry_id=account.account_id)
    if not force and distribution.tags_list(name=repository.registry_name):
        raise RepositoryNotEmpty(name=name, registry_id=account.account_id)
    # Its images leave the registry's disk when the row goes (repository_storage_on_delete).
    Repository.objects.filter(pk=repository.pk).delete()
    logger.info("ECR repository %s deleted", repository.registry_name)
    return repository


def repository_storage_on_delete(sender, instance: Repository, **kwargs) -> None:
    """post_delete of a repository, however it goes (DeleteRepository, or its account closed): once the deletion
    commits, its images go from the registry's disk too."""
    registry_name = instance.registry_name
    transaction.on_commit(lambda: _repository_storage_remove(registry_name))
