"""Grading single answers: exact choices and normalised short answers."""
from lessons.grading import answer_is_correct, normalise_answer
from lessons.models import QuizQuestion


def choice_question() -> QuizQuestion:
    return QuizQuestion(kind=QuizQuestion.Kind.CHOICE, choices=["VM", "Container"], correct_choice=1)


def short_question() -> QuizQuestion:
    return QuizQuestion(kind=QuizQuestion.Kind.SHORT, accepted_answers=["15 minutes", "900 Seconds"])


def test_normalising_ignores_case_and_spacing():
    assert normalise_answer("  15\t  MINUTES \n") == "15 minutes"


def test_the_right_choice_is_correct_and_another_is_not():
    assert answer_is_correct(question=choice_question(), given="1")
    assert not answer_is_correct(question=choice_question(), given="0")
    assert not answer_is_correct(question=choice_question(), given="")


def test_a_short_answer_matches_any_accepted_answer_case_and_whitespace_insensitively():
    assert answer_is_correct(question=short_question(), given="  15   Minutes ")
    assert answer_is_correct(question=short_question(), given="900 seconds")
    assert not answer_is_correct(question=short_question(), given="10 minutes")
    assert not answer_is_correct(question=short_question(), given="   ")
