"""The Docker page: the learner's own containers, images and volumes, and each quota's use; nobody else's."""
from __future__ import annotations


def test_the_page_shows_the_learners_objects_and_quota(ada_docker, client, learner, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM sandcloud/python:3.11\nCMD [\"sleep\", \"30\"]\n")
    ada_docker.ok("build", "-q", "-t", "hello:1", str(tmp_path))
    ada_docker.ok("run", "-d", "--name", "web", "--memory", "128m", "hello:1")
    ada_docker.ok("volume", "create", "notes")
    client.force_login(learner)

    page = client.get("/docker/").content.decode()

    assert "<code>web</code>" in page and "<code>hello:1</code>" in page and "<code>notes</code>" in page
    assert "<strong>1</strong> of 5" in page  # containers
    assert "<strong>128</strong> of 512 MB" in page  # their memory limits
    assert "lrn-" not in page


def test_another_learner_sees_none_of_it(ada_docker, grace_docker, client, other_learner, tmp_path):
    ada_docker.ok("run", "-d", "--name", "secret-web", "sandcloud/python:3.11", "sleep", "30")
    client.force_login(other_learner)

    page = client.get("/docker/").content.decode()

    assert "secret-web" not in page and "No containers yet" in page


def test_the_page_asks_anonymous_visitors_to_sign_in(client):
    response = client.get("/docker/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
