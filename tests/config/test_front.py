"""The front page a visitor gets at /, and the navigation a signed-out visitor has on every page."""
import pytest
from django.urls import reverse

from lessons.models import Lesson

pytestmark = pytest.mark.django_db


def test_a_visitor_at_the_root_gets_the_front_page_with_the_public_lessons(client):
    Lesson.objects.create(slug="intro", title="Kernels first", summary="What a container shares.", body_html="",
                          source_path="01-intro", source_hash="x")
    Lesson.objects.create(slug="draft", title="Not yet", summary="", body_html="", source_path="02-draft",
                          source_hash="y", is_published=False)

    response = client.get("/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Learn cloud compute on real machines." in page
    assert "Kernels first" in page and reverse("lessons:detail", args=["intro"]) in page
    assert "Not yet" not in page
    assert f'href="{reverse("login")}"' in page


def test_the_front_page_plays_the_recorded_lab_from_a_file_served_here(client):
    response = client.get("/")

    page = response.content.decode()
    assert 'id="lab-demo"' in page and 'data-cast="/static/sandcloud/lab-demo.cast"' in page
    cast = client.get("/static/sandcloud/lab-demo.cast")
    assert cast.status_code == 200
    assert b'"version": 2' in b"".join(cast.streaming_content).split(b"\n")[0]


def test_a_signed_in_learner_at_the_root_gets_their_sandboxes_not_the_front_page(client, learner):
    client.force_login(learner)

    page = client.get("/").content.decode()

    assert "Start a sandbox" in page and "Learn cloud compute on real machines." not in page


@pytest.mark.parametrize("url", ["/", "/lessons/", "/accounts/login/"])
def test_every_page_gives_a_visitor_the_lessons_and_sign_in_in_the_navigation(client, url):
    page = client.get(url).content.decode()

    nav = page[page.index("<nav"):page.index("</nav>")]
    assert 'id="nav-visitor"' in nav and f'href="{reverse("login")}"' in nav
    assert f'href="{reverse("lessons:catalogue")}"' in nav
    assert "Sign out" not in nav
