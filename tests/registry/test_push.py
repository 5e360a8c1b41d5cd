"""Pushing with the host's Docker Engine to the real registry, logged in with ECR authorization tokens: a learner
pushes to their own repositories, and to nobody else's."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest
from botocore.exceptions import ClientError

from sandbox.awsapi import identity
from sandbox.registry import distribution

from .conftest import error_of, password_of, push

pytestmark = pytest.mark.django_db(transaction=True)


def test_logging_in_with_the_authorization_token_succeeds(ecr, docker_client, registry):
    answer = docker_client.login(username="AWS", password=password_of(ecr), registry=registry["process"].host,
                                 reauth=True)

    assert answer["Status"] == "Login Succeeded"


def test_logging_in_with_a_forged_token_fails(docker_client, registry):
    with pytest.raises(docker.errors.APIError) as caught:
        docker_client.login(username="AWS", password="forged", registry=registry["process"].host, reauth=True)

    assert "unauthorized" in str(caught.value).lower() or "invalid" in str(caught.value).lower()


def test_the_owner_pushes_to_their_repository(ecr, account, docker_client, tiny_image):
    uri = ecr.create_repository(repositoryName="hello")["repository"]["repositoryUri"]
    tiny_image(f"{uri}:1")

    assert push(docker_client, f"{uri}:1", password_of(ecr)) is None
    assert distribution.tags_list(name=f"{account.account_id}/hello") == ["1"]


def test_another_learner_cannot_push_to_the_repository(ecr, other_ecr, account, docker_client, tiny_image):
    uri = ecr.create_repository(repositoryName="hello")["repository"]["repositoryUri"]
    tiny_image(f"{uri}:1")

    error = push(docker_client, f"{uri}:1", password_of(other_ecr))

    assert error is not None and ("denied" in error or "unauthorized" in error)
    assert distribution.tags_list(name=f"{account.account_id}/hello") == []


def test_pushing_to_a_repository_that_does_not_exist_fails(ecr, account, docker_client, tiny_image, registry):
    reference = tiny_image(f"{registry['process'].host}/{account.account_id}/missing:1")

    error = push(docker_client, reference, password_of(ecr))

    assert error == (f"name unknown: The repository with name 'missing' does not exist in the registry with id "
                     f"'{account.account_id}'")


def test_a_repository_with_images_is_deleted_only_with_force(ecr, account, docker_client, tiny_image, registry):
    uri = ecr.create_repository(repositoryName="hello")["repository"]["repositoryUri"]
    assert push(docker_client, tiny_image(f"{uri}:1"), password_of(ecr)) is None

    with pytest.raises(ClientError) as caught:
        ecr.delete_repository(repositoryName="hello")
    assert error_of(caught) == (
        "RepositoryNotEmptyException",
        f"The repository with name 'hello' in registry with id '{account.account_id}' cannot be deleted because it "
        f"still contains images")

    ecr.delete_repository(repositoryName="hello", force=True)
    ecr.create_repository(repositoryName="hello")
    assert distribution.tags_list(name=f"{account.account_id}/hello") == []


# --- images, as ListImages and DescribeImages answer them after real pushes -----------------------------------

@pytest.fixture
def pushed(ecr, docker_client, tiny_image):
    """hello:1 and hello:latest name one image, hello:2 another; all pushed by their owner."""
    uri = ecr.create_repository(repositoryName="hello")["repository"]["repositoryUri"]
    password = password_of(ecr)
    tiny_image(f"{uri}:1", b"one\n", also=("latest",))
    tiny_image(f"{uri}:2", b"two\n")
    for tag in ("1", "latest", "2"):
        assert push(docker_client, f"{uri}:{tag}", password) is None
    return uri


def test_list_images_names_every_tag_with_its_digest(ecr, pushed):
    ids = ecr.list_images(repositoryName="hello")["imageIds"]

    assert sorted(each["imageTag"] for each in ids) == ["1", "2", "latest"]
    digest_of = {each["imageTag"]: each["imageDigest"] for each in ids}
    assert digest_of["1"] == digest_of["latest"] != digest_of["2"]
    assert all(digest.startswith("sha256:") for digest in digest_of.values())


def test_describe_images_gives_each_image_once_with_its_tags_size_and_push_time(ecr, account, pushed):
    details = ecr.describe_images(repositoryName="hello")["imageDetails"]

    assert sorted(tuple(each["imageTags"]) for each in details) == [("1", "latest"), ("2",)]
    for each in details:
        assert each["registryId"] == account.account_id and each["repositoryName"] == "hello"
        assert each["imageSizeInBytes"] > 0
        assert each["imageManifestMediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
        assert (dt.datetime.now(dt.timezone.utc) - each["imagePushedAt"]).total_seconds() < 120


def test_describe_images_by_tag_and_a_missing_tag(ecr, account, pushed):
    (detail,) = ecr.describe_images(repositoryName="hello", imageIds=[{"imageTag": "2"}])["imageDetails"]
    assert detail["imageTags"] == ["2"]

    with pytest.raises(ClientError) as caught:
        ecr.describe_images(repositoryName="hello", imageIds=[{"imageTag": "3"}])
    assert error_of(caught) == (
        "ImageNotFoundException",
        f"The image with imageId {{imageDigest:'null', imageTag:'3'}} does not exist within the repository with name "
        f"'hello' in the registry with id '{account.account_id}'")


def test_list_images_pages(ecr, pushed):
    pages = ecr.get_paginator("list_images").paginate(repositoryName="hello", PaginationConfig={"PageSize": 2})

    assert [len(page["imageIds"]) for page in pages] == [2, 1]


def test_a_new_repository_has_no_images(ecr):
    ecr.create_repository(repositoryName="empty")

    assert ecr.list_images(repositoryName="empty")["imageIds"] == []
    assert ecr.describe_images(repositoryName="empty")["imageDetails"] == []


def test_another_learner_cannot_list_the_images(ecr, other_ecr, pushed):
    with pytest.raises(ClientError) as caught:
        other_ecr.list_images(repositoryName="hello")

    assert error_of(caught)[0] == "RepositoryNotFoundException"


def test_closing_the_account_removes_its_images_from_the_registry(ecr, learner, account, docker_client, tiny_image,
                                                                    registry):
    uri = ecr.create_repository(repositoryName="hello")["repository"]["repositoryUri"]
    assert push(docker_client, tiny_image(f"{uri}:1"), password_of(ecr)) is None

    identity.aws_account_close(user=learner)

    assert distribution.tags_list(name=f"{account.account_id}/hello") == []


def test_the_aws_clis_get_login_password_logs_docker_in(live_server, learner, docker_client, registry):
    key, secret = identity.access_key_create(user=learner)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "AWS_ACCESS_KEY_ID": key.access_key_id,
           "AWS_SECRET_ACCESS_KEY": secret, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
    done = subprocess.run([str(Path(sys.executable).with_name("aws")), "ecr", "get-login-password",
                           "--endpoint-url", live_server.url + "/aws"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr

    answer = docker_client.login(username="AWS", password=done.stdout.strip(), registry=registry["process"].host,
                                 reauth=True)

    assert answer["Status"] == "Login Succeeded"
