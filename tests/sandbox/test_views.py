"""The sandbox pages through Django's test client: who may see and stop what, and what a refused start looks like."""
import pytest
from django.test import Client
from django.urls import reverse

from sandbox.models import Sandbox

pytestmark = pytest.mark.docker


@pytest.fixture
def client_of(client):
    def signed_in(user):
        client.force_login(user)
        return client

    return signed_in


@pytest.mark.parametrize("url", [reverse("sandbox-rows"), reverse("staff-sandboxes"),
                                 reverse("sandbox-detail", args=[1]), reverse("sandbox-status", args=[1])])
def test_anonymous_visitors_are_sent_to_the_login_page(client, db, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next={url}"


def test_the_login_page_signs_a_learner_in_and_opens_their_home(client, learner):
    response = client.post(reverse("login"), {"username": "ada", "password": "pw-ada"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("home")
    assert b"Start a sandbox" in response.content


def test_a_learner_sees_only_their_own_sandboxes(client_of, start_sandbox, learner, other_learner):
    own = start_sandbox(learner)
    theirs = start_sandbox(other_learner)
    client = client_of(learner)

    home = client.get(reverse("home")).content.decode()
    rows = client.get(reverse("sandbox-rows")).content.decode()

    for page in (home, rows):
        assert reverse("sandbox-detail", args=[own.pk]) in page
        assert reverse("sandbox-detail", args=[theirs.pk]) not in page


def test_the_owner_gets_the_terminal_page_of_a_running_sandbox(client_of, start_sandbox, learner):
    sandbox = start_sandbox(learner)

    response = client_of(learner).get(reverse("sandbox-detail", args=[sandbox.pk]))

    assert response.status_code == 200
    assert response.context["read_only"] is False
    assert f'data-terminal-path="/ws/sandboxes/{sandbox.pk}/terminal/"'.encode() in response.content
    assert b"Watching ada read-only" not in response.content


def test_another_learner_cannot_open_someone_elses_sandbox(client_of, start_sandbox, learner, other_learner):
    sandbox = start_sandbox(learner)
    client = client_of(other_learner)

    assert client.get(reverse("sandbox-detail", args=[sandbox.pk])).status_code == 403
    assert client.get(reverse("sandbox-status", args=[sandbox.pk])).status_code == 403


def test_another_learner_cannot_stop_someone_elses_sandbox(client_of, start_sandbox, learner, other_learner):
    sandbox = start_sandbox(learner)

    response = client_of(other_learner).post(reverse("sandbox-stop", args=[sandbox.pk]))

    assert response.status_code == 403
    sandbox.refresh_from_db()
    assert sandbox.state == Sandbox.State.RUNNING


def test_the_owner_stops_their_sandbox_and_returns_home(client_of, start_sandbox, learner):
    sandbox = start_sandbox(learner)

    response = client_of(learner).post(reverse("sandbox-stop", args=[sandbox.pk]), follow=True)

    assert response.redirect_chain[-1][0] == reverse("home")
    assert f"Sandbox {sandbox.pk} is stopping." in response.content.decode()
    sandbox.refresh_from_db()
    assert sandbox.state == Sandbox.State.STOPPED


def test_stopping_never_redirects_to_another_site(client_of, start_sandbox, learner):
    sandbox = start_sandbox(learner)

    response = client_of(learner).post(reverse("sandbox-stop", args=[sandbox.pk]),
                                       {"next": "https://evil.example/phish"})

    assert response.url == reverse("home")


@pytest.mark.parametrize("next_url", ["foo", "sandbox-detail", "//evil.example/phish"])
def test_stopping_with_a_next_that_is_not_a_path_of_this_site_returns_home(client_of, start_sandbox, learner,
                                                                             next_url):
    sandbox = start_sandbox(learner)

    response = client_of(learner).post(reverse("sandbox-stop", args=[sandbox.pk]), {"next": next_url})

    assert response.status_code == 302 and response.url == reverse("home")


def test_stopping_returns_to_the_page_the_stop_button_was_on(client_of, start_sandbox, learner):
    sandbox = start_sandbox(learner)
    page = reverse("sandbox-detail", args=[sandbox.pk]) + "?tab=terminal"

    response = client_of(learner).post(reverse("sandbox-stop", args=[sandbox.pk]), {"next": page})

    assert response.status_code == 302 and response.url == page


def test_a_start_over_the_quota_shows_the_reason_on_the_home_page(client_of, start_sandbox, learner, settings):
    settings.SANDCLOUD = {**settings.SANDCLOUD, "MAX_PER_LEARNER": 1}
    start_sandbox(learner)

    response = client_of(learner).post(reverse("sandbox-start"), {"runtime": "runc"}, follow=True)

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == reverse("home")
    assert "You already have 1 running sandbox, the most allowed at once." in response.content.decode()
    assert Sandbox.objects.filter(owner=learner).count() == 1


def test_an_unknown_runtime_is_refused_with_a_message(client_of, learner):
    response = client_of(learner).post(reverse("sandbox-start"), {"runtime": "kata"}, follow=True)

    assert "Unknown runtime" in response.content.decode()
    assert not Sandbox.objects.filter(owner=learner).exists()


def test_the_staff_page_is_forbidden_to_learners(client_of, learner):
    assert client_of(learner).get(reverse("staff-sandboxes")).status_code == 403


def test_an_instructor_sees_their_learners_sandboxes_and_watches_read_only(client_of, start_sandbox, learner,
                                                                            instructor):
    sandbox = start_sandbox(learner)
    client = client_of(instructor)

    listing = client.get(reverse("staff-sandboxes")).content.decode()
    detail = client.get(reverse("sandbox-detail", args=[sandbox.pk]))

    assert reverse("sandbox-detail", args=[sandbox.pk]) in listing and "ada" in listing
    assert detail.context["read_only"] is True
    assert "Watching ada read-only" in detail.content.decode()


def test_staff_who_do_not_teach_the_learner_neither_list_nor_open_their_sandbox(client_of, start_sandbox, learner,
                                                                                staff_user):
    sandbox = start_sandbox(learner)
    client = client_of(staff_user)

    listing = client.get(reverse("staff-sandboxes")).content.decode()

    assert reverse("sandbox-detail", args=[sandbox.pk]) not in listing
    assert client.get(reverse("sandbox-detail", args=[sandbox.pk])).status_code == 403


def test_the_staff_page_lists_ended_sandboxes_only_when_asked(client_of, start_sandbox, learner, instructor):
    sandbox = start_sandbox(learner)
    client_of(learner).post(reverse("sandbox-stop", args=[sandbox.pk]))
    client = client_of(instructor)
    detail_url = reverse("sandbox-detail", args=[sandbox.pk])

    assert detail_url not in client.get(reverse("staff-sandboxes")).content.decode()
    assert detail_url in client.get(reverse("staff-sandboxes") + "?all=1").content.decode()


def test_pages_never_show_raw_template_syntax(start_sandbox, learner):
    # A multi-line {# #} comment renders as text and wrecks the layout; this guards every sandbox page against it.
    sandbox = start_sandbox(learner)
    client = Client()
    client.force_login(learner)
    for url in ("/", f"/sandboxes/{sandbox.pk}/", f"/sandboxes/{sandbox.pk}/status/", "/sandboxes/rows/"):
        html = client.get(url).content.decode()
        assert "{#" not in html and "{%" not in html and "#}" not in html, url


def test_a_start_naming_a_lab_is_refused_and_lands_on_the_labs_page(client_of, learner, db):
    # A page left open from before the form stopped offering it still posts the lab (here: gVisor's, asking for runc)
    response = client_of(learner).post(reverse("sandbox-start"), {"runtime": "runc", "lab": "containers-vs-gvisor"},
                                       follow=True)

    assert response.redirect_chain[0][0] == "/labs/containers-vs-gvisor/"
    assert "starts from the lab&#x27;s page" in response.content.decode()
    assert not Sandbox.objects.filter(owner=learner).exists()


def test_a_lab_sandboxs_page_starts_its_next_sandbox_from_the_lab(client_of, lab_sandbox_of, learner):
    sandbox = lab_sandbox_of(learner, "containers-are-processes")

    page = client_of(learner).get(reverse("sandbox-detail", args=[sandbox.pk])).content.decode()

    assert 'action="/labs/containers-are-processes/start/"' in page
    assert 'name="lab"' not in page and 'action="/sandboxes/start/"' not in page


def test_a_plain_sandboxs_page_starts_its_next_sandbox_with_the_same_runtime(client_of, start_sandbox, learner):
    sandbox = start_sandbox(learner)

    page = client_of(learner).get(reverse("sandbox-detail", args=[sandbox.pk])).content.decode()

    assert 'action="/sandboxes/start/"' in page and 'name="runtime" value="runc"' in page
    assert 'name="lab"' not in page


@pytest.fixture
def lab_sandbox_of(transactional_db, docker_engine):
    from labs.models import Lab
    from labs.services import lab_start, labs_load
    from sandbox import services
    from sandbox.states import ACTIVE

    labs_load()
    started = []

    def start(user, slug):
        sandbox = lab_start(user=user, lab=Lab.objects.get(slug=slug))
        started.append(sandbox.pk)
        return sandbox

    yield start
    for sandbox in Sandbox.objects.filter(pk__in=started, state__in=ACTIVE):
        services.sandbox_stop(sandbox_id=sandbox.pk)
