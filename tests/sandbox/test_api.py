"""The JSON API: every answer is JSON, every refusal a status code and a sentence, never a page or a stack trace
(real Docker behind it)."""
import json

import pytest
from django.conf import settings
from django.test import Client

from sandbox import services
from sandbox.engine.docker import engine
from sandbox.models import Sandbox


@pytest.fixture
def api(learner):
    client = Client()
    client.force_login(learner)
    return client


def post(client, url, body=None, raw=None):
    return client.post(url, data=raw if raw is not None else json.dumps(body or {}), content_type="application/json")


def refusal(response) -> str:
    """The sentence of a refusal, after checking it has the documented shape."""
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert set(body) == {"message", "error"} and body["error"] == body["message"], body
    return body["message"]


def instance_containers() -> set[str]:
    return {c.id for c in engine().managed_containers()}


def test_anonymous_callers_are_asked_to_sign_in(db):
    response = Client().get("/api/sandboxes/")
    assert response.status_code == 401 and refusal(response) == "Sign in first."


def test_a_learner_starts_runs_a_command_and_stops_a_sandbox(api, start_sandbox, learner):
    response = post(api, "/api/sandboxes/")
    assert response.status_code == 201
    sandbox_id = response.json()["id"]
    assert api.get(f"/api/sandboxes/{sandbox_id}/").json()["state"] == "running"
    result = post(api, f"/api/sandboxes/{sandbox_id}/exec/", {"command": "echo $((2+3))"}).json()
    assert result == {"exit_code": 0, "output": "5\n", "timed_out": False}
    assert post(api, f"/api/sandboxes/{sandbox_id}/stop/").status_code == 202
    assert api.get(f"/api/sandboxes/{sandbox_id}/").json()["state"] == "stopped"


def test_exec_into_a_stopped_sandbox_is_a_409_in_plain_words(api, start_sandbox, learner):
    sandbox = start_sandbox(learner)
    services.sandbox_stop(sandbox_id=sandbox.pk)
    response = post(api, f"/api/sandboxes/{sandbox.pk}/exec/", {"command": "true"})
    assert response.status_code == 409
    assert "stopped" in refusal(response)


def test_a_command_past_its_timeout_is_cut_off_and_says_so(api, start_sandbox, learner):
    sandbox = start_sandbox(learner)
    response = post(api, f"/api/sandboxes/{sandbox.pk}/exec/", {"command": "sleep 30", "timeout": 1})
    assert response.json()["timed_out"] is True


def test_the_quota_is_a_429_with_the_reason(api, start_sandbox, learner, monkeypatch):
    monkeypatch.setitem(settings.SANDCLOUD, "MAX_PER_LEARNER", 1)
    start_sandbox(learner)
    response = post(api, "/api/sandboxes/")
    assert response.status_code == 429 and "Stop one before starting another" in refusal(response)


def test_another_learners_sandbox_is_forbidden(start_sandbox, learner, other_learner):
    sandbox = start_sandbox(learner)
    intruder = Client()
    intruder.force_login(other_learner)
    assert intruder.get(f"/api/sandboxes/{sandbox.pk}/").status_code == 403
    assert post(intruder, f"/api/sandboxes/{sandbox.pk}/exec/", {"command": "id"}).status_code == 403
    assert post(intruder, f"/api/sandboxes/{sandbox.pk}/stop/").status_code == 403


@pytest.mark.parametrize("raw, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"runtime": "kvm"}', "Unknown runtime"),
    ('{"runtime": 5}', "runtime must be a string"),
])
def test_bad_start_requests_get_a_400_with_a_reason(api, raw, message):
    response = post(api, "/api/sandboxes/", raw=raw)
    assert response.status_code == 400 and message in refusal(response)


@pytest.mark.parametrize("body, message", [
    ({}, "Send {\"command\""),
    ({"command": "x" * 5000}, "longer than"),
    ({"command": "id", "timeout": 0}, "timeout must be"),
    ({"command": "id", "timeout": "ten"}, "timeout must be"),
])
def test_bad_exec_requests_get_a_400_with_a_reason(api, start_sandbox, learner, body, message):
    sandbox = start_sandbox(learner)
    response = post(api, f"/api/sandboxes/{sandbox.pk}/exec/", body)
    assert response.status_code == 400 and message in refusal(response)


def test_an_unknown_sandbox_is_a_404_not_a_crash(api):
    response = api.get("/api/sandboxes/999999/")
    assert response.status_code == 404 and "no sandbox 999999" in refusal(response)


def test_a_command_flooding_output_is_cut_off_instead_of_filling_the_server(api, start_sandbox, learner):
    sandbox = start_sandbox(learner)
    response = post(api, f"/api/sandboxes/{sandbox.pk}/exec/", {"command": "yes flood | head -c 200000000"})
    output = response.json()["output"]
    assert response.status_code == 200
    assert output.endswith("[output cut off after 1024 KB]\n") and len(output) < 1_100_000


@pytest.mark.parametrize("until", [
    "2026-02-30T10:00:00",  # no such day: Django's parse_datetime raises rather than answering None
    "0001-01-01T00:00:00",  # the window before it would start before year 1
    "9999-12-31T23:59:59Z",  # no terminal is recorded that far ahead
    "yesterday",
])
def test_a_replay_until_an_impossible_time_is_a_400_in_plain_words(api, start_sandbox, learner, until):
    sandbox = start_sandbox(learner)
    response = api.get(f"/api/sandboxes/{sandbox.pk}/recording.cast", {"until": until})
    assert response.status_code == 400
    assert refusal(response) == "until must be a time like 2026-11-27T21:30:00Z."


def test_a_replay_until_a_time_with_its_offset_is_a_cast(api, start_sandbox, learner):
    sandbox = start_sandbox(learner)
    response = api.get(f"/api/sandboxes/{sandbox.pk}/recording.cast", {"until": "2024-01-05T10:00:00+01:00"})
    assert response.status_code == 200 and response["Content-Type"] == "application/x-asciicast"
    assert json.loads(response.content.decode().splitlines()[0])["version"] == 2


@pytest.mark.parametrize("slug, runtime", [("resource-limits", "runc"), ("containers-vs-gvisor", "runc")])
def test_a_start_naming_a_lab_is_refused_with_the_labs_page_and_creates_nothing(api, start_sandbox, learner,
                                                                                 other_learner, slug, runtime):
    # Given another learner at work in their own sandbox
    bystander = start_sandbox(other_learner)
    containers_before = instance_containers()

    # When a learner asks the API for a sandbox for a lab (its limits, runtime and setup are the lab's to give)
    response = post(api, "/api/sandboxes/", {"lab": slug, "runtime": runtime})

    # Then they are sent to the lab's page, and no sandbox, row or container, was made for them
    assert response.status_code == 400
    assert f"open /labs/{slug}/ and press" in refusal(response)
    assert not Sandbox.objects.filter(owner=learner).exists()
    assert instance_containers() == containers_before
    # and the other learner's sandbox still runs commands
    assert services.sandbox_exec(sandbox=bystander, command=["echo", "still here"]) == (0, "still here\n")


def test_a_wrong_method_is_a_405_in_json_that_names_the_allowed_ones(api, start_sandbox, learner):
    sandbox = start_sandbox(learner)

    listing = api.delete("/api/sandboxes/")
    one = api.delete(f"/api/sandboxes/{sandbox.pk}/")

    assert listing.status_code == 405 and listing["Allow"] == "GET, POST"
    assert refusal(listing) == "DELETE is not allowed here; use GET or POST."
    assert one.status_code == 405 and refusal(one) == "DELETE is not allowed here; use GET."
    sandbox.refresh_from_db()
    assert sandbox.state == Sandbox.State.RUNNING
    assert Sandbox.objects.filter(owner=learner).count() == 1


def test_a_post_without_a_csrf_token_is_a_403_in_json_and_creates_nothing(learner, db):
    client = Client(enforce_csrf_checks=True)
    client.force_login(learner)

    response = post(client, "/api/sandboxes/")

    assert response.status_code == 403 and "CSRF token" in refusal(response)
    assert not Sandbox.objects.filter(owner=learner).exists()


def test_an_unknown_api_address_is_a_404_in_json(api):
    unknown = api.get("/api/nothing-here/")
    no_slash = post(api, "/api/sandboxes")

    assert unknown.status_code == 404 and refusal(unknown) == "There is no API at /api/nothing-here/."
    assert no_slash.status_code == 404
    assert refusal(no_slash) == "There is no API at /api/sandboxes. Did you mean /api/sandboxes/ (with the slash)?"
    # Pages outside the API keep their HTML 404
    page = api.get("/nothing-here/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_a_bug_behind_the_api_is_a_500_in_json(api, monkeypatch, caplog):
    from sandbox import selectors

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "sandboxes_for_user", broken)

    response = api.get("/api/sandboxes/")

    assert response.status_code == 500 and refusal(response).startswith("Something went wrong on our side.")
    assert "a bug" in caplog.text  # the operator gets the trace


def test_the_sites_500_handler_answers_json_under_the_api_and_a_page_elsewhere(rf):
    from config.errors import server_error

    api_answer = server_error(rf.get("/api/sandboxes/"))
    page = server_error(rf.get("/labs/"))

    assert api_answer.status_code == 500 and refusal(api_answer).startswith("Something went wrong")
    assert page.status_code == 500 and page["Content-Type"].startswith("text/html")
