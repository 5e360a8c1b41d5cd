"""Reading lesson folders (lesson.md with YAML front matter, quiz.yaml, diagrams) into checked, plain data."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CONTENT_DIR = Path(__file__).resolve().parent / "content"
LESSON_FILE = "lesson.md"
QUIZ_FILE = "quiz.yaml"
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# A folder is `NN-slug`: the number keeps folders sorted in a file browser; the lesson's place comes from `order`.
FOLDER_PATTERN = re.compile(r"^(?:\d+-)?(?P<slug>[a-z0-9]+(?:-[a-z0-9]+)*)$")
FRONT_MATTER_KEYS = {"title", "order", "summary", "prerequisites", "labs"}
QUESTION_KEYS = {"prompt", "choices", "answer", "accept", "explanation"}
MIN_QUESTIONS, MAX_QUESTIONS = 3, 5


class LessonSourceError(Exception):
    """A mistake in a lesson's files, located as `path:line: message` so an author can jump straight to it."""

    def __init__(self, path: Path, line: int, message: str):
        self.path, self.line, self.message = path, line, message
        super().__init__(f"{path}:{line}: {message}")


@dataclass(frozen=True)
class QuestionSource:
    position: int
    prompt: str
    explanation: str
    choices: tuple[str, ...] = ()
    correct_choice: int | None = None
    accepted_answers: tuple[str, ...] = ()


@dataclass(frozen=True)
class LessonSource:
    slug: str
    folder: Path
    title: str
    order: int
    summary: str
    markdown: str
    markdown_first_line: int  # where the body starts in lesson.md, for errors the renderer finds
    prerequisites: tuple[str, ...]
    lab_slugs: tuple[str, ...]
    questions: tuple[QuestionSource, ...]
    source_hash: str
    prerequisites_line: int = field(default=1, compare=False)

    @property
    def lesson_path(self) -> Path:
        return self.folder / LESSON_FILE


class _Located(dict):
    """A YAML mapping that remembers the line of itself and of each key (1-based)."""

    line: int
    key_lines: dict[str, int]


class _LocatingLoader(yaml.SafeLoader):
    pass


def _construct_located_mapping(loader: _LocatingLoader, node: yaml.MappingNode) -> _Located:
    mapping = _Located()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r}", problem_mark=key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_located_mapping)


def _parse_yaml(text: str, *, path: Path, first_line: int = 1):
    """YAML → Python values; syntax errors become LessonSourceError at the file's real line."""
    try:
        return yaml.load(text, Loader=_LocatingLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = first_line + (mark.line if mark else 0)
        raise LessonSourceError(path, line, f"invalid YAML: {error.problem or error.context}") from None
    except yaml.YAMLError as error:
        raise LessonSourceError(path, first_line, f"invalid YAML: {error}") from None


def _line_of(mapping, key: str, offset: int = 0) -> int:
    lines = getattr(mapping, "key_lines", {})
    return lines.get(key, getattr(mapping, "line", 1)) + offset


def _split_front_matter(text: str, *, path: Path) -> tuple[str, int, str, int]:
    """(front matter YAML, its first line, Markdown body, its first line)."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise LessonSourceError(path, 1, "lesson.md must start with front matter between '---' lines")
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return "".join(lines[1:index]), 2, "".join(lines[index + 1:]), index + 2
    raise LessonSourceError(path, 1, "front matter is not closed by a '---' line")


def _slug_list(front, key: str, *, path: Path, offset: int) -> tuple[str, ...]:
    value = front.get(key, [])
    line = _line_of(front, key, offset)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise LessonSourceError(path, line, f"'{key}' must be a list of slugs")
    for item in value:
        if not SLUG_PATTERN.match(item):
            raise LessonSourceError(path, line, f"'{key}' has {item!r}, which is not a slug (lower-case words joined by '-')")
    return tuple(value)


def _required_text(mapping, key: str, *, path: Path, offset: int = 0, where: str = "front matter") -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value.strip():
        raise LessonSourceError(path, _line_of(mapping, key, offset), f"{where} needs '{key}' as non-empty text")
    return value.strip()


def _read_question(entry, position: int, *, path: Path) -> QuestionSource:
    if not isinstance(entry, dict):
        raise LessonSourceError(path, getattr(entry, "line", 1), f"question {position} must be a mapping")
    where = f"question {position}"
    unknown = sorted(set(entry) - QUESTION_KEYS)
    if unknown:
        raise LessonSourceError(path, _line_of(entry, unknown[0]), f"{where} has unknown key '{unknown[0]}' "
                                                                   f"(allowed: {', '.join(sorted(QUESTION_KEYS))})")
    prompt = _required_text(entry, "prompt", path=path, where=where)
    explanation = _required_text(entry, "explanation", path=path, where=where)
    if ("choices" in entry) == ("accept" in entry):
        raise LessonSourceError(path, entry.line, f"{where} needs either 'choices' (multiple choice) "
                                                  f"or 'accept' (short answer), not both or neither")
    if "choices" in entry:
        choices = entry["choices"]
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
            raise LessonSourceError(path, _line_of(entry, "choices"), f"{where}: 'choices' must list at least two texts")
        choices = [c.strip() for c in choices]
        answer = entry.get("answer")
        if not isinstance(answer, str) or answer.strip() not in choices:
            raise LessonSourceError(path, _line_of(entry, "answer"),
                                    f"{where}: 'answer' must repeat one of the choices exactly")
        return QuestionSource(position=position, prompt=prompt, explanation=explanation,
                              choices=tuple(choices), correct_choice=choices.index(answer.strip()))
    if "answer" in entry:
        raise LessonSourceError(path, _line_of(entry, "answer"), f"{where}: short answers list what they accept "
                                                                 f"under 'accept', not 'answer'")
    accepted = entry["accept"]
    if isinstance(accepted, (str, int, float)):
        accepted = [accepted]
    if not isinstance(accepted, list) or not accepted or not all(isinstance(a, (str, int, float)) for a in accepted):
        raise LessonSourceError(path, _line_of(entry, "accept"), f"{where}: 'accept' must list the accepted answers")
    return QuestionSource(position=position, prompt=prompt, explanation=explanation,
                          accepted_answers=tuple(str(a).strip() for a in accepted))


def read_quiz(path: Path) -> tuple[QuestionSource, ...]:
    if not path.exists():
        raise LessonSourceError(path, 1, "every lesson ends with a quiz: quiz.yaml is missing")
    data = _parse_yaml(path.read_text(encoding="utf-8"), path=path)
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise LessonSourceError(path, getattr(data, "line", 1), "quiz.yaml needs a 'questions' list")
    entries = data["questions"]
    if not MIN_QUESTIONS <= len(entries) <= MAX_QUESTIONS:
        raise LessonSourceError(path, _line_of(data, "questions"),
                                f"a quiz has {MIN_QUESTIONS}–{MAX_QUESTIONS} questions, this one has {len(entries)}")
    return tuple(_read_question(entry, position, path=path) for position, entry in enumerate(entries, start=1))


def _folder_hash(folder: Path, extra: str) -> str:
    digest = hashlib.sha256(extra.encode())
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(folder)).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()


def read_lesson(folder: Path, *, hash_salt: str = "") -> LessonSource:
    """One lesson folder → LessonSource, or LessonSourceError for the first mistake found."""
    match = FOLDER_PATTERN.match(folder.name)
    path = folder / LESSON_FILE
    if not match:
        raise LessonSourceError(path, 1, f"folder name {folder.name!r} must be 'NN-slug' (e.g. 01-docker-vs-vms)")
    if not path.exists():
        raise LessonSourceError(path, 1, "lesson folder has no lesson.md")
    front_text, front_line, body, body_line = _split_front_matter(path.read_text(encoding="utf-8"), path=path)
    front = _parse_yaml(front_text, path=path, first_line=front_line)
    offset = front_line - 1
    if not isinstance(front, dict):
        raise LessonSourceError(path, front_line, "front matter must be a YAML mapping (title: ..., order: ...)")
    unknown = sorted(set(front) - FRONT_MATTER_KEYS)
    if unknown:
        raise LessonSourceError(path, _line_of(front, unknown[0], offset),
                                f"unknown front matter key '{unknown[0]}' (allowed: {', '.join(sorted(FRONT_MATTER_KEYS))})")
    order = front.get("order")
    if not isinstance(order, int) or isinstance(order, bool) or order < 0:
        raise LessonSourceError(path, _line_of(front, "order", offset), "front matter needs 'order' as a whole number ≥ 0")
    slug = match["slug"]
    prerequisites = _slug_list(front, "prerequisites", path=path, offset=offset)
    if slug in prerequisites:
        raise LessonSourceError(path, _line_of(front, "prerequisites", offset), "a lesson cannot be its own prerequisite")
    return LessonSource(
        slug=slug, folder=folder, order=order, markdown=body, markdown_first_line=body_line,
        title=_required_text(front, "title", path=path, offset=offset),
        summary=_required_text(front, "summary", path=path, offset=offset),
        prerequisites=prerequisites,
        prerequisites_line=_line_of(front, "prerequisites", offset),
        lab_slugs=_slug_list(front, "labs", path=path, offset=offset),
        questions=read_quiz(folder / QUIZ_FILE),
        source_hash=_folder_hash(folder, hash_salt),
    )


def read_lessons(content_dir: Path, *, hash_salt: str = "") -> tuple[list[LessonSource], list[LessonSourceError]]:
    """Every lesson folder under content_dir, with all errors found (not just the first) so one run shows them all."""
    lessons: list[LessonSource] = []
    errors: list[LessonSourceError] = []
    for folder in sorted(p for p in content_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        try:
            lessons.append(read_lesson(folder, hash_salt=hash_salt))
        except LessonSourceError as error:
            errors.append(error)
    seen: dict[str, LessonSource] = {}
    for lesson in lessons:
        if lesson.slug in seen:
            errors.append(LessonSourceError(lesson.lesson_path, 1, f"slug '{lesson.slug}' is also used by "
                                                                   f"{seen[lesson.slug].folder.name}"))
        seen[lesson.slug] = lesson
    for lesson in lessons:
        for slug in lesson.prerequisites:
            if slug not in seen:
                errors.append(LessonSourceError(lesson.lesson_path, lesson.prerequisites_line,
                                                f"prerequisite '{slug}' is not a lesson"))
    return lessons, errors
