"""The lab format's reader and `manage.py labs validate`: every kind of error, reported as path:line: message."""
from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from labs.format import lab_read, labs_read

from .conftest import PRACTICE_LAB, lab_folder_write


def _errors(tmp_path, yaml_text, **kwargs) -> list[str]:
    folder = lab_folder_write(tmp_path, "practice", yaml_text)
    _, errors = lab_read(folder, **kwargs)
    return [f"{e.line}: {e.message}" for e in errors]


def test_the_practice_lab_reads_cleanly(tmp_path):
    folder = lab_folder_write(tmp_path, "practice", PRACTICE_LAB)
    lab, errors = lab_read(folder)
    assert errors == []
    assert [s.slug for s in lab.steps] == ["make-file", "second"]
    assert lab.steps[0].check.timeout == 5 and lab.steps[0].hints == ("Use touch.", "touch ~/answers/done.txt")
    assert lab.scoring.hint_cost == 2 and lab.environment.runtime == "runc"


def test_an_unknown_field_is_reported_on_its_line(tmp_path):
    text = PRACTICE_LAB.replace("    points: 5\n", "    points: 5\n    colour: blue\n")
    assert _errors(tmp_path, text) == [
        "36: unknown field 'colour' in step 2 (expected one of: check, hints, instructions, open, points, setup, "
        "slug, solution, title)"]


def test_a_step_names_a_file_for_the_editor_to_open_under_the_home_directory(tmp_path):
    text = PRACTICE_LAB.replace("    points: 5\n", "    points: 5\n    open: ~/answers//second.txt\n")
    folder = lab_folder_write(tmp_path, "practice", text)
    lab, errors = lab_read(folder)
    assert errors == [] and lab.steps[1].open_file == "answers/second.txt" and lab.steps[0].open_file == ""


@pytest.mark.parametrize("path, words", [("../etc/passwd", "lead outside"), ("/etc/passwd", "outside it"),
                                         ("~/", "name a file")])
def test_a_file_to_open_outside_the_home_directory_is_reported(tmp_path, path, words):
    text = PRACTICE_LAB.replace("    points: 5\n", f"    points: 5\n    open: {path}\n")
    errors = _errors(tmp_path, text)
    assert len(errors) == 1 and errors[0].startswith("36: open:") and words in errors[0]


def test_a_step_without_a_solution_is_reported_at_the_step(tmp_path):
    text = PRACTICE_LAB.replace("    solution: touch ~/second.txt\n", "")
    assert _errors(tmp_path, text) == ["27: step 2 has no 'solution'"]


def test_a_step_without_a_check_is_reported_at_the_step(tmp_path):
    text = PRACTICE_LAB.replace("    check:\n      script: test -f ~/second.txt\n", "")
    assert _errors(tmp_path, text) == ["27: step 2 has no check"]


def test_bad_yaml_is_reported_where_the_parser_stopped(tmp_path):
    text = PRACTICE_LAB.replace("    points: 5\n", "    points: [5\n")
    errors = _errors(tmp_path, text)
    assert len(errors) == 1 and errors[0].startswith("36: bad YAML:")


def test_an_image_that_is_not_built_is_reported_at_the_image(tmp_path):
    text = PRACTICE_LAB.replace("  runtime: runc\n", "  runtime: runc\n  image: sandcloud/nope:1\n")
    assert _errors(tmp_path, text, image_exists=lambda image: False) == [
        "7: image sandcloud/nope:1 is not built (run `python manage.py sandbox images`)"]


def test_a_missing_instructions_file_and_a_bad_runtime_are_both_reported(tmp_path):
    text = PRACTICE_LAB.replace("  runtime: runc", "  runtime: kvm").replace("steps/one.md", "steps/two.md", 1)
    assert _errors(tmp_path, text) == [
        "6: runtime must be runc or runsc, not 'kvm'",
        "14: instructions file 'steps/two.md' does not exist in the lab's folder"]


def test_a_python_check_that_cannot_be_imported_is_reported(tmp_path):
    text = PRACTICE_LAB.replace("      script: test -f ~/second.txt", "      python: labs.checks.kernels:nope")
    assert _errors(tmp_path, text) == [
        "33: python check 'labs.checks.kernels:nope' cannot be imported (write it as package.module:function)"]


def test_any_capability_is_refused_since_none_could_take_effect(tmp_path):
    text = PRACTICE_LAB.replace("  runtime: runc\n", "  runtime: runc\n  capabilities: [NET_BIND_SERVICE]\n")
    assert _errors(tmp_path, text) == [
        "7: A sandbox cannot be given capabilities (NET_BIND_SERVICE): its processes run as an ordinary user that can "
        "never use them. Remove capabilities from the environment."]


def test_a_lab_with_errors_is_left_out_of_the_catalogue(tmp_path):
    lab_folder_write(tmp_path, "good", PRACTICE_LAB)
    lab_folder_write(tmp_path, "broken", PRACTICE_LAB.replace("title: Practice", "title: Practice\nowner: me"))
    labs, errors = labs_read(tmp_path)
    assert [lab.slug for lab in labs] == ["good"]
    assert [str(e) for e in errors] == [
        f"{tmp_path}/broken/lab.yaml:2: unknown field 'owner' in the lab (expected one of: difficulty, environment, "
        f"estimated_minutes, lesson, scoring, steps, summary, title)"]


def test_validate_command_says_how_many_labs_are_ok(capsys):
    call_command("labs", "validate")
    assert capsys.readouterr().out.strip().endswith("labs OK")


def test_validate_command_fails_with_each_error_on_its_line(tmp_path, capsys):
    lab_folder_write(tmp_path, "practice", PRACTICE_LAB.replace("    points: 5\n", "    points: 5\n    colour: x\n"))
    with pytest.raises(CommandError, match="1 error in the labs"):
        call_command("labs", "validate", "--root", str(tmp_path), "--no-images")
    assert f"{tmp_path}/practice/lab.yaml:36: unknown field 'colour'" in capsys.readouterr().err
