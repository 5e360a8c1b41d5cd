"""Grading a quiz answer: the exact choice for multiple choice, a normalised match for short answers."""
from __future__ import annotations

from .models import QuizQuestion


def normalise_answer(text: str) -> str:
    """Case- and whitespace-insensitive form: ' 15   Minutes ' and '15 minutes' compare equal."""
    return " ".join(str(text).split()).casefold()


def answer_is_correct(*, question: QuizQuestion, given: str) -> bool:
    if question.kind == QuizQuestion.Kind.CHOICE:
        return given.strip() == str(question.correct_choice)
    normalised = normalise_answer(given)
    return bool(normalised) and normalised in {normalise_answer(a) for a in question.accepted_answers}


def answer_display(*, question: QuizQuestion, given: str) -> str:
    """What the learner answered, as words (a choice's text rather than its index)."""
    if question.kind == QuizQuestion.Kind.CHOICE:
        try:
            return question.choices[int(given)]
        except (ValueError, IndexError):
            return ""
    return given.strip()


def correct_answer_display(question: QuizQuestion) -> str:
    if question.kind == QuizQuestion.Kind.CHOICE:
        return question.choices[question.correct_choice]
    return question.accepted_answers[0]
