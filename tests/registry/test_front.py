"""The registry's front, with the host's Docker Engine pushing through it: immutable tags, the storage quota, "name
unknown", and a garbage collection in the middle of pushes that loses none of them."""
from __future__ import annotations

import threading

import pytest

from config.processes import running_registry
from sandbox.registry import collection, distribution
from sandbox.registry.models import GarbageCollection

from .conftest import password_of, push

pytestmark = pytest.mark.django_db(transaction=True)
IMMUTABLE_REFUSAL = ("tag invalid: The image tag '1' already exists in the 'hello' repository and cannot be "
                     "overwritten because the repository is immutable.")


def test_an_immutable_tag_cannot_be_pushed_again_with_another_image(ecr, account, docker_client, tiny_image):
    uri = ecr.create_repository(repositoryName="hello", imageTagMutability="IMMUTABLE")["repository"]["repositoryUri"]
    password = password_of(ecr)
    assert push(docker_client, tiny_image(f"{uri}:1", b"first\n"), password) is None
    first = ecr.describe_images(repositoryName="hello")["imageDetails"][0]["imageDigest"]

    error = push(docker_client, tiny_image(f"{uri}:1", b"second\n"), password)

    assert error == IMMUTABLE_REFUSAL
    (detail,) = ecr.describe_images(repositoryName="hello")["imageDetails"]
    assert detail["imageDigest"] == first and detail["imageTags"] == ["1"]


def test_an_immutable_repository_takes_new_tags_and_the_same_image_again(ecr, docker_client, tiny_image):
    uri = ecr.create_repository(repositoryName="hello", imageTagMutability="IMMUTABLE")["repository"]["repositoryUri"]
    password = password_of(ecr)
    tiny_image(f"{uri}:1", b"first\n", also=("2",))
    assert push(docker_client, f"{uri}:1", password) is None

    assert push(docker_client, f"{uri}:1", password) is None  # nothing is overwritten
    assert push(docker_client, f"{uri}:2", password) is None
    assert sorted(ecr.describe_images(repositoryName="hello")["imageDetails"][0]["imageTags"]) == ["1", "2"]


def test_a_repository_made_mutable_again_lets_the_tag_move(ecr, docker_client, tiny_image):
    uri = ecr.create_repository(repositoryName="hello", imageTagMutability="IMMUTABLE")["repository"]["repositoryUri"]
    password = password_of(ecr)
    assert push(docker_client, tiny_image(f"{uri}:1", b"first\n"), password) is None

    answer = ecr.put_image_tag_mutability(repositoryName="hello", imageTagMutability="MUTABLE")

    assert answer["imageTagMutability"] == "MUTABLE"
    assert push(docker_client, tiny_image(f"{uri}:1", b"second\n"), password) is None
    details = ecr.describe_images(repositoryName="hello")["imageDetails"]
    assert sorted(bool(each.get("imageTags")) for each in details) == [False, True]  # the first is untagged now


@pytest.fixture
def small_quota(live_server, registry, settings):
    """A second front over the same storage whose learners may hold 3 MB each; the site points at it."""
    with running_registry(token_url=live_server.url + "/registry/token", log_dir=registry["process"].log_path.parent,
                          env={"SANDCLOUD_REGISTRY_QUOTA_MB": "3"}) as process:
        settings.SANDCLOUD_REGISTRY = {**settings.SANDCLOUD_REGISTRY, "PORT": process.port}
        yield process


def test_an_upload_past_the_learners_quota_is_refused(ecr, small_quota, docker_client, layered_image):
    uri = ecr.create_repository(repositoryName="big")["repository"]["repositoryUri"]
    password = password_of(ecr)
    assert push(docker_client, layered_image(f"{uri}:small", layers=1, mb=1), password) is None

    error = push(docker_client, layered_image(f"{uri}:large", layers=1, mb=4), password)

    assert error is not None and error.startswith("denied: Your registry storage is full: your repositories may "
                                                  "hold 3 MB")
    assert [each["imageTags"] for each in ecr.describe_images(repositoryName="big")["imageDetails"]] == [["small"]]


def test_the_quota_counts_every_repository_of_the_learner(ecr, small_quota, docker_client, layered_image):
    password = password_of(ecr)
    first = ecr.create_repository(repositoryName="one")["repository"]["repositoryUri"]
    second = ecr.create_repository(repositoryName="two")["repository"]["repositoryUri"]
    assert push(docker_client, layered_image(f"{first}:1", layers=1, mb=2.5), password) is None

    error = push(docker_client, layered_image(f"{second}:1", layers=1, mb=1), password)

    assert error is not None and "storage is full" in error


def test_another_learners_quota_is_their_own(ecr, other_ecr, small_quota, docker_client, layered_image):
    mine = ecr.create_repository(repositoryName="one")["repository"]["repositoryUri"]
    theirs = other_ecr.create_repository(repositoryName="one")["repository"]["repositoryUri"]
    assert push(docker_client, layered_image(f"{mine}:1", layers=1, mb=2.5), password_of(ecr)) is None

    assert push(docker_client, layered_image(f"{theirs}:1", layers=1, mb=2.5), password_of(other_ecr)) is None


def test_a_garbage_collection_during_pushes_loses_none_and_reclaims_deleted_layers(ecr, registry, docker_client,
                                                                                  layered_image):
    password = password_of(ecr)
    old = ecr.create_repository(repositoryName="old")["repository"]["repositoryUri"]
    busy = ecr.create_repository(repositoryName="busy")["repository"]["repositoryUri"]
    late = ecr.create_repository(repositoryName="late")["repository"]["repositoryUri"]
    assert push(docker_client, layered_image(f"{old}:1", layers=2, mb=4), password) is None
    ecr.batch_delete_image(repositoryName="old", imageIds=[{"imageTag": "1"}])
    layered_image(f"{busy}:1", layers=4, mb=8)
    layered_image(f"{late}:1", layers=2, mb=2)
    first_layer_pushed, outcome = threading.Event(), {}

    def noticing(message):
        if message.get("status") == "Pushed":
            first_layer_pushed.set()

    def pushing(key, reference, **kwargs):
        outcome[key] = push(docker_client, reference, password, **kwargs)

    busy_push = threading.Thread(target=pushing, args=("busy", f"{busy}:1"), kwargs={"on_message": noticing})
    busy_push.start()
    assert first_layer_pushed.wait(60)  # some of its layers are stored, its manifest is not yet
    collecting = threading.Thread(target=lambda: outcome.update(gc=collection.gc_run()))
    collecting.start()
    late_push = threading.Thread(target=pushing, args=("late", f"{late}:1"))  # starts while the collection runs
    late_push.start()
    for thread in (busy_push, collecting, late_push):
        thread.join(180)

    assert outcome["busy"] is None and outcome["late"] is None
    record = outcome["gc"]
    assert record.status == GarbageCollection.Status.DONE
    assert record.bytes_before - record.bytes_after >= 8 * 1024 * 1024  # the deleted image's layers
    for reference in (f"{busy}:1", f"{late}:1"):  # every layer of both is there: pulling them again works
        docker_client.images.remove(reference, force=True)
        repository, _, tag = reference.rpartition(":")
        docker_client.api.pull(repository, tag=tag, auth_config={"username": "AWS", "password": password})
        assert docker_client.images.get(reference)
    assert not GarbageCollection.objects.filter(status=GarbageCollection.Status.PENDING).exists()


def test_a_learners_token_cannot_ask_for_a_garbage_collection(ecr, registry):
    import requests

    response = requests.post(f"http://{registry['process'].host}{collection.CONTROL_PATH}",
                             headers={"Authorization": "Bearer " + password_of(ecr)}, timeout=10)

    assert response.status_code == 401
    assert not GarbageCollection.objects.exists()


def test_a_repository_of_another_account_is_not_said_to_be_unknown(ecr, other_ecr, other_account, docker_client,
                                                                     tiny_image, registry):
    reference = tiny_image(f"{registry['process'].host}/{other_account.account_id}/missing:1")

    error = push(docker_client, reference, password_of(ecr))

    assert error is not None and "name unknown" not in error and other_account.account_id not in error
    assert distribution.tags_list(name=f"{other_account.account_id}/missing") == []
