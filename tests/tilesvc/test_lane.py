"""The tile lane: tiles skip the page middleware, and nothing else does."""

import pytest
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse
from django.test import Client
from django.urls import path

from config import urls as config_urls
from tilesvc.lane import in_tile_lane


@in_tile_lane
def _marked_but_behind_the_login(request):
    return HttpResponse("the login middleware was skipped")


@in_tile_lane
@login_not_required
def _marked_and_open(request):
    return HttpResponse("answered in the lane")


urlpatterns = [
    path("tiles/behind-login", _marked_but_behind_the_login),
    path("tiles/open", _marked_and_open),
    *config_urls.urlpatterns,  # the login page, for the redirect
]


def test_a_tile_is_answered_before_the_page_middleware(login, planner, parcel_tile_url):
    response = login(planner).get(parcel_tile_url)

    assert response.status_code == 200
    # Set by the middleware the lane skips (clickjacking guard on pages) …
    assert "X-Frame-Options" not in response
    # … while what runs before it still does, and what a client needs is there.
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Length"] == str(len(response.content))
    assert response["Content-Language"] == "zh-hans"
    assert "Cookie" in response["Vary"]


def test_the_chosen_language_is_named_in_the_lane(login, planner, parcel_tile_url):
    assert (
        login(planner, language="en").get(parcel_tile_url)["Content-Language"] == "en"
    )


def test_an_anonymous_tile_request_is_still_refused(parcel_tile_url):
    response = Client().get(parcel_tile_url)

    assert response.status_code == 401
    assert "登录" in response.json()["error"]["zh"]


def test_a_page_goes_the_whole_way(login, planner):
    assert login(planner).get("/map/")["X-Frame-Options"] == "DENY"


def test_a_post_to_a_tile_meets_the_csrf_check(planner, parcel_tile_url):
    client = Client(enforce_csrf_checks=True)
    client.force_login(planner)

    assert client.post(parcel_tile_url).status_code == 403


@pytest.mark.urls("tests.tilesvc.test_lane")
def test_a_marked_view_that_relies_on_the_login_is_not_short_cut(db):
    response = Client().get("/tiles/behind-login")

    assert response.status_code == 302  # the login middleware ran: to the login
    assert "/accounts/login/" in response["Location"]


@pytest.mark.urls("tests.tilesvc.test_lane")
def test_a_marked_open_view_is_answered_in_the_lane(db):
    response = Client().get("/tiles/open")

    assert response.content == b"answered in the lane"
    assert "X-Frame-Options" not in response
