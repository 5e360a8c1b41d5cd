"""The lab format on disk (labs/content/<slug>/lab.yaml plus Markdown per step): parsing and validation with line numbers."""
from __future__ import annotations

import hashlib
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from sandbox.files.paths import PathRefused, home_parts
from sandbox.policy import PolicyError, check_capabilities

CONTENT_DIR = Path(__file__).resolve().parent / "content"
LAB_FILE = "lab.yaml"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")
DIFFICULTIES = ("beginner", "intermediate", "advanced")
RUNTIMES = ("runc", "runsc")
# A Python check is named "package.module:function"; it is imported, never looked up by file path.
PYTHON_CHECK = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

LAB_FIELDS = {"title", "summary", "lesson", "difficulty", "estimated_minutes", "environment", "scoring", "steps"}
LAB_REQUIRED = {"title", "summary", "difficulty", "estimated_minutes", "environment", "steps"}
ENVIRONMENT_FIELDS = {"image", "runtime", "cpus", "memory_mb", "pids", "capabilities", "time_limit_minutes"}
SCORING_FIELDS = {"max_attempts", "penalty_per_failed_attempt", "hint_cost"}
STEP_FIELDS = {"slug", "title", "instructions", "setup", "check", "hints", "solution", "points", "open"}
STEP_REQUIRED = {"slug", "title", "instructions", "solution", "points"}
CHECK_FIELDS = {"script", "python", "timeout"}


@dataclass(frozen=True)
class LabError:
    """One problem in a lab's files, printed as `path:line: message`."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Environment:
    image: str = ""  # empty means the platform's workstation image
    runtime: str = "runc"
    cpus: float | None = None
    memory_mb: int | None = None
    pids: int | None = None
    capabilities: tuple[str, ...] = ()
    time_limit_minutes: int | None = None


@dataclass(frozen=True)
class Scoring:
    max_attempts: int = 0  # 0: unlimited
    penalty_per_failed_attempt: int = 0
    hint_cost: int = 0


@dataclass(frozen=True)
class Check:
    script: str = ""
    python: str = ""
    timeout: int = 20


@dataclass(frozen=True)
class StepSpec:
    slug: str
    title: str
    instructions_file: str
    instructions: str  # Markdown
    setup: str
    check: Check
    hints: tuple[str, ...]
    solution: str
    points: int
    open_file: str = ""  # a file under the learner's home the editor opens when the step starts


@dataclass(frozen=True)
class LabSpec:
    slug: str
    path: Path
    title: str
    summary: str
    lesson: str
    difficulty: str
    estimated_minutes: int
    environment: Environment
    scoring: Scoring
    steps: tuple[StepSpec, ...]
    source_hash: str = field(default="", compare=False)


class _Lines:
    """Line numbers of values in the YAML document, found from the composed node tree by key path."""

    def __init__(self, root: yaml.Node | None):
        self.root = root

    def _node(self, path: tuple) -> yaml.Node | None:
        node = self.root
        for part in path:
            if isinstance(node, yaml.MappingNode) and isinstance(part, str):
                node = next((value for key, value in node.value if key.value == part), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
            else:
                return None
        return node

    def of(self, *path) -> int:
        """The line of the value at `path`, else of its nearest existing parent."""
        while path:
            node = self._node(path)
            if node is not None:
                return node.start_mark.line + 1
            path = path[:-1]
        return self.root.start_mark.line + 1 if self.root is not None else 1

    def of_key(self, *path) -> int:
        """The line of the key naming `path`'s last part (where an unknown field is written)."""
        parent = self._node(path[:-1])
        if isinstance(parent, yaml.MappingNode):
            for key, _ in parent.value:
                if key.value == path[-1]:
                    return key.start_mark.line + 1
        return self.of(*path)


class _Reader:
    """Collects errors while turning one lab.yaml into a LabSpec."""

    def __init__(self, folder: Path, text: str, root: yaml.Node | None):
        self.folder, self.text = folder, text
        self.path = folder / LAB_FILE
        self.lines = _Lines(root)
        self.errors: list[LabError] = []

    def error(self, line: int, message: str) -> None:
        self.errors.append(LabError(self.path, line, message))

    def mapping(self, value, path: tuple, allowed: set[str], required: set[str], what: str) -> dict | None:
        if not isinstance(value, dict):
            self.error(self.lines.of(*path), f"{what} must be a mapping of fields")
            return None
        for name in value:
            if name not in allowed:
                self.error(self.lines.of_key(*path, name),
                           f"unknown field {name!r} in {what} (expected one of: {', '.join(sorted(allowed))})")
        for name in sorted(required - set(value)):
            self.error(self.lines.of(*path), f"{what} has no {name!r}")
        return value

    def text_field(self, data: dict, path: tuple, name: str, default: str = "") -> str:
        value = data.get(name, default)
        if value is None:
            return default
        if not isinstance(value, str):
            self.error(self.lines.of(*path, name), f"{name!r} must be text")
            return default
        return value

    def int_field(self, data: dict, path: tuple, name: str, default: int | None, *, minimum: int = 0) -> int | None:
        value = data.get(name, default)
        if value is None or value == default:
            return value
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.error(self.lines.of(*path, name), f"{name!r} must be a whole number of at least {minimum}")
            return default
        return value

    # --- the document ---------------------------------------------------------------------------------------------
    def lab(self, data) -> LabSpec | None:
        slug = self.folder.name
        if not SLUG.match(slug):
            self.error(1, f"the folder name {slug!r} is not a valid lab slug (lowercase letters, digits and dashes)")
        data = self.mapping(data, (), LAB_FIELDS, LAB_REQUIRED, "the lab")
        if data is None:
            return None
        difficulty = self.text_field(data, (), "difficulty")
        if difficulty and difficulty not in DIFFICULTIES:
            self.error(self.lines.of("difficulty"), f"difficulty must be one of: {', '.join(DIFFICULTIES)}")
        environment = self.environment(data["environment"]) if "environment" in data else Environment()
        scoring = self.scoring(data.get("scoring", {}))
        steps_data = data.get("steps", [])
        steps: list[StepSpec] = []
        if not isinstance(steps_data, list) or not steps_data:
            self.error(self.lines.of("steps"), "steps must be a non-empty list")
        else:
            seen: set[str] = set()
            for index, step_data in enumerate(steps_data):
                step = self.step(step_data, index)
                if step is None:
                    continue
                if step.slug in seen:
                    self.error(self.lines.of("steps", index, "slug"), f"step slug {step.slug!r} is used twice")
                seen.add(step.slug)
                steps.append(step)
        return LabSpec(
            slug=slug, path=self.folder, title=self.text_field(data, (), "title"),
            summary=self.text_field(data, (), "summary"), lesson=self.text_field(data, (), "lesson"),
            difficulty=difficulty, estimated_minutes=self.int_field(data, (), "estimated_minutes", 0, minimum=1) or 0,
            environment=environment, scoring=scoring, steps=tuple(steps),
        )

    def environment(self, data) -> Environment:
        path = ("environment",)
        data = self.mapping(data, path, ENVIRONMENT_FIELDS, {"runtime"}, "the environment")
        if data is None:
            return Environment()
        runtime = self.text_field(data, path, "runtime", "runc")
        if runtime not in RUNTIMES:
            self.error(self.lines.of(*path, "runtime"), f"runtime must be runc or runsc, not {runtime!r}")
        cpus = data.get("cpus")
        if cpus is not None and (not isinstance(cpus, (int, float)) or isinstance(cpus, bool) or not 0 < cpus <= 4):
            self.error(self.lines.of(*path, "cpus"), "cpus must be a number between 0 and 4")
            cpus = None
        capabilities = data.get("capabilities") or []
        if not isinstance(capabilities, list):
            self.error(self.lines.of(*path, "capabilities"), "capabilities must be a list")
            capabilities = []
        try:
            capabilities = check_capabilities([str(c) for c in capabilities])
        except PolicyError as error:
            self.error(self.lines.of(*path, "capabilities"), str(error))
            capabilities = ()
        return Environment(
            image=self.text_field(data, path, "image"), runtime=runtime, cpus=float(cpus) if cpus else None,
            memory_mb=self.int_field(data, path, "memory_mb", None, minimum=32),
            pids=self.int_field(data, path, "pids", None, minimum=16), capabilities=tuple(capabilities),
            time_limit_minutes=self.int_field(data, path, "time_limit_minutes", None, minimum=5),
        )

    def scoring(self, data) -> Scoring:
        path = ("scoring",)
        data = self.mapping(data or {}, path, SCORING_FIELDS, set(), "scoring")
        if data is None:
            return Scoring()
        return Scoring(max_attempts=self.int_field(data, path, "max_attempts", 0) or 0,
                       penalty_per_failed_attempt=self.int_field(data, path, "penalty_per_failed_attempt", 0) or 0,
                       hint_cost=self.int_field(data, path, "hint_cost", 0) or 0)

    def step(self, data, index: int) -> StepSpec | None:
        path = ("steps", index)
        what = f"step {index + 1}"
        data = self.mapping(data, path, STEP_FIELDS, STEP_REQUIRED, what)
        if data is None:
            return None
        slug = self.text_field(data, path, "slug")
        if slug and not SLUG.match(slug):
            self.error(self.lines.of(*path, "slug"), f"step slug {slug!r} must be lowercase letters, digits and dashes")
        if "solution" in data and not (data["solution"] or "").strip():
            self.error(self.lines.of(*path, "solution"), f"{what} has an empty solution")
        instructions_file = self.text_field(data, path, "instructions")
        instructions = ""
        if instructions_file:
            target = (self.folder / instructions_file).resolve()
            if not target.is_relative_to(self.folder.resolve()) or not target.is_file():
                self.error(self.lines.of(*path, "instructions"),
                           f"instructions file {instructions_file!r} does not exist in the lab's folder")
            else:
                instructions = target.read_text(encoding="utf-8")
        hints = data.get("hints") or []
        if not isinstance(hints, list) or not all(isinstance(h, str) and h.strip() for h in hints):
            self.error(self.lines.of(*path, "hints"), "hints must be a list of non-empty texts")
            hints = []
        open_file = self.text_field(data, path, "open")
        if open_file:
            try:
                open_file = "/".join(home_parts(open_file))
            except PathRefused as refusal:
                self.error(self.lines.of(*path, "open"), f"open: {refusal}")
            if not open_file:
                self.error(self.lines.of(*path, "open"), "open: name a file in the learner's home, e.g. answers/a.txt")
        return StepSpec(
            slug=slug, title=self.text_field(data, path, "title"), instructions_file=instructions_file,
            instructions=instructions, setup=self.text_field(data, path, "setup"), check=self.check(data, path, what),
            hints=tuple(hints), solution=self.text_field(data, path, "solution"),
            points=self.int_field(data, path, "points", 0) or 0, open_file=open_file,
        )

    def check(self, data: dict, step_path: tuple, what: str) -> Check:
        if "check" not in data:
            self.error(self.lines.of(*step_path), f"{what} has no check")
            return Check()
        path = (*step_path, "check")
        check = self.mapping(data["check"], path, CHECK_FIELDS, set(), f"the check of {what}")
        if check is None:
            return Check()
        script, python = self.text_field(check, path, "script"), self.text_field(check, path, "python")
        if bool(script.strip()) == bool(python.strip()):
            self.error(self.lines.of(*path), f"the check of {what} needs exactly one of 'script' or 'python'")
        if python and not _python_check_exists(python):
            self.error(self.lines.of(*path, "python"),
                       f"python check {python!r} cannot be imported (write it as package.module:function)")
        timeout = self.int_field(check, path, "timeout", 20, minimum=1) or 20
        if timeout > 120:
            self.error(self.lines.of(*path, "timeout"), "a check timeout longer than 120 seconds is not allowed")
        return Check(script=script, python=python, timeout=timeout)


def _python_check_exists(reference: str) -> bool:
    if not PYTHON_CHECK.match(reference):
        return False
    module_name, function_name = reference.split(":")
    try:
        return callable(getattr(importlib.import_module(module_name), function_name, None))
    except ImportError:
        return False


def _source_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(folder)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def lab_read(folder: Path, *, image_exists: Callable[[str], bool] | None = None,
             default_image: str = "") -> tuple[LabSpec | None, list[LabError]]:
    """Parses one lab folder. Returns the lab (None if unusable) and every error found, each with its line.

    `image_exists`, when given, is asked about the lab's image (or `default_image` when the lab names none)."""
    path = folder / LAB_FILE
    if not path.is_file():
        return None, [LabError(path, 1, "the lab folder has no lab.yaml")]
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        return None, [LabError(path, mark.line + 1 if mark else 1, f"bad YAML: {problem}")]
    reader = _Reader(folder, text, root)
    lab = reader.lab(data)
    image = (lab.environment.image or default_image) if lab is not None else ""
    if image and image_exists is not None and not image_exists(image):
        reader.error(reader.lines.of("environment", "image"),
                     f"image {image} is not built (run `python manage.py sandbox images`)")
    if lab is not None:
        lab = LabSpec(**{**lab.__dict__, "source_hash": _source_hash(folder)})
    return lab, reader.errors


def labs_read(root: Path = CONTENT_DIR, *, image_exists: Callable[[str], bool] | None = None,
              default_image: str = "") -> tuple[list[LabSpec], list[LabError]]:
    """Every lab folder under `root`, in name order, and all their errors (a lab with errors is left out)."""
    labs, errors = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        lab, lab_errors = lab_read(folder, image_exists=image_exists, default_image=default_image)
        errors.extend(lab_errors)
        if lab is not None and not lab_errors:
            labs.append(lab)
    return labs, errors
