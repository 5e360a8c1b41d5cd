"""The ECR app: serves its AWS API on the edge endpoint unless SANDCLOUD_REGISTRY_ENABLED is switched off."""
from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "sandbox.registry"
    label = "registry"
    verbose_name = "Elastic Container Registry"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import post_delete

        from sandbox.awsapi import providers

        from .api import EcrApi
        from .models import Repository
        from .services import repository_storage_on_delete

        if settings.SANDCLOUD_REGISTRY["ENABLED"]:
            providers.provider_register("ecr", EcrApi)
        post_delete.connect(repository_storage_on_delete, sender=Repository,
                            dispatch_uid="registry.repository_storage_on_delete")
