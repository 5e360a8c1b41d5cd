"""ECR's errors, in ECR's words (the codes and messages its API answers with)."""
from __future__ import annotations

from sandbox.awsapi.errors import AwsError


class RepositoryAlreadyExists(AwsError):
    def __init__(self, *, name: str, registry_id: str):
        super().__init__("RepositoryAlreadyExistsException",
                         f"The repository with name '{name}' already exists in the registry with id '{registry_id}'")


class RepositoryNotFound(AwsError):
    def __init__(self, *, name: str, registry_id: str):
        super().__init__("RepositoryNotFoundException",
                         f"The repository with name '{name}' does not exist in the registry with id '{registry_id}'")


class RepositoryNotEmpty(AwsError):
    def __init__(self, *, name: str, registry_id: str):
        super().__init__("RepositoryNotEmptyException",
                         f"The repository with name '{name}' in registry with id '{registry_id}' cannot be deleted "
                         f"because it still contains images")


class InvalidParameter(AwsError):
    def __init__(self, message: str):
        super().__init__("InvalidParameterException", message)


class RegistryUnavailable(AwsError):
    """The registry process does not answer: the platform's fault, said so, as AWS says of its own failures."""

    def __init__(self):
        super().__init__("ServerException", "The registry is not reachable right now. Please try again in a minute.",
                         status=500, sender_fault=False)


class ImageNotFound(AwsError):
    def __init__(self, *, digest: str | None, tag: str | None, name: str, registry_id: str):
        super().__init__("ImageNotFoundException",
                         f"The image with imageId {{imageDigest:'{digest or 'null'}', imageTag:'{tag or 'null'}'}} "
                         f"does not exist within the repository with name '{name}' in the registry with id "
                         f"'{registry_id}'")


class LifecyclePolicyNotFound(AwsError):
    def __init__(self, *, name: str, registry_id: str):
        super().__init__("LifecyclePolicyNotFoundException",
                         f"Lifecycle policy does not exist for the repository with name '{name}' in the registry "
                         f"with id '{registry_id}'")


class LifecyclePolicyPreviewNotFound(AwsError):
    def __init__(self, *, name: str, registry_id: str):
        super().__init__("LifecyclePolicyPreviewNotFoundException",
                         f"There is no lifecycle policy preview for the repository with name '{name}' in the "
                         f"registry with id '{registry_id}'")


class InvalidLifecyclePolicy(InvalidParameter):
    """A lifecycle policy AWS would refuse, in the words of its validator."""

    def __init__(self, detail: str):
        super().__init__(f"Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
                         f"'Lifecycle policy validation failure: {detail}'")
