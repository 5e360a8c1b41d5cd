"""What goes wrong in a function answers as AWS answers it, and takes nothing from anybody else."""
from __future__ import annotations

import base64
import json
import time

import pytest

from sandbox.functions.models import ExecutionEnvironment

from .conftest import create

pytestmark = pytest.mark.docker


def invoke(client, name="hello", payload=b"{}"):
    answer = client.invoke(FunctionName=name, Payload=payload, LogType="Tail")
    return answer, answer["Payload"].read(), base64.b64decode(answer.get("LogResult", "")).decode()


def test_an_exception_is_a_function_error_with_the_runtimes_error_json(aws, learner):
    client = aws(learner)
    create(client, learner, files={"app.py": "def handler(e, c):\n    raise ValueError('no name given')\n"})

    answer, body, log = invoke(client)

    assert answer["StatusCode"] == 200 and answer["FunctionError"] == "Unhandled"
    error = json.loads(body)
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "no name given")
    assert "[ERROR] ValueError: no name given" in log
    assert ExecutionEnvironment.objects.count() == 1  # a handled error keeps the environment


def test_a_syntax_error_is_an_init_error_with_its_traceback(aws, learner):
    client = aws(learner)
    create(client, learner, files={"app.py": "def handler(e, c)\n    return 1\n"})

    answer, body, log = invoke(client)

    assert answer["FunctionError"] == "Unhandled"
    assert json.loads(body)["errorType"] == "Runtime.UserCodeSyntaxError"
    assert "INIT_REPORT Init Duration:" in log and "Status: error\tError Type: Runtime.UserCodeSyntaxError" in log
    assert "Syntax error in module 'app'" in log
    assert ExecutionEnvironment.objects.count() == 0


@pytest.mark.parametrize("handler, files, error_type", [
    ("app.missing", {"app.py": "x = 1\n"}, "Runtime.HandlerNotFound"),
    ("nothere.handler", {"app.py": "x = 1\n"}, "Runtime.ImportModuleError"),
    ("app.handler", {"app.py": "import no_such_module\ndef handler(e, c): pass\n"}, "Runtime.ImportModuleError"),
])
def test_a_handler_that_cannot_be_loaded_names_what_is_wrong(aws, learner, handler, files, error_type):
    client = aws(learner)
    create(client, learner, files=files, Handler=handler)

    answer, body, _ = invoke(client)

    assert answer["FunctionError"] == "Unhandled" and json.loads(body)["errorType"] == error_type


def test_an_endless_loop_times_out_at_the_configured_time_and_the_environment_is_replaced(aws, learner):
    client = aws(learner)
    create(client, learner, files={"app.py": "def handler(e, c):\n    while True:\n        pass\n"}, Timeout=1)

    started = time.monotonic()
    answer, body, log = invoke(client)
    took = time.monotonic() - started

    assert 0.9 < took < 6
    assert answer["FunctionError"] == "Unhandled"
    assert "Task timed out after 1.00 seconds" in json.loads(body)["errorMessage"]
    assert "Task timed out after 1.00 seconds" in log and "\tStatus: timeout\t" in log
    assert ExecutionEnvironment.objects.count() == 0


def test_a_memory_bomb_is_out_of_memory_and_the_environment_is_replaced(aws, learner):
    client = aws(learner)
    create(client, learner, files={"app.py": "def handler(e, c):\n    b = []\n    while True:\n"
                                             "        b.append(bytearray(16 * 1024 * 1024))\n"})

    answer, body, log = invoke(client)

    assert answer["FunctionError"] == "Unhandled"
    assert json.loads(body)["errorType"] == "Runtime.ExitError"
    assert "Runtime exited with error: signal: killed" in log, log
    assert "\tStatus: error\tError Type: Runtime.OutOfMemory\t" in log
    assert ExecutionEnvironment.objects.count() == 0
    again = client.invoke(FunctionName="hello", Payload=b"{}")  # a new environment takes the next invocation
    assert again["FunctionError"] == "Unhandled"


def test_output_flood_is_cut_and_the_invocation_still_answers(aws, learner):
    client = aws(learner)
    create(client, learner, files={"app.py": "def handler(e, c):\n    for i in range(200000):\n"
                                             "        print('x' * 100)\n    return 'done'\n"}, Timeout=30)

    answer, body, log = invoke(client)

    assert json.loads(body) == "done"
    assert "bytes of output were dropped" in log


def test_a_function_that_answers_twice_gets_the_second_refused(aws, learner):
    code = ("import os, urllib.request\n"
            "def handler(e, c):\n"
            "    api = os.environ['AWS_LAMBDA_RUNTIME_API']\n"
            "    url = f'http://{api}/2018-06-01/runtime/invocation/{c.aws_request_id}/response'\n"
            "    urllib.request.urlopen(urllib.request.Request(url, data=b'\"first\"', method='POST'))\n"
            "    return 'second'\n")
    client = aws(learner)
    create(client, learner, files={"app.py": code})

    answer, body, log = invoke(client)

    assert json.loads(body) == "first"


def test_an_init_that_passes_the_init_limit_is_reported_as_an_init_timeout(aws, learner, settings):
    settings.SANDCLOUD_FUNCTIONS = {**settings.SANDCLOUD_FUNCTIONS, "INIT_TIMEOUT_SECONDS": 2}
    client = aws(learner)
    create(client, learner, files={"app.py": "import time\ntime.sleep(60)\ndef handler(e, c):\n    return 1\n"},
           Timeout=30)

    started = time.monotonic()
    answer, body, log = invoke(client)

    assert time.monotonic() - started < 10
    assert answer["FunctionError"] == "Unhandled" and json.loads(body)["errorType"] == "Sandbox.Timedout"
    assert "INIT_REPORT Init Duration: 2000.00 ms\tPhase: init\tStatus: timeout" in log
    assert ExecutionEnvironment.objects.count() == 0


def test_a_function_that_never_asks_for_its_next_event_times_out_the_next_invocation_only(aws, learner):
    code = ("import os, threading, time, urllib.request\n"
            "def handler(e, c):\n"
            "    if e.get('hang'):\n"
            "        api = os.environ['AWS_LAMBDA_RUNTIME_API']\n"
            "        url = f'http://{api}/2018-06-01/runtime/invocation/{c.aws_request_id}/response'\n"
            "        urllib.request.urlopen(urllib.request.Request(url, data=b'\"answered\"', method='POST'))\n"
            "        time.sleep(3600)\n"
            "    return 'fine'\n")
    client = aws(learner)
    create(client, learner, files={"app.py": code}, Timeout=2)

    first, first_body, _ = invoke(client, payload=b'{"hang": true}')
    second, second_body, second_log = invoke(client)
    third, third_body, _ = invoke(client)

    assert json.loads(first_body) == "answered"
    assert second["FunctionError"] == "Unhandled" and "Task timed out" in second_log
    assert json.loads(third_body) == "fine"  # a new environment


def test_a_fork_bomb_is_contained_and_another_learners_function_keeps_answering(aws, learner, other_learner):
    bomb = ("import os\n"
            "def handler(e, c):\n"
            "    while True:\n"
            "        try:\n"
            "            os.fork()\n"
            "        except OSError:\n"
            "            pass\n")
    client = aws(learner)
    create(client, learner, files={"app.py": bomb}, Timeout=3)
    bystander = aws(other_learner)
    create(bystander, other_learner, name="steady")
    bystander.invoke(FunctionName="steady", Payload=b"{}")

    answer, _, log = invoke(client)

    assert answer["FunctionError"] == "Unhandled" and "\tStatus: timeout\t" in log
    started = time.monotonic()
    assert bystander.invoke(FunctionName="steady", Payload=b"{}")["StatusCode"] == 200
    assert time.monotonic() - started < 2
    # The engine may take a while to see a thousand processes die; the reaper's removal gets there.
    from sandbox.functions import reaper

    bombed = ExecutionEnvironment.objects.filter(version__function__name="hello")
    deadline = time.monotonic() + 90
    while bombed.exists() and time.monotonic() < deadline:
        reaper.environments_remove(rows=list(bombed))
        time.sleep(2)
    assert not bombed.exists()
