"""Lesson pages: public reading, quizzes for signed-in learners, and each learner's results kept private."""
import pytest
from django.urls import reverse

from lessons import selectors
from lessons.models import QuizSubmission
from lessons.services import lessons_load

pytestmark = pytest.mark.django_db


@pytest.fixture
def intro(content):
    content.lesson("01-intro", body="## Kernels\n\nContainers share the host kernel.\n")
    content.lesson("02-next", front="title: Next steps\norder: 2\nsummary: After intro.\nprerequisites: [intro]\nlabs: [next-lab]\n")
    lessons_load(content_dir=content.root)
    return selectors.lesson_published(slug="intro")


RIGHT = {"q1": "0", "q2": "  Fifteen   MINUTES ", "q3": "1"}
WRONG = {"q1": "1", "q2": "10 minutes", "q3": "0"}


def test_anyone_can_read_the_catalogue_and_a_lesson(client, intro):
    catalogue = client.get(reverse("lessons:catalogue"))
    page = client.get(reverse("lessons:detail", args=["intro"]))

    assert catalogue.status_code == 200 and b"Lesson intro" in catalogue.content and b"Next steps" in catalogue.content
    assert page.status_code == 200
    assert b"<h2>Kernels</h2>" in page.content and b"Containers share the host kernel." in page.content
    assert b"Sign in to take the quiz" in page.content and b'name="q1"' not in page.content


def test_a_signed_in_learner_sees_the_quiz_form(client, learner, intro):
    client.force_login(learner)

    page = client.get(reverse("lessons:detail", args=["intro"]))

    assert b'name="q1"' in page.content and b'name="q2"' in page.content
    assert b"Do containers share the host kernel?" in page.content


def test_prerequisites_link_to_their_lessons_and_unwritten_labs_read_coming_soon(client, intro):
    page = client.get(reverse("lessons:detail", args=["next"])).content.decode()

    assert f'href="{reverse("lessons:detail", args=["intro"])}"' in page
    assert "next-lab" in page and "coming soon" in page


def test_a_lab_that_exists_is_linked(client, intro):
    from labs.models import Lab

    Lab.objects.create(slug="intro-lab", title="Intro lab", summary="s", difficulty="beginner", estimated_minutes=5,
                       source_hash="x")

    page = client.get(reverse("lessons:detail", args=["intro"])).content.decode()

    assert '<a href="/labs/intro-lab/">intro-lab</a>' in page and "coming soon" not in page


def test_submitting_the_quiz_needs_a_signed_in_learner(client, intro):
    response = client.post(reverse("lessons:quiz-submit", args=["intro"]), RIGHT)

    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert not QuizSubmission.objects.exists()


def test_right_answers_score_full_marks_with_explanations(client, learner, intro):
    client.force_login(learner)

    response = client.post(reverse("lessons:quiz-submit", args=["intro"]), RIGHT, follow=True)

    page = response.content.decode()
    assert "You scored <strong>3 out of 3</strong>" in page
    assert "900 seconds is 15 minutes." in page
    assert "cgroups limit resources; namespaces limit what is visible." in page
    assert QuizSubmission.objects.get(user=learner).score == 3


def test_wrong_answers_show_the_right_answer_and_the_explanation(client, learner, intro):
    client.force_login(learner)

    page = client.post(reverse("lessons:quiz-submit", args=["intro"]), WRONG, follow=True).content.decode()

    assert "You scored <strong>0 out of 3</strong>" in page
    assert "you answered <q>10 minutes</q>; the answer is <q>15</q>" in page
    assert "Containers are isolated processes on the host&#x27;s kernel." in page


def test_an_unanswered_question_counts_as_wrong(client, learner, intro):
    client.force_login(learner)

    client.post(reverse("lessons:quiz-submit", args=["intro"]), {"q1": "0"})

    submission = QuizSubmission.objects.get(user=learner)
    assert (submission.score, submission.total) == (1, 3)


def test_a_learner_cannot_open_another_learners_submission(client, learner, other_learner, intro):
    client.force_login(learner)
    client.post(reverse("lessons:quiz-submit", args=["intro"]), RIGHT)
    submission = QuizSubmission.objects.get(user=learner)
    client.force_login(other_learner)

    response = client.get(reverse("lessons:submission", args=["intro", submission.pk]))

    assert response.status_code == 404


def test_a_learner_sees_only_their_own_attempts_on_the_lesson_page(client, learner, other_learner, intro):
    client.force_login(other_learner)
    client.post(reverse("lessons:quiz-submit", args=["intro"]), WRONG)
    client.force_login(learner)
    client.post(reverse("lessons:quiz-submit", args=["intro"]), RIGHT)

    page = client.get(reverse("lessons:detail", args=["intro"])).content.decode()

    assert "Your attempts" in page and ">3/3</a>" in page and ">0/3</a>" not in page
    mine = QuizSubmission.objects.get(user=learner)
    theirs = QuizSubmission.objects.get(user=other_learner)
    assert reverse("lessons:submission", args=["intro", mine.pk]) in page
    assert reverse("lessons:submission", args=["intro", theirs.pk]) not in page


def test_an_unpublished_lesson_is_not_found(client, content, intro):
    (content.root / "02-next").rename(content.root / "_retired")
    lessons_load(content_dir=content.root)

    assert client.get(reverse("lessons:detail", args=["next"])).status_code == 404
    assert b"Next steps" not in client.get(reverse("lessons:catalogue")).content


def test_the_catalogue_shows_each_lessons_labs_with_the_learners_progress(client, intro, django_user_model):
    from labs.models import Attempt, Lab, LabStep

    lab = Lab.objects.create(slug="intro-lab", title="Intro lab", summary="s", difficulty="beginner",
                             estimated_minutes=5, source_hash="x")
    steps = [LabStep.objects.create(lab=lab, slug=f"s{n}", position=n, title=f"Step {n}", instructions_html="",
                                    solution_script="true", points=5) for n in (1, 2)]
    learner = django_user_model.objects.create_user("lin", password="pw")
    Attempt.objects.create(user=learner, lab=lab, step=steps[0], status=Attempt.Status.PASSED, passed=True, points=5)
    client.force_login(learner)

    page = client.get(reverse("lessons:catalogue")).content.decode()

    assert "Intro lab" in page and "1/2 steps · 5 pts" in page
