"""The ECR lab's checks judge the learner's real registry rows: repositories, the images pushes recorded (made here as
the registry's front records them), the lifecycle policy and its preview; answers are files (the solution bot pushes
for real)."""
from __future__ import annotations

import hashlib
import json

import pytest

from labs.checks import CheckContext, ecr_labs
from sandbox.awsapi.identity import aws_account_for
from sandbox.models import Sandbox
from sandbox.registry import lifecycle, services
from sandbox.registry.models import Image, Repository

pytestmark = pytest.mark.django_db

KEEP_NEWEST = json.dumps({"rules": [{"rulePriority": 1, "description": "Keep only the newest image",
                                     "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                                   "countNumber": 1}, "action": {"type": "expire"}}]})
REFUSAL = ("tag invalid: The image tag '1' already exists in the 'hello' repository and cannot be overwritten "
           "because the repository is immutable.")


class AnswersContext(CheckContext):
    """A check's context whose sandbox holds exactly these answer files."""

    def __init__(self, owner, files: dict[str, str] | None = None):
        super().__init__(sandbox=Sandbox(owner=owner), timeout=20)
        self.files = files or {}

    def read_file(self, path: str) -> str | None:
        return self.files.get(path)


def repository_make(learner, **kwargs) -> Repository:
    return services.repository_create(account=aws_account_for(user=learner), name="hello", **kwargs)


def pushed(repository: Repository, tag: str, content: str) -> Image:
    """What the registry's front records when a push of `tag` completes."""
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                           "config": {"digest": "sha256:" + hashlib.sha256(content.encode()).hexdigest(),
                                      "size": 100}, "layers": []}).encode()
    return services.image_record(registry_name=repository.registry_name,
                                 digest="sha256:" + hashlib.sha256(manifest).hexdigest(),
                                 media_type="application/vnd.docker.distribution.manifest.v2+json", manifest=manifest,
                                 tag=tag)


def immutable_with_two_versions(learner) -> Repository:
    repository = repository_make(learner, tag_mutability=Repository.TagMutability.IMMUTABLE)
    pushed(repository, "1", "first")
    pushed(repository, "2", "second")
    return repository


# --- repository ------------------------------------------------------------------------------------------------------

def test_the_repository_check_passes_once_hello_exists(learner):
    repository_make(learner)

    result = ecr_labs.repository_created(AnswersContext(learner))

    assert result.passed, result.message


def test_another_learners_hello_repository_does_not_count(learner, other_learner):
    repository_make(other_learner)

    result = ecr_labs.repository_created(AnswersContext(learner))

    assert not result.passed
    assert "aws ecr create-repository --repository-name hello" in result.message


# --- push ------------------------------------------------------------------------------------------------------------

def test_the_push_check_passes_with_the_digest_of_the_image_tagged_1(learner):
    image = pushed(repository_make(learner), "1", "first")

    result = ecr_labs.image_pushed(AnswersContext(learner, {"~/answers/pushed-digest": image.digest + "\n"}))

    assert result.passed, result.message


def test_the_push_check_asks_for_the_push_while_nothing_is_tagged_1(learner):
    repository = repository_make(learner)
    pushed(repository, "latest", "first")

    result = ecr_labs.image_pushed(AnswersContext(learner))

    assert not result.passed
    assert f"docker push {repository.uri}:1" in result.message


def test_the_push_check_refuses_the_digest_of_another_image(learner):
    repository = repository_make(learner)
    pushed(repository, "1", "first")
    other = pushed(repository, "2", "second")

    result = ecr_labs.image_pushed(AnswersContext(learner, {"~/answers/pushed-digest": other.digest}))

    assert not result.passed
    assert result.fraction == 0.5


# --- immutable -------------------------------------------------------------------------------------------------------

def test_the_immutability_check_passes_with_the_refusal_seen_and_a_new_tag(learner):
    immutable_with_two_versions(learner)

    result = ecr_labs.tags_immutable(AnswersContext(learner, {"~/answers/immutable-push.txt": REFUSAL}))

    assert result.passed, result.message


def test_the_immutability_check_fails_while_tags_are_mutable(learner):
    repository_make(learner)

    result = ecr_labs.tags_immutable(AnswersContext(learner, {"~/answers/immutable-push.txt": REFUSAL}))

    assert not result.passed
    assert "--image-tag-mutability IMMUTABLE" in result.message


def test_the_immutability_check_wants_the_refusal_and_a_different_image_as_2(learner):
    repository = repository_make(learner, tag_mutability=Repository.TagMutability.IMMUTABLE)
    pushed(repository, "1", "first")
    pushed(repository, "2", "first")  # the same image under a second tag

    result = ecr_labs.tags_immutable(AnswersContext(learner, {"~/answers/immutable-push.txt": "1: digest: ok"}))

    assert not result.passed
    assert "does not hold the refusal" in result.message and "name the same image" in result.message


# --- lifecycle -------------------------------------------------------------------------------------------------------

def policy_put(repository: Repository, text: str) -> None:
    repository.lifecycle_policy = text
    repository.save(update_fields=["lifecycle_policy"])


def test_the_lifecycle_check_passes_with_the_tags_the_preview_expires(learner):
    repository = immutable_with_two_versions(learner)
    policy_put(repository, KEEP_NEWEST)
    lifecycle.preview_start(repository=repository, text=KEEP_NEWEST)

    result = ecr_labs.lifecycle_previewed(AnswersContext(learner, {"~/answers/expiring-tags": "1\n"}))

    assert result.passed, result.message


def test_the_lifecycle_check_wants_a_preview_of_the_policy_in_place(learner):
    repository = immutable_with_two_versions(learner)
    lifecycle.preview_start(repository=repository, text=KEEP_NEWEST)
    policy_put(repository, KEEP_NEWEST.replace('"countNumber": 1', '"countNumber": 5'))

    result = ecr_labs.lifecycle_previewed(AnswersContext(learner, {"~/answers/expiring-tags": "1"}))

    assert not result.passed
    assert "start-lifecycle-policy-preview" in result.message


def test_the_lifecycle_check_says_when_the_policy_expires_nothing(learner):
    repository = immutable_with_two_versions(learner)
    keep_five = KEEP_NEWEST.replace('"countNumber": 1', '"countNumber": 5')
    policy_put(repository, keep_five)
    lifecycle.preview_start(repository=repository, text=keep_five)

    result = ecr_labs.lifecycle_previewed(AnswersContext(learner, {"~/answers/expiring-tags": ""}))

    assert not result.passed
    assert "expires nothing" in result.message


def test_the_lifecycle_check_refuses_tags_the_preview_keeps(learner):
    repository = immutable_with_two_versions(learner)
    policy_put(repository, KEEP_NEWEST)
    lifecycle.preview_start(repository=repository, text=KEEP_NEWEST)

    result = ecr_labs.lifecycle_previewed(AnswersContext(learner, {"~/answers/expiring-tags": "2"}))

    assert not result.passed
    assert result.fraction == 0.75
