"""The ECR console (/registry/): a learner's repositories with their sizes and quota use, one repository's images,
policy and push commands; nobody else's, and not to visitors."""
from __future__ import annotations

import json

import pytest

from .conftest import password_of, push

pytestmark = pytest.mark.django_db(transaction=True)
POLICY = json.dumps({"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                                                                 "countNumber": 1}, "action": {"type": "expire"}}]})


@pytest.fixture
def pushed(ecr, docker_client, tiny_image):
    uri = ecr.create_repository(repositoryName="team/hello", imageTagMutability="IMMUTABLE")["repository"][
        "repositoryUri"]
    password = password_of(ecr)
    for tag, content in (("v1", b"one\n"), ("v2", b"two\n")):
        assert push(docker_client, tiny_image(f"{uri}:{tag}", content), password) is None
    ecr.put_lifecycle_policy(repositoryName="team/hello", lifecyclePolicyText=POLICY)
    return uri


def test_the_list_shows_the_learners_repositories_and_quota_use(client, learner, pushed):
    client.force_login(learner)

    page = client.get("/registry/").content.decode()

    assert 'href="/registry/repositories/team/hello/"' in page
    assert pushed in page and "Immutable" in page
    assert "of 2.0\xa0GB" in page  # the quota
    assert 'id="cmd-login">aws ecr get-login-password | docker login --username AWS --password-stdin 127.0.0.1:' \
        in page


def test_a_repository_page_shows_tags_digests_policy_preview_and_the_exact_commands(client, learner, ecr, pushed):
    client.force_login(learner)
    digests = [each["imageDigest"] for each in ecr.describe_images(repositoryName="team/hello")["imageDetails"]]

    page = client.get("/registry/repositories/team/hello/").content.decode()

    assert ">v1</span>" in page and ">v2</span>" in page
    assert all(digest[:19] in page for digest in digests)
    assert "expires (rule 1)" in page and "would expire <strong class=\"text-danger\">1 image</strong>" in page
    assert f'id="cmd-tag">docker tag my-image:v2 {pushed}:v2</pre>' in page or \
        f'id="cmd-tag">docker tag my-image:v1 {pushed}:v1</pre>' in page
    assert f'id="cmd-push">docker push {pushed}:v' in page
    assert "&quot;imageCountMoreThan&quot;" in page


def test_another_learner_gets_404_and_does_not_see_the_name(client, other_learner, pushed):
    client.force_login(other_learner)

    assert client.get("/registry/repositories/team/hello/").status_code == 404
    assert "team/hello" not in client.get("/registry/").content.decode()


def test_a_visitor_is_sent_to_sign_in(client):
    response = client.get("/registry/")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_navigation_links_the_registry(client, learner):
    client.force_login(learner)

    assert 'href="/registry/"' in client.get("/functions/").content.decode()
