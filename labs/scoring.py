"""Pure scoring rules: what an attempt earns after penalties and hint costs, and what a step and a lab add up to."""
from __future__ import annotations

from .format import Scoring


def attempt_points(*, step_points: int, fraction: float, failed_before: int, hints_revealed: int,
                   rules: Scoring) -> int:
    """Points for one graded attempt: the check's share of the step's points, less penalties, never below zero.

    `fraction` is 1.0 for a passing script check and 0.0 for a failing one; Python checks may award a share between.
    A share of zero stays zero: penalties and hint costs only ever reduce what was earned.
    """
    earned = round(step_points * min(1.0, max(0.0, fraction)))
    if earned <= 0:
        return 0
    deductions = rules.penalty_per_failed_attempt * failed_before + rules.hint_cost * hints_revealed
    return max(0, earned - deductions)


def step_points(attempt_points_list: list[int]) -> int:
    """A step is worth its best attempt: a later worse retry never takes points away."""
    return max(attempt_points_list, default=0)


def attempts_left(*, rules: Scoring, counted: int) -> int | None:
    """How many more checks a learner may run on a step; None means unlimited."""
    if not rules.max_attempts:
        return None
    return max(0, rules.max_attempts - counted)
