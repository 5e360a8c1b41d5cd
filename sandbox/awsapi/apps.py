"""The AWS endpoint layer: protocols and identity, knowing no service."""
from django.apps import AppConfig


class AwsApiConfig(AppConfig):
    name = "sandbox.awsapi"
    label = "awsapi"
    verbose_name = "AWS endpoint"
