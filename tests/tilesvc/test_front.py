"""The tile front answers plain tile requests as Django would, and hands on the rest."""

import datetime
import logging
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.test import Client, RequestFactory
from django.urls import Resolver404, resolve
from django.utils import timezone
from rest_framework.authtoken.models import Token

from registry import services
from registry.choices import Role
from registry.models import Parcel
from registry.workflow import Status
from tests.factories import user_with_role
from tilesvc import front, views
from tilesvc.front import TILE_PATH, TileFront

# Only the time spent differs between the two ways (and the date, which the
# WSGI server adds).
UNCOMPARED = {"server-timing"}


@dataclass
class Answer:
    status: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class CountingApp:
    """Django's WSGI application, counting the requests it is handed."""

    def __init__(self) -> None:
        self.app = WSGIHandler()
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.app(environ, start_response)


def call(app, environ: dict) -> Answer:
    """Call a WSGI application as a server would, and read its whole answer.

    Needs ``one_connection``: the test's transaction holds the connection.
    """
    started: dict = {}

    def start_response(status, headers, exc_info=None):
        started["status"], started["headers"] = status, headers

    body = app(environ, start_response)
    try:
        data = b"".join(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    headers: dict[str, str] = {}
    for name, value in started["headers"]:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Answer(started["status"], headers, data)


@pytest.fixture
def ways(one_connection):
    """Return a function asking the front and Django alike: (front, Django, app)."""

    def ask(path: str, *, method: str = "GET", secure: bool = False, **extra):
        inner = CountingApp()
        fronted = TileFront(inner)

        def environ() -> dict:
            request = RequestFactory().generic(method, path, secure=secure, **extra)
            return request.environ

        by_front = call(fronted, environ())
        handed_on = inner.calls
        by_django = call(WSGIHandler(), environ())
        return by_front, by_django, handed_on

    return ask


def assert_alike(by_front: Answer, by_django: Answer) -> None:
    assert by_front.status == by_django.status
    assert by_front.body == by_django.body
    assert {k: v for k, v in by_front.headers.items() if k not in UNCOMPARED} == {
        k: v for k, v in by_django.headers.items() if k not in UNCOMPARED
    }


def token_of(user) -> str:
    return Token.objects.create(user=user).key


def session_cookie(user, language: str | None = None) -> str:
    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    cookie = f"{settings.SESSION_COOKIE_NAME}={session}"
    if language:
        cookie += f"; {settings.LANGUAGE_COOKIE_NAME}={language}"
    return cookie


# The route


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/parcels/16/53512/28510.mvt",
        "/tiles/buildings/0/0/0.mvt",
        "/tiles/anything/1/2/3.mvt",
        "/tiles/parcels.json",
        "/tiles/parcels/16/1/2.png",
        "/tiles/parcels/16/1/2.mvt/more",
        "/tiles/parcels/-1/2/3.mvt",
        "/tiles/parcels/1.5/2/3.mvt",
        "/tiles/a/b/1/2/3.mvt",
        "/tilesx/parcels/1/2/3.mvt",
        "/imagery/1/tiles/1/2/3.png",
    ],
)
def test_the_front_takes_exactly_the_paths_of_the_tile_route(path):
    try:
        routed = resolve(path).func is views.tile
    except Resolver404:
        routed = False

    assert (TILE_PATH.fullmatch(path) is not None) == routed


# Readers: answered in front, as Django answers them


def test_a_reader_with_a_token_gets_djangos_answer_from_the_front(
    ways, planner, parcel_tile_url
):
    auth = {"HTTP_AUTHORIZATION": f"Token {token_of(planner)}"}

    by_front, by_django, handed_on = ways(parcel_tile_url, **auth)

    assert handed_on == 0
    assert by_front.status == "200 OK"
    assert by_front.header("Content-Type") == "application/vnd.mapbox-vector-tile"
    assert by_front.header("X-Tile-Cache") == "miss"
    assert by_django.header("X-Tile-Cache") == "hit"  # the front kept it
    by_front.headers["x-tile-cache"] = "hit"
    assert_alike(by_front, by_django)


def test_a_reader_with_a_session_gets_djangos_answer_from_the_front(
    ways, planner, parcel_tile_url
):
    by_front, by_django, handed_on = ways(
        parcel_tile_url, HTTP_COOKIE=session_cookie(planner, language="en")
    )

    assert handed_on == 0
    assert by_front.status == "200 OK"
    assert by_front.header("Content-Language") == "en"
    assert by_front.header("Vary") == "Cookie"
    assert "set-cookie" not in by_front.headers
    by_front.headers["x-tile-cache"] = "hit"
    assert_alike(by_front, by_django)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/tiles/parcels/16/0/0.mvt", "204 No Content"),  # nothing there
        ("/tiles/parcels/5/0/0.mvt", "204 No Content"),  # below the layer's zoom
        ("/tiles/projects/8/213/113.mvt", None),  # another layer
    ],
)
def test_empty_and_other_tiles_come_from_the_front_alike(ways, planner, path, status):
    auth = {"HTTP_AUTHORIZATION": f"Token {token_of(planner)}"}

    by_front, by_django, handed_on = ways(path, **auth)

    assert handed_on == 0
    if status:
        assert by_front.status == status
        assert by_front.body == b""
        assert "content-length" not in by_front.headers  # RFC 9110 §8.6
    by_front.headers["x-tile-cache"] = by_django.header("X-Tile-Cache")
    assert_alike(by_front, by_django)


def test_filters_and_head_requests_are_answered_in_front(
    ways, planner, project, parcel_tile_url
):
    auth = {"HTTP_AUTHORIZATION": f"Token {token_of(planner)}"}
    query = {"QUERY_STRING": f"status=cleared,banked&project={project.code}"}

    by_front, by_django, handed_on = ways(parcel_tile_url, **auth, **query)
    heads = ways(parcel_tile_url, method="HEAD", **auth, **query)

    assert handed_on == 0 and heads[2] == 0
    assert by_front.body == by_django.body != b""
    assert heads[0].header("ETag") == by_front.header("ETag")
    heads[0].headers["x-tile-cache"] = heads[1].header("X-Tile-Cache")
    assert_alike(heads[0], heads[1])  # the server leaves the body out


def test_a_tile_the_client_has_is_not_modified(ways, planner, parcel_tile_url):
    auth = {"HTTP_AUTHORIZATION": f"Token {token_of(planner)}"}
    etag = ways(parcel_tile_url, **auth)[0].header("ETag")

    by_front, by_django, handed_on = ways(
        parcel_tile_url, **auth, HTTP_IF_NONE_MATCH=etag
    )

    assert handed_on == 0
    assert by_front.status == "304 Not Modified"
    assert by_front.body == b""
    assert_alike(by_front, by_django)


def test_a_refused_caller_who_knows_the_etag_is_refused_not_told_it_is_current(
    ways, planner, parcel_tile_url
):
    token = Token.objects.create(user=planner)
    auth = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    etag = ways(parcel_tile_url, **auth)[0].header("ETag")
    token.delete()

    by_front, by_django, handed_on = ways(
        parcel_tile_url, **auth, HTTP_IF_NONE_MATCH=etag
    )

    assert handed_on == 1
    assert by_front.status == "401 Unauthorized"
    assert_alike(by_front, by_django)


def test_https_behind_a_proxy_is_answered_in_front(
    ways, settings, planner, parcel_tile_url
):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    by_front, by_django, handed_on = ways(
        parcel_tile_url,
        HTTP_AUTHORIZATION=f"Token {token_of(planner)}",
        HTTP_X_FORWARDED_PROTO="https",
    )

    assert handed_on == 0
    assert by_front.status == "200 OK"
    assert by_front.header("Strict-Transport-Security") == "max-age=3600"
    by_front.headers["x-tile-cache"] = "hit"
    assert_alike(by_front, by_django)


def test_hsts_is_sent_over_https_as_django_sends_it(
    ways, settings, planner, parcel_tile_url
):
    settings.SECURE_HSTS_SECONDS = 3600
    auth = {"HTTP_AUTHORIZATION": f"Token {token_of(planner)}"}

    by_front, by_django, handed_on = ways(parcel_tile_url, secure=True, **auth)
    plain = ways(parcel_tile_url, **auth)

    assert handed_on == 0
    assert by_front.header("Strict-Transport-Security") == "max-age=3600"
    assert "strict-transport-security" not in plain[0].headers
    by_front.headers["x-tile-cache"] = "hit"
    assert_alike(by_front, by_django)


def test_a_status_change_is_seen_at_once_through_the_front(
    ways, planner, parcel_tile_url, registry_admin, django_capture_on_commit_callbacks
):
    auth = {"HTTP_AUTHORIZATION": f"Token {token_of(planner)}"}
    first, kept, _ = ways(parcel_tile_url, **auth)
    parcel = Parcel.objects.get(code="TILE-1")

    with django_capture_on_commit_callbacks(execute=True):
        services.parcel_transition(
            parcel=parcel,
            to_status=Status.BANKED,
            actor=registry_admin,
            banked_on=datetime.date(2026, 12, 1),
            bank_ref="GM-2026-001",
        )
    after, _, handed_on = ways(
        parcel_tile_url, **auth, HTTP_IF_NONE_MATCH=first.header("ETag")
    )

    assert kept.header("X-Tile-Cache") == "hit"
    assert handed_on == 0
    assert after.status == "200 OK"
    assert after.header("X-Tile-Cache") == "miss"
    assert after.header("ETag") != first.header("ETag")


def test_each_answer_in_front_opens_and_ends_one_request(
    planner, parcel_tile_url, one_connection
):
    seen = []

    def started(**kwargs):
        seen.append("started")

    def finished(**kwargs):
        seen.append("finished")

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        environ = (
            RequestFactory()
            .get(parcel_tile_url, HTTP_AUTHORIZATION=f"Token {token_of(planner)}")
            .environ
        )
        answer = call(TileFront(CountingApp()), environ)
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)

    assert answer.status == "200 OK"
    assert seen == ["started", "finished"]


# Everything else: handed to Django, which answers it


@pytest.fixture
def inactive(db):
    user = user_with_role(Role.PLANNER, username="gone")
    user.is_active = False
    user.save()
    return user


@pytest.mark.parametrize(
    "case",
    [
        "anonymous",
        "unknown token",
        "malformed token",
        "no role",
        "inactive",
        "revoked token",
        "stale session",
        "password changed since login",
        "expired session",
        "no role, by session",
        "inactive, by session",
        "unknown layer",
        "tile out of range",
        "unknown filter",
        "bad filter value",
        "nul in the query",
        "too many query fields",
        "host not allowed",
    ],
)
def test_what_the_front_cannot_answer_is_djangos(
    case, ways, planner, outsider, inactive, parcel_tile_url, caplog
):
    path, extra = parcel_tile_url, {}
    if case == "unknown token":
        extra["HTTP_AUTHORIZATION"] = "Token 0000000000000000000000000000000000000000"
    elif case == "malformed token":
        extra["HTTP_AUTHORIZATION"] = "Token two words"
    elif case in ("no role", "inactive"):
        user = outsider if case == "no role" else inactive
        extra["HTTP_AUTHORIZATION"] = f"Token {token_of(user)}"
    elif case == "revoked token":
        token = Token.objects.create(user=planner)
        extra["HTTP_AUTHORIZATION"] = f"Token {token.key}"
        token.delete()
    elif case == "stale session":
        extra["HTTP_COOKIE"] = f"{settings.SESSION_COOKIE_NAME}=nosuchsession"
    elif case == "expired session":
        extra["HTTP_COOKIE"] = session_cookie(planner)
        Session.objects.update(expire_date=timezone.now() - datetime.timedelta(1))
    elif case in ("no role, by session", "inactive, by session"):
        user = outsider if case.startswith("no role") else inactive
        extra["HTTP_COOKIE"] = session_cookie(user)
    elif case == "password changed since login":
        extra["HTTP_COOKIE"] = session_cookie(planner)
        planner.set_password("a new one")
        planner.save()
    elif case != "anonymous":
        extra["HTTP_AUTHORIZATION"] = f"Token {token_of(planner)}"
        path = {
            "unknown layer": "/tiles/roads/16/1/1.mvt",
            "tile out of range": "/tiles/parcels/16/70000/1.mvt",
        }.get(case, path)
        extra["QUERY_STRING"] = {
            "unknown filter": "colour=red",
            "bad filter value": "status=nonsense",
            "nul in the query": "project=GM%00",
            "too many query fields": "&".join(f"f{i}=1" for i in range(1001)),
        }.get(case, "")
        if case == "host not allowed":
            extra["HTTP_HOST"] = "tiles.example.com"

    by_front, by_django, handed_on = ways(path, **extra)

    assert handed_on == 1
    assert by_front.status[:1] == "4"
    assert_alike(by_front, by_django)
    assert "tile front failed" not in caplog.text  # handed on, not a failure


def test_a_session_django_must_update_is_left_to_django(
    ways, settings, planner, parcel_tile_url
):
    # Logged in under the previous secret key: Django renews the session's
    # hash with the current one, which only its session middleware saves.
    cookie = session_cookie(planner)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a new secret key for the tests, long enough to be one"

    by_front, _, handed_on = ways(parcel_tile_url, HTTP_COOKIE=cookie)

    assert handed_on == 1
    assert by_front.status == "200 OK"
    assert "set-cookie" in by_front.headers


def test_other_methods_go_to_django(ways, planner, parcel_tile_url):
    by_front, by_django, handed_on = ways(
        parcel_tile_url,
        method="POST",
        HTTP_AUTHORIZATION=f"Token {token_of(planner)}",
    )

    assert handed_on == 1
    assert by_front.status == by_django.status
    assert by_front.status[:3] in ("403", "405")


def test_plain_http_is_redirected_by_django_where_https_is_required(
    ways, settings, planner, parcel_tile_url
):
    settings.SECURE_SSL_REDIRECT = True

    by_front, _, handed_on = ways(
        parcel_tile_url, HTTP_AUTHORIZATION=f"Token {token_of(planner)}"
    )

    assert handed_on == 1
    assert by_front.status.startswith("301")
    assert by_front.header("Location").startswith("https://")


def test_sessions_saved_with_every_answer_are_left_to_django(
    ways, settings, planner, parcel_tile_url
):
    settings.SESSION_SAVE_EVERY_REQUEST = True

    by_front, _, handed_on = ways(parcel_tile_url, HTTP_COOKIE=session_cookie(planner))

    assert handed_on == 1
    assert by_front.status == "200 OK"
    assert "set-cookie" in by_front.headers  # Django saved the session


def test_a_failure_in_front_is_logged_and_answered_by_django(
    ways, planner, parcel_tile_url, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the front")

    monkeypatch.setattr(front.views, "tile_asked", broken)
    with caplog.at_level(logging.ERROR, logger="tilesvc.front"):
        by_front, _, handed_on = ways(
            parcel_tile_url, HTTP_AUTHORIZATION=f"Token {token_of(planner)}"
        )

    assert handed_on == 1
    assert "tile front failed" in caplog.text
    assert by_front.status.startswith("500")  # Django's view shares the bug


def test_the_application_served_is_the_front():
    from config import wsgi

    assert isinstance(wsgi.application, TileFront)
    assert wsgi.application.app is wsgi.django_application


def test_an_unrelated_page_is_djangos(ways, planner):
    by_front, by_django, handed_on = ways(
        "/accounts/login/", HTTP_COOKIE=session_cookie(planner)
    )

    assert handed_on == 1
    assert by_front.status == by_django.status
