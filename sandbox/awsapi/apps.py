"""The AWS endpoint layer: protocols and identity, knowing no service."""
from django.apps import AppConfig


class AwsApiConfig(AppConfig):
    name = "sandbox.awsapi"
    label = "awsapi"
    verbose_name = "AWS endpoint"

    def ready(self):
        from django.db.models.signals import post_delete

        from .providers import provider_register
        from .sts import StsApi

        provider_register("sts", StsApi)

        from .identity import access_key_forget
        from .models import AccessKey

        # A deleted key (its learner's account removed) stops signing in every process at once, as a revoked one.
        post_delete.connect(lambda sender, instance, **_: access_key_forget(instance.access_key_id), sender=AccessKey,
                            weak=False, dispatch_uid="awsapi-access-key-forget")
