"""A class arrives: a visitor signs up with the cohort's code and starts a lab; the instructor adds 30 learners from a
pasted roster and downloads their passwords; one of them signs in and is made to choose their own."""
import csv
import re

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from cohorts.models import Cohort
from lessons.services import lessons_load

from .conftest import (VIEWPORT, chromium, csp_watch, page_problems, sandboxes_stop, sign_in,
                       terminal_wait_for_prompt)

PHONE = {"width": 375, "height": 812}
LAB_SLUG = "containers-are-processes"


@pytest.mark.browser
@pytest.mark.docker
def test_a_visitor_signs_up_into_the_cohort_and_an_instructor_adds_a_roster(stack, published_labs, instructor):
    assert len(lessons_load().created) == 7  # the public catalogue the front page shows
    cohort = Cohort.objects.get(instructor=instructor)
    Cohort.objects.filter(pk=cohort.pk).update(invite_code="DEMO2026")
    names = [f"student{n:02d}" for n in range(1, 31)]
    try:
        with chromium() as browser:
            # A visitor opens the front page, sees what Sandcloud is and a recorded lab, and creates an account.
            visitor = browser.new_context(viewport=VIEWPORT).new_page()
            visitor_refusals, visitor_problems = csp_watch(visitor), page_problems(visitor)
            visitor.goto(stack + "/")
            expect(visitor.get_by_role("heading", name="Learn cloud compute on real machines.")).to_be_visible()
            player = visitor.locator("#lab-demo .ap-player")
            try:  # mounted as soon as its script runs (seconds when the suite's processes share the CPU)
                expect(player).to_be_visible(timeout=40_000)
            except AssertionError as missing:
                raise AssertionError(f"the front page's player is missing; the page said: {visitor_problems}") from missing
            expect(visitor.locator("#front-lessons li")).to_have_count(7)
            visitor.wait_for_timeout(2500)  # the recording types its first commands
            visitor.screenshot(path="/tmp/pw-front-1366.png")
            visitor.set_viewport_size(PHONE)
            visitor.screenshot(path="/tmp/pw-front-375.png", full_page=True)
            visitor.screenshot(path="/tmp/pw-front-375-top.png")
            visitor.set_viewport_size(VIEWPORT)

            visitor.locator("#front-signup").click()
            visitor.get_by_label("Username").fill("newton")
            visitor.get_by_label("Cohort invite code").fill("demo2026")
            visitor.get_by_label("Password", exact=True).fill("apples-fall-down")
            visitor.get_by_label("Password (again)").fill("apples-fall-down")
            visitor.get_by_role("button", name="Create the account").click()
            expect(visitor).to_have_url(re.compile(r"/cohorts/$"), timeout=15_000)  # the password is hashed first
            expect(visitor.get_by_text("You joined “Morning cohort”.")).to_be_visible()
            expect(visitor.get_by_text("Morning cohort with maria")).to_be_visible()

            # and starts a lab in a sandbox of their own.
            visitor.goto(f"{stack}/labs/{LAB_SLUG}/")
            visitor.get_by_role("button", name="Start the lab").click()
            terminal_wait_for_prompt(visitor)

            # The instructor pastes a roster of 30 and downloads the one-time passwords.
            teacher = browser.new_context(viewport=VIEWPORT).new_page()
            teacher_refusals = csp_watch(teacher)
            sign_in(teacher, stack, username="maria", password="pw-maria", next_path=f"/cohorts/{cohort.pk}/")
            teacher.locator("#dashboard-roster").click()
            teacher.locator("#roster-names").fill("\n".join(names))
            teacher.get_by_role("button", name="Create the accounts").click()
            expect(teacher.get_by_text("30 accounts created and joined")).to_be_visible()
            expect(teacher.locator("#roster-passwords tbody tr")).to_have_count(30)
            teacher.screenshot(path="/tmp/pw-roster-1366.png", full_page=True)
            teacher.set_viewport_size(PHONE)
            teacher.screenshot(path="/tmp/pw-roster-375.png", full_page=True)
            teacher.screenshot(path="/tmp/pw-roster-375-top.png")
            teacher.set_viewport_size(VIEWPORT)
            with teacher.expect_download() as download_info:
                teacher.locator("#roster-passwords-csv").click()
            with open(download_info.value.path(), newline="", encoding="utf-8") as passwords_file:
                rows = list(csv.reader(passwords_file))
            assert rows[0] == ["username", "email", "one-time password"]
            assert [row[0] for row in rows[1:]] == names
            teacher.goto(f"{stack}/cohorts/{cohort.pk}/roster/")
            expect(teacher.locator("#roster-learners tbody tr")).to_have_count(32)  # ada, newton and the 30

            # One of them signs in with the handed-out password and is asked for one of their own first.
            student = browser.new_context(viewport=VIEWPORT).new_page()
            student_refusals = csp_watch(student)
            sign_in(student, stack, username="student07", password=rows[7][2], next_path="/labs/")
            expect(student).to_have_url(re.compile(r"/accounts/password/change/$"))
            expect(student.get_by_text("the one you signed in with was a one-time password")).to_be_visible()
            student.get_by_label("Current Password").fill(rows[7][2])
            student.get_by_label("New Password", exact=True).fill("my-very-own-secret")
            student.get_by_label("New Password (again)").fill("my-very-own-secret")
            student.get_by_role("button", name="Change Password").click()
            # The change is done (not merely submitted) before the learner moves on.
            expect(student.get_by_text("Password successfully changed.")).to_be_visible(timeout=15_000)
            student.goto(f"{stack}/labs/")
            expect(student).to_have_url(re.compile(r"/labs/$"))
            assert (visitor_refusals, teacher_refusals, student_refusals) == ([], [], [])
    finally:
        sandboxes_stop(*get_user_model().objects.filter(username="newton"))
