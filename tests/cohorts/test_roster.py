"""The instructor's roster: bulk accounts with one-time passwords, per-line answers, and the cohort's joining rules."""
import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import PasswordChangeRequired
from cohorts import services
from cohorts.models import Cohort, Membership
from cohorts.roster import roster_read

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def cohort(instructor):
    return Cohort.objects.get(instructor=instructor)


@pytest.fixture
def teaching(client, instructor):
    client.force_login(instructor)
    return client


def roster_url(cohort):
    return reverse("cohort-roster", args=[cohort.pk])


def test_a_pasted_list_creates_joined_accounts_that_must_change_their_password(teaching, cohort):
    response = teaching.post(roster_url(cohort), {"names": "Alan.Turing, alan@example.org\nkatherine\n\n"})

    assert response.status_code == 200
    page = response.content.decode()
    assert "2 accounts created and joined" in page and "shown only now" in page
    alan = User.objects.get(username="alan.turing")
    assert alan.email == "alan@example.org"
    assert Membership.objects.filter(cohort=cohort, learner__username__in=["alan.turing", "katherine"]).count() == 2
    assert PasswordChangeRequired.objects.filter(user__username__in=["alan.turing", "katherine"]).count() == 2
    password = dict((u, p) for u, _, p in response.context["result"].passwords)["alan.turing"]
    assert password in page and alan.check_password(password)


def test_the_passwords_csv_downloads_once_and_escapes_nothing_it_needs_not(teaching, cohort):
    teaching.post(roster_url(cohort), {"names": "katherine\nmary"})

    download = teaching.get(reverse("cohort-roster-passwords", args=[cohort.pk]))
    again = teaching.get(reverse("cohort-roster-passwords", args=[cohort.pk]), follow=True)

    assert download["Content-Type"].startswith("text/csv") and "attachment" in download["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(download.content.decode())))
    assert rows[0] == ["username", "email", "one-time password"] and [r[0] for r in rows[1:]] == ["katherine", "mary"]
    assert User.objects.get(username="mary").check_password(rows[2][2])
    assert "already downloaded" in again.content.decode()


def test_an_uploaded_csv_with_a_header_is_read_like_a_pasted_list(teaching, cohort):
    upload = SimpleUploadedFile("class.csv", "\ufeffusername,email\r\nkatherine,k@example.org\r\n".encode())

    teaching.post(roster_url(cohort), {"file": upload})

    assert User.objects.get(username="katherine").email == "k@example.org"
    assert not User.objects.filter(username="username").exists()


@pytest.mark.parametrize("line, answer", [
    ("ada", "an account with this username exists already"),
    ("new ton", "cannot contain spaces"),
    ("x", "needs at least 2 characters"),
    ("émile", "only the letters a–z"),
    ('=HYPERLINK("http://evil.example","x")', "a spreadsheet would run as a formula"),
    ("katherine,@SUM(A1)", "a spreadsheet would run as a formula"),
    ("katherine,not-an-address", "not an e-mail address"),
    ("katherine,k@example.org,extra", "at most two cells"),
])
def test_a_bad_line_gets_its_own_answer_and_nothing_is_created(teaching, cohort, line, answer):
    response = teaching.post(roster_url(cohort), {"names": f"mary\n{line}\ndorothy"})

    assert response.status_code == 400
    assert "Nothing was created" in response.content.decode()
    problems = {line.number: line.problem for line in response.context["result"].lines}
    assert answer in problems[2] and problems[1] == "" and problems[3] == ""
    assert not User.objects.filter(username__in=["mary", "dorothy"]).exists()
    assert not User.objects.filter(username__contains="HYPERLINK").exists()


def test_an_existing_account_spelt_in_another_case_counts_as_taken(teaching, cohort, django_user_model):
    django_user_model.objects.create_user("Mary.Jackson")  # made in the admin, before usernames were lowercased

    response = teaching.post(roster_url(cohort), {"names": "mary.jackson"})

    assert "exists already" in response.context["result"].lines[0].problem
    assert django_user_model.objects.filter(username__iexact="mary.jackson").count() == 1


def test_a_username_twice_in_the_list_is_refused_at_its_second_line(teaching, cohort):
    response = teaching.post(roster_url(cohort), {"names": "mary\nKatherine\nkatherine"})

    problems = [line.problem for line in response.context["result"].lines]
    assert problems == ["", "", "refused: the same username as line 2."]
    assert not User.objects.filter(username="mary").exists()


def test_a_list_of_a_thousand_creates_a_thousand_in_one_go(teaching, cohort):
    names = "\n".join(f"student{n:04d}" for n in range(1000))

    response = teaching.post(roster_url(cohort), {"names": names})

    assert response.status_code == 200 and len(response.context["result"].passwords) == 1000
    assert Membership.objects.filter(cohort=cohort, learner__username__startswith="student").count() == 1000


def test_a_thousand_lines_with_one_bad_one_create_none(teaching, cohort):
    names = [f"student{n:04d}" for n in range(1000)]
    names[999] = "student 999"

    response = teaching.post(roster_url(cohort), {"names": "\n".join(names)})

    assert response.status_code == 400
    refused = response.context["result"].refused
    assert [line.number for line in refused] == [1000]
    assert not User.objects.filter(username__startswith="student").exists()


def test_a_list_longer_than_the_limit_is_refused_whole(teaching, cohort):
    response = teaching.post(roster_url(cohort), {"names": "\n".join(f"s{n}" for n in range(2001))}, follow=True)

    assert "add at most 2,000 at a time" in response.content.decode()
    assert not User.objects.filter(username="s1").exists()


def test_formula_cells_are_escaped_in_the_passwords_file():
    from cohorts.roster import csv_cell_safe

    assert csv_cell_safe("=1+1") == "'=1+1" and csv_cell_safe("-x") == "'-x" and csv_cell_safe("ada") == "ada"


def test_roster_read_skips_blank_lines_and_lowercases():
    lines = roster_read(text="\n  Mary  \n\n")

    assert [(line.number, line.username, line.problem) for line in lines] == [(2, "mary", "")]


def test_another_instructor_cannot_see_or_change_the_roster(client, cohort, staff_user):
    client.force_login(staff_user)

    assert client.get(roster_url(cohort)).status_code == 403
    assert client.post(roster_url(cohort), {"names": "mary"}).status_code == 403
    assert not User.objects.filter(username="mary").exists()


def test_removing_a_learner_takes_them_out_and_keeps_their_account(teaching, cohort, learner):
    response = teaching.post(reverse("cohort-roster-action", args=[cohort.pk, "remove"]), {"learner": learner.pk},
                             follow=True)

    assert "ada is no longer in “Morning cohort”. Their account stays." in response.content.decode()
    assert not Membership.objects.filter(cohort=cohort, learner=learner).exists()
    assert User.objects.filter(pk=learner.pk).exists()


def test_resetting_a_password_shows_a_new_one_time_password_that_must_be_changed(teaching, cohort, learner):
    response = teaching.post(reverse("cohort-roster-action", args=[cohort.pk, "password"]), {"learner": learner.pk},
                             follow=True)

    page = response.content.decode()
    password = page.split("New one-time password for ada: ")[1].split(" ")[0]
    learner.refresh_from_db()
    assert learner.check_password(password) and not learner.check_password("pw-ada")
    assert PasswordChangeRequired.objects.filter(user=learner).exists()


def test_a_learner_of_another_cohort_cannot_have_their_password_reset(teaching, cohort, other_learner):
    response = teaching.post(reverse("cohort-roster-action", args=[cohort.pk, "password"]),
                             {"learner": other_learner.pk}, follow=True)

    assert "That learner is not in this cohort" in response.content.decode()
    other_learner.refresh_from_db()
    assert other_learner.check_password("pw-grace")


def test_a_new_invite_code_replaces_the_old_one(teaching, cohort, other_learner):
    old = cohort.invite_code

    teaching.post(reverse("cohort-roster-action", args=[cohort.pk, "invite"]))

    cohort.refresh_from_db()
    assert cohort.invite_code != old
    with pytest.raises(services.CohortError, match="No cohort has that invite code"):
        services.cohort_join(learner=other_learner, invite_code=old)
    assert services.cohort_join(learner=other_learner, invite_code=cohort.invite_code) == cohort


def test_a_closed_cohort_refuses_joins_by_code_and_opens_again(teaching, cohort, other_learner):
    teaching.post(reverse("cohort-roster-action", args=[cohort.pk, "close"]))

    with pytest.raises(services.CohortError, match="closed to new learners"):
        services.cohort_join(learner=other_learner, invite_code=cohort.invite_code)
    teaching.post(reverse("cohort-roster-action", args=[cohort.pk, "open"]))
    assert services.cohort_join(learner=other_learner, invite_code=cohort.invite_code) == cohort


def test_the_account_a_learner_deleted_cannot_be_given_a_password(teaching, cohort, learner):
    from accounts.services import account_delete

    account_delete(user=learner, password="pw-ada")

    response = teaching.post(reverse("cohort-roster-action", args=[cohort.pk, "password"]), {"learner": learner.pk},
                             follow=True)

    assert "an account its learner deleted" in response.content.decode()
    learner.refresh_from_db()
    assert not learner.has_usable_password() and not learner.is_active
