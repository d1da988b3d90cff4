"""A login lasts an office day at most and ends with the browser."""

import datetime

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.utils import timezone

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def log_in(client: Client, username: str):
    response = client.post(
        "/accounts/login/", {"username": username, "password": PASSWORD}
    )
    assert response.status_code == 302
    return response


def test_the_session_cookie_ends_with_the_browser(planner):
    client = Client()

    log_in(client, "planner")

    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["max-age"] == ""
    assert cookie["expires"] == ""
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"


def test_a_login_is_forgotten_after_eight_hours(planner):
    client = Client()
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        log_in(client, "planner")
        traveller.shift(datetime.timedelta(hours=7, minutes=59))
        assert client.get("/").status_code == 200

        traveller.shift(datetime.timedelta(minutes=2))
        response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"
