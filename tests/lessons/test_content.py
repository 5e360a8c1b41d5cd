"""The shipped lessons: complete, well-formed, and right about the facts learners are most often taught wrong."""
import re

import pytest
import yaml
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


# Issue 10: statements a learner would get wrong on AWS today. Each test fails on the old wording and pins the fix.

def test_fargate_spot_example_first_associates_the_capacity_providers_with_the_cluster(lessons):
    text = text_of(lessons["fargate"])
    associate = text.find("aws ecs put-cluster-capacity-providers --cluster demo --capacity-providers FARGATE FARGATE_SPOT")
    strategy = text.find("capacityProvider=FARGATE_SPOT,weight=3")

    assert "aws ecs create-cluster --cluster-name demo --capacity-providers FARGATE FARGATE_SPOT" in text
    assert 0 <= associate < strategy


def test_fargate_spot_is_said_to_run_linux_x86_64_tasks_only(lessons):
    assert "It runs Linux tasks on the X86_64 architecture only: not ARM64 (Graviton) tasks and not Windows containers" \
        in text_of(lessons["fargate"])


def test_fargate_names_vpc_endpoints_as_the_third_way_to_pull_from_a_private_subnet(lessons):
    text = text_of(lessons["fargate"])

    assert "a public IP (assignPublicIp=ENABLED) in a public subnet; a NAT gateway for a private subnet; or" in text
    assert "VPC endpoints in the private subnet: interface endpoints for ECR (ecr.api and ecr.dkr), a gateway endpoint " \
        "for S3" in text
    assert "an interface endpoint for CloudWatch Logs" in text


def test_api_gateway_table_gives_websocket_apis_api_keys_and_usage_plans(lessons):
    text = text_of(lessons["api-gateway"])

    assert "API keys and usage plans no yes no" not in text
    assert "API keys and usage plans no yes yes (apiKeySelectionExpression)" in text
    assert "REST-API-only feature such as API keys" not in text


def test_api_gateway_quiz_asks_which_api_has_a_feature_only_rest_apis_have(lessons):
    question = lessons["api-gateway"].questions.get(position=1)

    assert "API keys" not in question.prompt and "cache" in question.prompt
    assert question.choices[question.correct_choice] == "REST API"
    assert "REST and WebSocket APIs both have them" in question.explanation


def test_api_gateway_unmatched_route_is_404_on_http_apis_and_403_missing_authentication_token_on_rest_apis(lessons):
    text = text_of(lessons["api-gateway"])

    assert "404 Not Found HTTP API: no route matches the method and path" in text
    assert "403 Missing Authentication Token REST API: no resource and method match the path" in text


def test_api_gateway_account_throttle_is_the_default_in_most_regions_not_all(lessons):
    text = text_of(lessons["api-gateway"])

    assert "by default 10,000 requests per second with a burst of 5,000 in most Regions" in text
    assert "but 2,500 with a burst of 1,250 in some newer ones" in text


def test_integration_timeouts_are_30_s_fixed_for_http_apis_and_29_s_raisable_for_rest_apis(lessons):
    serverless, api_gateway = text_of(lessons["serverless"]), text_of(lessons["api-gateway"])

    assert "about 30 seconds" not in serverless
    assert "an HTTP API at most 30 seconds (a fixed quota), a REST API 29 seconds by default (Regional and private " \
        "REST APIs can be raised past that on request" in serverless
    assert "30 seconds for HTTP APIs, fixed; 29 seconds by default for REST APIs, which Regional and private REST APIs " \
        "can raise on request" in api_gateway


def test_rest_apis_are_listed_with_get_rest_apis_not_apigatewayv2(lessons):
    serverless, api_gateway = text_of(lessons["serverless"]), text_of(lessons["api-gateway"])

    assert "aws apigateway get-rest-apis" in serverless and "aws apigateway get-rest-apis" in api_gateway
    assert "aws apigatewayv2 get-apis lists only HTTP and WebSocket APIs" in serverless


def test_lambda_async_payload_is_1_mb_and_tmp_can_grow_to_10240_mb(lessons):
    text = text_of(lessons["lambda"])

    assert "queues the event (up to 1 MB; the limit used to be 256 KB)" in text
    assert "1 MB for asynchronous events" in text
    assert "512 MB of /tmp by default, which you can raise to 10,240 MB" in text


def test_lambda_one_request_per_environment_is_said_of_the_default_compute(lessons):
    text = text_of(lessons["lambda"])

    assert "On the default (on-demand) compute, an environment handles one request at a time" in text
    assert "each environment serves several requests at once" in text  # Lambda Managed Instances
    assert "on the default (on-demand) compute each environment serves one request at a time" in text


def test_ecr_scanning_is_configured_for_the_registry_not_with_deprecated_scan_on_push(lessons):
    text = text_of(lessons["ecr"])

    assert "scanOnPush=true" not in text
    assert "the per-repository scanOnPush flag is deprecated" in text
    assert "aws ecr put-registry-scanning-configuration --scan-type BASIC" in text


def test_ecr_can_create_repositories_on_push_through_a_creation_template(lessons):
    text = text_of(lessons["ecr"])

    assert "repository creation template that applies to CREATE_ON_PUSH" in text
    assert "aws ecr create-repository-creation-template --prefix team --applied-for CREATE_ON_PUSH" in text


def test_ecr_says_the_managed_pull_policy_also_grants_batch_check_layer_availability(lessons):
    text = text_of(lessons["ecr"])

    assert "grants exactly these pull permissions" not in text
    assert "AmazonECSTaskExecutionRolePolicy grants those three, ecr:BatchCheckLayerAvailability as well" in text


def test_ecs_lists_managed_instances_and_its_built_in_deployment_strategies(lessons):
    text = text_of(lessons["ecs"])

    assert "on ECS Managed Instances, EC2 instances in your account that AWS chooses, patches and scales for you" in text
    assert "built-in blue/green deployments (BLUE_GREEN" in text
    assert "linear and canary deployments (LINEAR, CANARY)" in text


def test_docker_lesson_says_only_some_dockerfile_instructions_add_layers(lessons):
    text = text_of(lessons["docker-vs-vms"])

    assert "one layer per instruction" not in text
    assert "Not every instruction adds a layer: FROM starts from the base image's layers, and RUN, COPY and ADD each " \
        "add one, while CMD, ENV, EXPOSE and LABEL only change the metadata" in text


def test_gvisor_is_introduced_in_the_lesson_of_every_lab_that_runs_under_it(lessons):
    labs_dir = CONTENT_DIR.parent.parent / "labs" / "content"
    gvisor_labs = {}
    for lab_file in sorted(labs_dir.glob("*/lab.yaml")):
        lab = yaml.safe_load(lab_file.read_text())
        if (lab.get("environment") or {}).get("runtime") == "runsc":
            gvisor_labs[lab_file.parent.name] = lab["lesson"]

    assert gvisor_labs  # the course has a gVisor lab; if it goes, this test should be rethought, not pass silently
    for lab_slug, lesson_slug in gvisor_labs.items():
        lesson = lessons[lesson_slug]
        text = text_of(lesson)
        assert lab_slug in lesson.lab_slugs
        assert "gVisor (its runtime, runsc, replaces Docker's default runc) is an application kernel in user space" in text
        assert "It is not a virtual machine: nothing boots and no hardware is emulated" in text
        assert "Firecracker" in text and "micro-VMs, minimal VMs with their own guest kernel" in text
