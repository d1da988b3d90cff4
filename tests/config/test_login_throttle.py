"""Login throttling: wrong passwords lock a user name out from one address."""

import datetime

import pytest
import time_machine
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import SESSION_KEY, authenticate
from django.test import Client
from django.utils import timezone

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
LIMIT = settings.AXES_FAILURE_LIMIT


def log_in(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password})


def fail(client: Client, username: str, times: int = LIMIT) -> None:
    """Give ``times`` wrong passwords; the one that reaches the limit locks."""
    for attempt in range(1, times + 1):
        response = log_in(client, username, "wrong horse")
        assert response.status_code == (429 if attempt == LIMIT else 200)


def logged_in(client: Client) -> bool:
    return SESSION_KEY in client.session


def test_the_limit_is_five_wrong_passwords_for_fifteen_minutes():
    assert LIMIT == 5
    assert datetime.timedelta(minutes=15) == settings.AXES_COOLOFF_TIME


def test_after_the_limit_even_the_right_password_is_refused(planner):
    client = Client()
    fail(client, "planner")

    response = log_in(client, "planner", PASSWORD)

    assert response.status_code == 429
    page = response.content.decode()
    assert "密码错误次数过多" in page
    assert (
        "Too many wrong passwords for this user name: logging in from here is "
        "locked for 15 minutes." in page
    )
    assert not logged_in(client)


def test_one_wrong_password_less_than_the_limit_still_logs_in(planner):
    client = Client()
    fail(client, "planner", LIMIT - 1)

    response = log_in(client, "planner", PASSWORD)

    assert response.status_code == 302
    assert logged_in(client)
    # A success forgets the failures.
    assert not AccessAttempt.objects.filter(username="planner").exists()


def test_the_lockout_ends_after_the_cool_off(planner):
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        fail(client, "planner")
        assert log_in(client, "planner", PASSWORD).status_code == 429

        traveller.shift(settings.AXES_COOLOFF_TIME - datetime.timedelta(seconds=5))
        assert log_in(client, "planner", PASSWORD).status_code == 429
        # Trying during the lockout starts the cool-off again.
        traveller.shift(settings.AXES_COOLOFF_TIME + datetime.timedelta(seconds=1))
        response = log_in(client, "planner", PASSWORD)

    assert response.status_code == 302
    assert logged_in(client)


def test_a_lockout_holds_one_user_name_from_one_address(planner, analyst):
    fail(Client(REMOTE_ADDR="10.0.0.7"), "planner")

    other_user = log_in(Client(REMOTE_ADDR="10.0.0.7"), "analyst", PASSWORD)
    same_user_elsewhere = log_in(Client(REMOTE_ADDR="10.0.0.8"), "planner", PASSWORD)
    locked = log_in(Client(REMOTE_ADDR="10.0.0.7"), "planner", PASSWORD)

    assert other_user.status_code == 302
    assert same_user_elsewhere.status_code == 302
    assert locked.status_code == 429


def test_a_registry_admin_sees_the_lockout_and_lifts_it(planner, login, registry_admin):
    fail(Client(), "planner")
    attempt = AccessAttempt.objects.get(username="planner")
    admin = login(registry_admin)

    listing = admin.get("/admin/axes/accessattempt/")
    lifted = admin.post(
        f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"}
    )

    assert listing.status_code == 200
    assert "planner" in listing.content.decode()
    assert lifted.status_code == 302
    assert log_in(Client(), "planner", PASSWORD).status_code == 302


@pytest.mark.parametrize("persona", ["planner", "surveyor", "case_officer"])
def test_no_other_role_sees_the_login_attempts(persona, request, login):
    response = login(request.getfixturevalue(persona)).get("/admin/axes/accessattempt/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_checking_a_password_outside_a_request_is_not_throttled(planner):
    """Commands call authenticate() without a request: nothing to count it by."""
    assert authenticate(username="planner", password=PASSWORD) == planner
    assert authenticate(username="planner", password="wrong") is None
