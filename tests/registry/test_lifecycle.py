"""Lifecycle policies: put, got, deleted and previewed through the API, validated as AWS validates them, and applied
by the registry's periodic tend, which expires what the rules say, records it and reclaims the storage."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from botocore.exceptions import ClientError
from django.conf import settings
from django.utils import timezone

from sandbox.registry import distribution, server, tasks
from sandbox.registry.models import GarbageCollection, Image, ImageExpiry

from .conftest import error_of, password_of, push

pytestmark = pytest.mark.django_db(transaction=True)


def rule(priority: int, status: str, count_type: str, number: int, **selection) -> dict:
    chosen = {"tagStatus": status, "countType": count_type, "countNumber": number, **selection}
    if count_type == "sinceImagePushed":
        chosen["countUnit"] = "days"
    return {"rulePriority": priority, "description": f"rule {priority}", "selection": chosen,
            "action": {"type": "expire"}}


KEEP_LAST_V_AND_OLD_UNTAGGED = json.dumps({"rules": [
    rule(1, "tagged", "imageCountMoreThan", 1, tagPrefixList=["v"]),
    rule(2, "untagged", "sinceImagePushed", 2),
]})


@pytest.fixture
def history(ecr, docker_client, tiny_image):
    """app:v1, v2, v3 pushed in that order; app:latest pushed twice, so its first image is untagged (and, as if it
    was pushed three days ago, old); a second untagged image pushed today. Answers {name: digest}."""
    uri = ecr.create_repository(repositoryName="app")["repository"]["repositoryUri"]
    password = password_of(ecr)
    digests = {}
    for tag, content in [("v1", b"1"), ("v2", b"2"), ("v3", b"3"), ("latest", b"old"), ("latest", b"recent"),
                         ("latest", b"newest")]:
        assert push(docker_client, tiny_image(f"{uri}:{tag}", content), password) is None
        (detail,) = ecr.describe_images(repositoryName="app", imageIds=[{"imageTag": tag}])["imageDetails"]
        digests[f"{tag}:{content.decode()}"] = detail["imageDigest"]
    Image.objects.filter(digest=digests["latest:old"]).update(pushed_at=timezone.now() - dt.timedelta(days=3))
    return digests


def test_a_policy_is_put_got_and_deleted(ecr, account):
    ecr.create_repository(repositoryName="app")

    put = ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=KEEP_LAST_V_AND_OLD_UNTAGGED)
    got = ecr.get_lifecycle_policy(repositoryName="app")
    deleted = ecr.delete_lifecycle_policy(repositoryName="app")

    assert put == {**put, "registryId": account.account_id, "repositoryName": "app",
                   "lifecyclePolicyText": KEEP_LAST_V_AND_OLD_UNTAGGED}
    assert got["lifecyclePolicyText"] == deleted["lifecyclePolicyText"] == KEEP_LAST_V_AND_OLD_UNTAGGED
    with pytest.raises(ClientError) as caught:
        ecr.get_lifecycle_policy(repositoryName="app")
    assert error_of(caught) == ("LifecyclePolicyNotFoundException",
                                f"Lifecycle policy does not exist for the repository with name 'app' in the "
                                f"registry with id '{account.account_id}'")


@pytest.mark.parametrize("rules, detail", [
    ([rule(1, "tagged", "imageCountMoreThan", 1)],
     "tagPrefixList or tagPatternList must be specified when tagStatus is tagged"),
    ([rule(1, "untagged", "imageCountMoreThan", 0)],
     "numeric instance of 'countNumber' is lower than the required minimum (minimum: 1, found: 0)"),
    ([rule(1, "any", "imageCountMoreThan", 1), rule(2, "untagged", "imageCountMoreThan", 1)],
     "there may be only one rule with tagStatus 'any', and it must have the highest rulePriority value"),
    ([rule(1, "untagged", "imageCountMoreThan", 1), rule(1, "untagged", "sinceImagePushed", 1)],
     "rulePriority must be unique"),
    ([rule(1, "sometimes", "imageCountMoreThan", 1)],
     'instance value ("sometimes") of \'tagStatus\' not found in enum (possible values: ["tagged", "untagged", '
     '"any"])'),
    ([{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
       "description": "no action at all, padded to the API's minimum length"}],
     'object has missing required properties (["action"])'),
])
def test_a_policy_aws_would_refuse_is_refused_in_its_words(ecr, rules, detail):
    ecr.create_repository(repositoryName="app")

    with pytest.raises(ClientError) as caught:
        ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=json.dumps({"rules": rules}))

    assert error_of(caught) == ("InvalidParameterException",
                                f"Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: "
                                f"'Lifecycle policy validation failure: {detail}'")


def test_the_preview_says_what_the_policy_would_expire_and_expires_nothing(ecr, history):
    started = ecr.start_lifecycle_policy_preview(repositoryName="app",
                                                 lifecyclePolicyText=KEEP_LAST_V_AND_OLD_UNTAGGED)
    preview = ecr.get_lifecycle_policy_preview(repositoryName="app")

    assert started["status"] == "IN_PROGRESS" and preview["status"] == "COMPLETE"
    expiring = {each["imageDigest"]: each["appliedRulePriority"] for each in preview["previewResults"]}
    assert expiring == {history["v1:1"]: 1, history["v2:2"]: 1, history["latest:old"]: 2}
    assert preview["summary"] == {"expiringImageTotalCount": 3}
    assert len(ecr.describe_images(repositoryName="app")["imageDetails"]) == 6


def test_the_tend_expires_what_the_rules_say_records_it_and_reclaims_the_storage(ecr, account, history):
    ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=KEEP_LAST_V_AND_OLD_UNTAGGED)
    before = server.storage_bytes()

    outcome = tasks.registry_tend_task()

    assert outcome == {"expired": 3, "garbage_collection": "DONE"}
    left = {each["imageDigest"] for each in ecr.describe_images(repositoryName="app")["imageDetails"]}
    assert left == {history["v3:3"], history["latest:recent"], history["latest:newest"]}
    assert distribution.tags_list(name=f"{account.account_id}/app") == ["latest", "v3"]
    assert sorted((each.rule_priority, tuple(each.tags)) for each in ImageExpiry.objects.all()) == [
        (1, ("v1",)), (1, ("v2",)), (2, ())]
    assert server.storage_bytes() < before
    assert GarbageCollection.objects.get().status == "DONE"
    assert ecr.get_lifecycle_policy(repositoryName="app")["lastEvaluatedAt"] is not None


def test_an_any_rule_keeps_the_newest_images_whatever_their_tags(ecr, history):
    keep_two = json.dumps({"rules": [rule(1, "any", "imageCountMoreThan", 2)]})
    ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=keep_two)

    assert tasks.registry_tend_task()["expired"] == 4

    left = {each["imageDigest"] for each in ecr.describe_images(repositoryName="app")["imageDetails"]}
    assert left == {history["latest:recent"], history["latest:newest"]}


def test_an_image_claimed_by_an_earlier_rule_is_not_expired_by_a_later_one(ecr, history):
    policy = json.dumps({"rules": [rule(1, "tagged", "imageCountMoreThan", 5, tagPrefixList=["v"]),
                                   rule(2, "any", "imageCountMoreThan", 1)]})
    ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=policy)

    tasks.registry_tend_task()

    tags = sorted(tag for each in ecr.describe_images(repositoryName="app")["imageDetails"]
                  for tag in each.get("imageTags", []))
    assert tags == ["latest", "v1", "v2", "v3"]  # the v images belong to rule 1, which keeps five


def test_the_tend_is_on_beats_schedule():
    entry = settings.CELERY_BEAT_SCHEDULE["registry-tend"]

    assert entry["task"] == tasks.registry_tend_task.name
    assert entry["schedule"] == settings.SANDCLOUD_REGISTRY["TEND_SECONDS"]
