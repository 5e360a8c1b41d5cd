"""The shipped lessons: complete, well-formed, and right about the facts learners are most often taught wrong."""
import re

import pytest
from django.utils.html import strip_tags

from lessons.models import Lesson
from lessons.services import lessons_load
from lessons.sources import CONTENT_DIR, read_lessons

pytestmark = pytest.mark.django_db

EXPECTED = ["docker-vs-vms", "ecr", "ecs", "fargate", "serverless", "lambda", "api-gateway"]


@pytest.fixture
def lessons() -> dict[str, Lesson]:
    lessons_load(content_dir=CONTENT_DIR)
    return {lesson.slug: lesson for lesson in Lesson.objects.all()}


def text_of(lesson: Lesson) -> str:
    """The lesson's visible text, with whitespace collapsed (so a fact may wrap across Markdown lines)."""
    return " ".join(strip_tags(lesson.body_html).split())


def test_every_topic_of_the_course_has_a_lesson_in_order(lessons):
    assert [lesson.slug for lesson in sorted(lessons.values(), key=lambda l: l.order)] == EXPECTED


@pytest.mark.parametrize("slug", EXPECTED)
def test_each_lesson_is_substantive_has_a_diagram_and_a_quiz(lessons, slug):
    lesson = lessons[slug]
    sources = {source.slug: source for source in read_lessons(CONTENT_DIR)[0]}

    assert 600 <= len(sources[slug].markdown.split()) <= 1200
    assert "<svg" in lesson.body_html and "<figcaption>" in lesson.body_html
    assert 3 <= lesson.questions.count() <= 5
    assert all(question.explanation for question in lesson.questions.all())


def test_lambda_lesson_states_the_free_tier_prices_memory_and_timeout(lessons):
    text = text_of(lessons["lambda"])

    assert "1 million requests and 400,000 GB-seconds per month" in text
    assert "$0.20 per 1 million requests" in text
    assert re.search(r"measured in 1 ms increments", text)
    assert "128 MB to 10,240 MB" in text
    assert "1,769 MB a function gets the equivalent of one vCPU" in text
    assert "900 seconds (15 minutes)" in text


def test_lambda_quiz_grades_the_free_tier_and_timeout_facts(lessons):
    questions = {q.position: q for q in lessons["lambda"].questions.all()}

    assert questions[1].choices[questions[1].correct_choice] == "1 million requests and 400,000 GB-seconds"
    assert "900" in questions[2].accepted_answers


def test_docker_lesson_says_containers_share_the_host_kernel_and_vms_run_their_own(lessons):
    text = text_of(lessons["docker-vs-vms"])

    assert "containers share the host kernel, while each VM runs its own" in text
    assert "docker run --rm alpine:3.20 uname -r" in text


def test_dynamodb_is_described_as_nosql_key_value_and_document(lessons):
    text = text_of(lessons["serverless"])

    assert "DynamoDB, a NoSQL key-value and document database" in text
    assert "not** a relational" not in text and "it is not a relational (SQL) database" in text.replace("**", "")


def test_lessons_use_real_cli_commands(lessons):
    assert "aws ecs create-service" in text_of(lessons["ecs"])
    assert "aws ecr get-login-password" in text_of(lessons["ecr"])
    assert "aws lambda invoke" in text_of(lessons["lambda"])
    assert "aws apigatewayv2 create-api" in text_of(lessons["api-gateway"])


def test_ecr_and_fargate_facts_match_aws(lessons):
    ecr, fargate = text_of(lessons["ecr"]), text_of(lessons["fargate"])

    assert "The user name is always the literal AWS, and the token is valid for 12 hours" in ecr
    assert "| 256 (0.25 vCPU) | 512 MB, 1 GB or 2 GB |" not in fargate  # rendered as a table, not pipes
    assert "256 (0.25 vCPU) 512 MB, 1 GB or 2 GB" in fargate
    assert "16384 (16 vCPU) 32 GB to 120 GB, in 8 GB steps" in fargate
