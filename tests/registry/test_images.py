"""Images through the ECR API after real pushes: BatchGetImage, BatchDeleteImage (by tag and digest, failures as
AWS lists them), untagged images, and another learner who can reach none of it by the API or the registry."""
from __future__ import annotations

import hashlib
import json

import pytest
from botocore.exceptions import ClientError

from sandbox.registry import distribution
from sandbox.registry.models import GarbageCollection

from .conftest import error_of, password_of, push

pytestmark = pytest.mark.django_db(transaction=True)
KEEP_ONE = json.dumps({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                                                   "countNumber": 1}, "action": {"type": "expire"}}]})


@pytest.fixture
def pushed(ecr, docker_client, tiny_image):
    """hello:1 and hello:latest name one image, hello:2 another."""
    uri = ecr.create_repository(repositoryName="hello")["repository"]["repositoryUri"]
    password = password_of(ecr)
    tiny_image(f"{uri}:1", b"one\n", also=("latest",))
    tiny_image(f"{uri}:2", b"two\n")
    for tag in ("1", "latest", "2"):
        assert push(docker_client, f"{uri}:{tag}", password) is None
    return {each["imageTag"]: each["imageDigest"] for each in ecr.list_images(repositoryName="hello")["imageIds"]}


def test_batch_get_image_answers_the_manifest_as_pushed(ecr, account, pushed):
    answer = ecr.batch_get_image(repositoryName="hello", imageIds=[{"imageTag": "2"}, {"imageTag": "9"}])

    (image,) = answer["images"]
    assert image["imageId"] == {"imageDigest": pushed["2"], "imageTag": "2"}
    assert "sha256:" + hashlib.sha256(image["imageManifest"].encode()).hexdigest() == pushed["2"]
    assert json.loads(image["imageManifest"])["layers"]
    assert image["registryId"] == account.account_id
    assert answer["failures"] == [{"imageId": {"imageTag": "9"}, "failureCode": "ImageNotFound",
                                   "failureReason": "Requested image not found"}]


def test_deleting_one_of_two_tags_leaves_the_image_with_the_other(ecr, account, pushed):
    answer = ecr.batch_delete_image(repositoryName="hello", imageIds=[{"imageTag": "latest"}])

    assert answer["imageIds"] == [{"imageDigest": pushed["1"], "imageTag": "latest"}] and answer["failures"] == []
    assert sorted(each["imageTag"] for each in ecr.list_images(repositoryName="hello")["imageIds"]) == ["1", "2"]
    assert distribution.tags_list(name=f"{account.account_id}/hello") == ["1", "2"]


def test_deleting_the_last_tag_deletes_the_image(ecr, account, pushed):
    ecr.batch_delete_image(repositoryName="hello", imageIds=[{"imageTag": "2"}])

    assert pushed["2"] not in {each["imageDigest"] for each in ecr.list_images(repositoryName="hello")["imageIds"]}
    assert distribution.manifest_get(name=f"{account.account_id}/hello", reference=pushed["2"]) is None
    assert GarbageCollection.objects.filter(status="PENDING").count() == 1  # its layers go at the next collection


def test_deleting_by_digest_deletes_the_image_and_all_its_tags(ecr, account, pushed):
    answer = ecr.batch_delete_image(repositoryName="hello", imageIds=[{"imageDigest": pushed["1"]}])

    assert sorted(each["imageTag"] for each in answer["imageIds"]) == ["1", "latest"]
    assert [each["imageTag"] for each in ecr.list_images(repositoryName="hello")["imageIds"]] == ["2"]
    assert distribution.tags_list(name=f"{account.account_id}/hello") == ["2"]


def test_what_cannot_be_deleted_is_listed_as_failures_as_aws_lists_them(ecr, pushed):
    missing = "sha256:" + "0" * 64
    answer = ecr.batch_delete_image(repositoryName="hello", imageIds=[
        {"imageDigest": missing}, {"imageTag": "nope"}, {"imageDigest": "not-a-digest"},
        {"imageDigest": pushed["2"], "imageTag": "1"}, {}])

    assert answer["imageIds"] == []
    assert [(each["imageId"], each["failureCode"], each["failureReason"]) for each in answer["failures"]] == [
        ({"imageDigest": missing}, "ImageNotFound", "Requested image not found"),
        ({"imageTag": "nope"}, "ImageNotFound", "Requested image not found"),
        ({"imageDigest": "not-a-digest"}, "InvalidImageDigest",
         "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"),
        ({"imageDigest": pushed["2"], "imageTag": "1"}, "ImageTagDoesNotMatchDigest",
         "Invalid request parameters: given tag does not map to the given digest"),
        ({}, "MissingDigestAndTag", "Invalid request parameters: both tag and digest cannot be null")]
    assert len(ecr.list_images(repositoryName="hello")["imageIds"]) == 3


def test_a_tag_pushed_again_leaves_the_old_image_untagged(ecr, docker_client, tiny_image, pushed):
    uri = ecr.describe_repositories()["repositories"][0]["repositoryUri"]
    assert push(docker_client, tiny_image(f"{uri}:2", b"two again\n"), password_of(ecr)) is None

    untagged = ecr.list_images(repositoryName="hello", filter={"tagStatus": "UNTAGGED"})["imageIds"]
    tagged = ecr.describe_images(repositoryName="hello", filter={"tagStatus": "TAGGED"})["imageDetails"]

    assert untagged == [{"imageDigest": pushed["2"]}]
    assert len(tagged) == 2 and pushed["2"] not in {each["imageDigest"] for each in tagged}
    (old,) = ecr.describe_images(repositoryName="hello", imageIds=[{"imageDigest": pushed["2"]}])["imageDetails"]
    assert "imageTags" not in old


@pytest.mark.parametrize("call, kwargs", [
    ("list_images", {}), ("describe_images", {}), ("batch_get_image", {"imageIds": [{"imageTag": "1"}]}),
    ("batch_delete_image", {"imageIds": [{"imageTag": "1"}]}), ("get_lifecycle_policy", {}),
    ("put_image_tag_mutability", {"imageTagMutability": "MUTABLE"}),
    ("put_lifecycle_policy", {"lifecyclePolicyText": KEEP_ONE}), ("start_lifecycle_policy_preview", {}),
    ("delete_repository", {"force": True}),
])
def test_another_learner_reaches_no_image_through_the_api(ecr, other_ecr, account, pushed, call, kwargs):
    with pytest.raises(ClientError) as caught:
        getattr(other_ecr, call)(repositoryName="hello", **kwargs)

    assert error_of(caught)[0] == "RepositoryNotFoundException"
    assert len(ecr.list_images(repositoryName="hello")["imageIds"]) == 3


def test_another_learner_can_neither_pull_nor_overwrite_through_the_registry(ecr, other_ecr, docker_client,
                                                                           tiny_image, pushed):
    uri = ecr.describe_repositories()["repositories"][0]["repositoryUri"]
    theirs = password_of(other_ecr)
    docker_client.images.remove(f"{uri}:2", force=True)

    with pytest.raises(Exception) as caught:
        docker_client.api.pull(uri, tag="2", auth_config={"username": "AWS", "password": theirs})
    overwrite = push(docker_client, tiny_image(f"{uri}:2", b"theirs\n"), theirs)

    assert "denied" in str(caught.value) or "unauthorized" in str(caught.value)
    assert overwrite is not None and ("denied" in overwrite or "unauthorized" in overwrite)
    assert {each["imageTag"]: each["imageDigest"] for each in ecr.list_images(repositoryName="hello")["imageIds"]
            } == pushed
