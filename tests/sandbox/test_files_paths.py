"""What a path sent by the editor means, decided before a sandbox is asked anything (pure logic)."""
import pytest

from sandbox.files.paths import PathRefused, file_name, home_parts


@pytest.mark.parametrize("raw, parts", [
    ("", []), ("~", []), ("/home/learner", []), ("~/", []),
    ("answers/a.txt", ["answers", "a.txt"]), ("~/answers/a.txt", ["answers", "a.txt"]),
    ("/home/learner/answers/a.txt", ["answers", "a.txt"]), ("./a//b/./c", ["a", "b", "c"]),
    (" a.txt ", ["a.txt"]), ("caf\u00e9 menu.md", ["caf\u00e9 menu.md"]),
])
def test_paths_in_the_home_directory_become_their_names(raw, parts):
    assert home_parts(raw) == parts


@pytest.mark.parametrize("raw, words", [
    ("../etc/passwd", "lead outside"), ("a/../../b", "lead outside"), ("a/..", "lead outside"),
    ("/etc/passwd", "outside it"), ("/home/learnerx/a", "outside it"), ("~root/a", "outside it"),
    ("a\x00b", "control characters"), ("a\nb", "control characters"),
    ("x" * 1025, "longer than"), ("a/" + "n" * 256, "255 bytes"),
])
def test_paths_leading_outside_or_malformed_are_refused_with_a_reason(raw, words):
    with pytest.raises(PathRefused, match=words):
        home_parts(raw)


def test_a_path_that_is_not_text_is_refused():
    with pytest.raises(PathRefused):
        home_parts(["a"])


@pytest.mark.parametrize("raw", ["a/b", "..", "", "~"])
def test_a_file_name_has_no_folder_in_it(raw):
    with pytest.raises(PathRefused):
        file_name(raw)
