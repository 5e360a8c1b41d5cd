"""The Lambda console's pages, through Django's test client: a learner's list, create, code, configuration and
invoke; another learner's 404; an instructor's read-only view."""
from __future__ import annotations

import json
import re

import pytest

from sandbox.awsapi.identity import aws_account_for
from sandbox.functions import code, console, selectors
from sandbox.functions.models import LATEST
from sandbox.scheduler.selectors import schedule_get, schedules_for

from .console_fixtures import console_runtime, console_store  # noqa: F401 (fixtures)


@pytest.fixture
def ada_client(client, learner):
    client.force_login(learner)
    return client


def hello(learner, name="hello", **form):
    """A function made as the console's Create form makes one."""
    return console.function_create_from_console(account=aws_account_for(user=learner), name=name,
                                                memory_size=form.get("memory_size", 128),
                                                timeout=form.get("timeout", 3))


def latest_of(learner, name="hello"):
    return selectors.function_get(account=aws_account_for(user=learner), name=name).versions.get(version=LATEST)


def test_create_makes_a_hello_world_function_with_the_lab_role(ada_client, learner, console_store):
    response = ada_client.post("/functions/", {"name": "greeter", "memory_size": "256", "timeout": "5"})

    assert response.status_code == 302 and response["Location"] == "/functions/greeter/"
    version = latest_of(learner, "greeter")
    assert version.state == "Active"
    assert (version.memory_size, version.timeout, version.handler) == (256, 5, "lambda_function.lambda_handler")
    assert version.role == f"arn:aws:iam::{aws_account_for(user=learner).account_id}:role/lab"
    assert "def lambda_handler(event, context):" in code.code_files(version.code_key)["lambda_function.py"]
    page = ada_client.get("/functions/greeter/").content.decode()
    assert "Created greeter." in page and "def lambda_handler(event, context):" in page


def test_the_list_shows_each_function_with_its_settings_and_the_cli_equivalent(ada_client, learner, console_store):
    hello(learner, memory_size=512, timeout=30)

    page = ada_client.get("/functions/").content.decode()

    row = re.search(r'<tr>\s*<td[^>]*><a[^>]*href="/functions/hello/">hello</a>.*?</tr>', page, re.S)
    assert row, page
    assert "python3.11" in row.group(0) and "512 MB" in row.group(0) and "30 s" in row.group(0)
    assert "aws lambda create-function --function-name my-function --runtime python3.11" in page
    assert f"arn:aws:iam::{aws_account_for(user=learner).account_id}:role/lab" in page


@pytest.mark.parametrize("form, message", [
    ({"name": "hello", "memory_size": "64", "timeout": "3"}, "Memory must be from 128 to 10,240 MB; 64 is outside"),
    ({"name": "hello", "memory_size": "128", "timeout": "901"}, "Timeout must be from 1 to 900 seconds"),
    ({"name": "no spaces", "memory_size": "128", "timeout": "3"}, "A function name is 1 to 64 letters"),
])
def test_a_create_the_console_refuses_says_why_and_creates_nothing(ada_client, learner, console_store, form, message):
    response = ada_client.post("/functions/", form)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not selectors.functions_for(account=aws_account_for(user=learner)).exists()


def test_a_name_already_taken_shows_lambdas_own_message(ada_client, learner, console_store):
    hello(learner)

    response = ada_client.post("/functions/", {"name": "hello", "memory_size": "128", "timeout": "3"})

    assert "Function already exist: hello" in response.content.decode()
    assert "Traceback" not in response.content.decode()


def test_save_deploys_the_edited_code_as_a_new_package(ada_client, learner, console_store):
    before = hello(learner).code_sha256
    edited = "def lambda_handler(event, context):\r\n    return {'edited': True}\r\n"

    response = ada_client.post("/functions/hello/code/", {"filename": ["lambda_function.py"], "content": [edited]},
                               follow=True)

    version = latest_of(learner)
    assert version.code_sha256 != before and version.state == "Active"
    assert code.code_files(version.code_key) == {"lambda_function.py": edited.replace("\r\n", "\n")}
    assert "Saved." in response.content.decode()


def test_save_refuses_a_file_the_function_does_not_have(ada_client, learner, console_store):
    before = hello(learner).code_sha256

    response = ada_client.post("/functions/hello/code/", {"filename": ["../evil.py"], "content": ["x = 1"]},
                               follow=True)

    assert "The editor sent files this function does not have" in response.content.decode()
    assert latest_of(learner).code_sha256 == before


def test_the_configuration_form_changes_memory_timeout_handler_and_environment(ada_client, learner, console_store):
    hello(learner)

    response = ada_client.post("/functions/hello/configuration/", {
        "memory_size": "1024", "timeout": "60", "handler": "lambda_function.lambda_handler",
        "description": "Says hello", "environment": "GREETING=Hi there\n# a comment\n\nLEVEL=debug\n"}, follow=True)

    version = latest_of(learner)
    assert (version.memory_size, version.timeout, version.description) == (1024, 60, "Says hello")
    assert version.environment == {"GREETING": "Hi there", "LEVEL": "debug"}
    page = response.content.decode()
    assert "Configuration saved." in page and "GREETING=Hi there" in page


@pytest.mark.parametrize("environment, message", [
    ("AWS_REGION=eu-west-1", "contains reserved keys that are currently not supported for modification. "
                             "Reserved keys used in this request: AWS_REGION"),
    ("just words", "Environment variables, line 1: write KEY=value"),
])
def test_a_configuration_lambda_refuses_shows_its_message_and_changes_nothing(ada_client, learner, console_store,
                                                                              environment, message):
    hello(learner)

    response = ada_client.post("/functions/hello/configuration/", {
        "memory_size": "256", "timeout": "3", "handler": "lambda_function.lambda_handler", "description": "",
        "environment": environment}, follow=True)

    assert message in response.content.decode()
    assert latest_of(learner).memory_size == 128 and latest_of(learner).environment == {}


@pytest.mark.docker
def test_invoke_from_the_page_answers_the_result_the_report_line_and_the_log(ada_client, learner, console_runtime):
    hello(learner)

    response = ada_client.post("/functions/hello/invoke/", {"event": '{"name": "Ada"}'},
                               HTTP_ACCEPT="application/json")

    assert response.status_code == 200, response.content
    result = response.json()
    assert result["function_error"] == "" and result["status_code"] == 200
    assert json.loads(json.loads(result["payload"])["body"]) == {"message": "Hello, Ada!"}
    assert re.match(r"REPORT RequestId: \S+\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\tMemory Size: 128 MB\t"
                    r"Max Memory Used: \d+ MB\tInit Duration: [\d.]+ ms", result["report"])
    assert 'Received event: {"name": "Ada"}' in result["log_tail"]
    # The live log reads the same lines from CloudWatch Logs: the newest first, then only what came after them.
    events = ada_client.get("/functions/hello/logs/").json()["events"]
    assert any(e["message"].startswith(f"REPORT RequestId: {result['request_id']}") for e in events)
    assert ada_client.get(f"/functions/hello/logs/?after={events[-1]['id']}").json()["events"] == []


@pytest.mark.docker
def test_invoke_without_script_renders_the_page_with_the_result_and_counts_it(ada_client, learner,
                                                                               console_runtime):
    hello(learner)

    page = ada_client.post("/functions/hello/invoke/", {"event": "{}"}).content.decode()

    assert "Succeeded · 200" in page and "Hello, world!" in page and "REPORT RequestId:" in page
    listing = ada_client.get("/functions/").content.decode()
    row = re.search(r'href="/functions/hello/">hello</a>.*?</tr>', listing, re.S).group(0)
    assert re.findall(r'<td class="small text-end">(.*?)</td>', row) == ["1", "0"]  # invocations, errors
    monitoring = ada_client.get("/functions/hello/monitoring/").content.decode()
    assert '<dd id="count-invocations">1</dd>' in monitoring and '<dd id="count-cold-starts">1</dd>' in monitoring


@pytest.mark.docker
def test_an_error_in_the_handler_is_shown_as_the_functions_error(ada_client, learner, console_runtime):
    hello(learner)
    ada_client.post("/functions/hello/code/", {"filename": "lambda_function.py",
                                               "content": "def lambda_handler(event, context):\n    1 / 0\n"})

    result = ada_client.post("/functions/hello/invoke/", {"event": "{}"}, HTTP_ACCEPT="application/json").json()

    assert result["function_error"] == "Unhandled"
    assert json.loads(result["payload"])["errorType"] == "ZeroDivisionError"
    assert "Traceback" in result["log_tail"] or "ZeroDivisionError" in result["log_tail"]


def test_an_event_that_is_not_json_is_refused_in_lambdas_words(ada_client, learner, console_store):
    hello(learner)

    response = ada_client.post("/functions/hello/invoke/", {"event": "{name: Ada"}, HTTP_ACCEPT="application/json")

    assert response.status_code == 400
    assert response.json()["message"].startswith("Could not parse request body into json")


def test_delete_removes_the_function(ada_client, learner, console_store):
    hello(learner)

    response = ada_client.post("/functions/hello/delete/", follow=True)

    assert "Deleted hello" in response.content.decode()
    assert not selectors.functions_for(account=aws_account_for(user=learner)).exists()


# --- who may see whose functions ---------------------------------------------------------------------------------

def test_another_learner_cannot_see_or_change_a_learners_functions(client, learner, other_learner, console_store):
    hello(learner)
    client.force_login(other_learner)

    assert client.get(f"/functions/learner/{learner.pk}/").status_code == 404
    assert client.get(f"/functions/learner/{learner.pk}/hello/").status_code == 404
    assert client.get(f"/functions/learner/{learner.pk}/hello/logs/").status_code == 404
    assert client.post(f"/functions/learner/{learner.pk}/hello/invoke/", {"event": "{}"}).status_code == 404
    # Under their own /functions/ the name finds only their own account's function: none.
    assert client.get("/functions/hello/").status_code == 404
    assert "hello" not in client.get("/functions/").content.decode().split("<tbody>")[1]


def test_staff_who_do_not_teach_the_learner_get_404(client, learner, staff_user, console_store):
    hello(learner)
    client.force_login(staff_user)

    assert client.get(f"/functions/learner/{learner.pk}/hello/").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(client, console_store):
    response = client.get("/functions/")

    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_an_instructor_sees_a_learners_functions_read_only(client, learner, instructor, console_store):
    hello(learner)
    client.force_login(instructor)

    listing = client.get(f"/functions/learner/{learner.pk}/").content.decode()
    page = client.get(f"/functions/learner/{learner.pk}/hello/").content.decode()

    assert f'href="/functions/learner/{learner.pk}/hello/"' in listing and "Create function" not in listing
    assert "ada's function, read-only" in page and "def lambda_handler" in page
    assert 'id="code-save"' not in page and 'id="invoke-button"' not in page and "Save configuration" not in page
    assert client.get(f"/functions/learner/{learner.pk}/hello/logs/").status_code == 200
    assert client.get(f"/functions/learner/{learner.pk}/hello/monitoring/").status_code == 200


@pytest.mark.parametrize("path, data", [
    ("", {"name": "sneaky", "memory_size": "128", "timeout": "3"}),
    ("hello/", {}),
    ("hello/code/", {"filename": "lambda_function.py", "content": "x = 1"}),
    ("hello/configuration/", {"memory_size": "512", "timeout": "3", "handler": "x.y", "environment": ""}),
    ("hello/invoke/", {"event": "{}"}),
    ("hello/delete/", {}),
])
def test_an_instructors_post_is_refused_and_changes_nothing(client, learner, instructor, console_store, path, data):
    before = hello(learner)
    client.force_login(instructor)

    response = client.post(f"/functions/learner/{learner.pk}/{path}", data)

    assert response.status_code == 403
    after = latest_of(learner)
    assert (after.code_sha256, after.memory_size, after.revision_id) == (before.code_sha256, 128, before.revision_id)
    assert after.function.invocations.count() == 0
    assert [f.name for f in selectors.functions_for(account=aws_account_for(user=learner))] == ["hello"]


# --- schedules that invoke the function ---------------------------------------------------------------------------

def schedule_names(learner) -> list[str]:
    return [schedule.name for schedule in schedules_for(account=aws_account_for(user=learner))]


def schedule(learner, name="nightly", expression="cron(0 2 * * ? *)", function_name="hello"):
    """A schedule made as the page's form makes one."""
    return console.schedule_create_from_console(account=aws_account_for(user=learner), function_name=function_name,
                                                name=name, expression=expression, target_input="")


def schedule_item(page: str, name: str) -> str:
    item = re.search(rf'<li [^>]*data-schedule="{re.escape(name)}">.*?</li>', page, re.S)
    assert item, page
    return item.group(0)


def test_a_schedule_added_on_the_page_invokes_the_function_and_is_listed(ada_client, learner, console_store):
    hello(learner)

    response = ada_client.post("/functions/hello/schedules/", {
        "name": "every-5", "expression": "rate(5 minutes)", "target_input": '{"task": "report"}'}, follow=True)

    account = aws_account_for(user=learner)
    made = schedule_get(account=account, name="every-5")
    assert made.target_arn == f"arn:aws:lambda:us-east-1:{account.account_id}:function:hello"
    assert (made.expression, made.state, made.target_input) == ("rate(5 minutes)", "ENABLED", '{"task": "report"}')
    assert response.redirect_chain == [("/functions/hello/#schedules", 302)]
    item = schedule_item(response.content.decode(), "every-5")
    assert "rate(5 minutes)" in item and "ENABLED" in item and "never" in item
    assert "Created the schedule every-5" in response.content.decode()


def test_the_schedule_form_shows_its_aws_cli_equivalent(ada_client, learner, console_store):
    hello(learner)
    account_id = aws_account_for(user=learner).account_id

    page = ada_client.get("/functions/hello/").content.decode()

    cli = re.search(r'<pre class="sc-cli mb-0" id="schedule-cli"[^>]*>(.*?)</pre>', page, re.S).group(1)
    assert cli.startswith("aws scheduler create-schedule --name my-schedule")
    assert "--schedule-expression &#x27;rate(5 minutes)&#x27; \\\n  --flexible-time-window Mode=OFF" in cli
    assert (f"arn:aws:lambda:us-east-1:{account_id}:function:hello" in cli
            and f"arn:aws:iam::{account_id}:role/sandcloud-scheduler" in cli)


def test_a_bad_expression_shows_why_in_plain_words_and_aws_message_and_creates_nothing(ada_client, learner,
                                                                                       console_store):
    hello(learner)

    response = ada_client.post("/functions/hello/schedules/", {
        "name": "typo", "expression": "rate(5 minute)", "target_input": ""})

    assert response.status_code == 400
    error = re.search(r'<div class="alert alert-danger[^"]*" role="alert" id="schedule-error">(.*?)</div>\s*</div>',
                      response.content.decode(), re.S).group(1)
    assert error.strip().startswith("For a value above 1 the unit is plural: rate(5 minutes).")
    assert "ValidationException: Invalid Schedule Expression rate(5 minute)." in error
    # The form keeps what was typed, to correct it.
    assert 'value="rate(5 minute)"' in response.content.decode()
    assert schedule_names(learner) == []


def test_a_name_already_taken_is_refused_in_a_sentence_and_the_first_schedule_stays(ada_client, learner,
                                                                                    console_store):
    hello(learner)
    schedule(learner, name="nightly", expression="cron(0 2 * * ? *)")

    response = ada_client.post("/functions/hello/schedules/", {
        "name": "nightly", "expression": "rate(1 hour)", "target_input": ""})

    assert response.status_code == 400
    assert "You already have a schedule called nightly: choose another name." in response.content.decode()
    assert schedule_names(learner) == ["nightly"]
    assert "cron(0 2 * * ? *)" in schedule_item(response.content.decode(), "nightly")


def test_past_the_per_account_cap_the_page_says_to_delete_one_first(ada_client, learner, console_store, settings):
    settings.SANDCLOUD_SCHEDULES_PER_ACCOUNT = 1
    hello(learner)
    schedule(learner, name="nightly")

    response = ada_client.post("/functions/hello/schedules/", {
        "name": "hourly", "expression": "rate(1 hour)", "target_input": ""})

    assert response.status_code == 400
    assert "You have 1 schedules, as many as Sandcloud allows: delete one first." in response.content.decode()
    assert schedule_names(learner) == ["nightly"]


def test_delete_removes_the_schedule_from_the_page(ada_client, learner, console_store):
    hello(learner)
    schedule(learner, name="nightly")
    schedule(learner, name="hourly", expression="rate(1 hour)")

    response = ada_client.post("/functions/hello/schedules/nightly/delete/", follow=True)

    page = response.content.decode()
    assert schedule_names(learner) == ["hourly"]
    assert "Deleted the schedule nightly" in page
    assert 'data-schedule="nightly"' not in page and 'data-schedule="hourly"' in page


def test_a_schedule_of_another_function_is_not_deleted_from_this_functions_page(ada_client, learner,
                                                                               console_store):
    hello(learner)
    hello(learner, name="other")
    schedule(learner, name="nightly", function_name="other")

    response = ada_client.post("/functions/hello/schedules/nightly/delete/", follow=True)

    assert "There is no schedule called nightly." in response.content.decode()
    assert schedule_names(learner) == ["nightly"]


def test_an_instructor_sees_a_learners_schedules_without_the_form(client, learner, instructor, console_store):
    hello(learner)
    schedule(learner, name="nightly")
    client.force_login(instructor)

    page = client.get(f"/functions/learner/{learner.pk}/hello/").content.decode()

    assert "cron(0 2 * * ? *)" in schedule_item(page, "nightly")
    assert 'id="schedule-form"' not in page and "/schedules/nightly/delete/" not in page


@pytest.mark.parametrize("path, data", [
    ("hello/schedules/", {"name": "sneaky", "expression": "rate(1 hour)", "target_input": ""}),
    ("hello/schedules/nightly/delete/", {}),
])
def test_an_instructors_schedule_post_is_refused_and_changes_nothing(client, learner, instructor, console_store,
                                                                     path, data):
    hello(learner)
    schedule(learner, name="nightly")
    client.force_login(instructor)

    response = client.post(f"/functions/learner/{learner.pk}/{path}", data)

    assert response.status_code == 403
    assert schedule_names(learner) == ["nightly"]


def test_another_learner_can_neither_see_nor_change_a_learners_schedules(client, learner, other_learner,
                                                                         console_store):
    hello(learner)
    schedule(learner, name="nightly")
    client.force_login(other_learner)

    assert client.get(f"/functions/learner/{learner.pk}/hello/").status_code == 404
    assert client.post(f"/functions/learner/{learner.pk}/hello/schedules/nightly/delete/").status_code == 404
    assert client.post(f"/functions/learner/{learner.pk}/hello/schedules/",
                       {"name": "sneaky", "expression": "rate(1 hour)"}).status_code == 404
    # Under their own /functions/ the name finds only their own account's function: none.
    assert client.post("/functions/hello/schedules/nightly/delete/").status_code == 404
    assert schedule_names(learner) == ["nightly"]
