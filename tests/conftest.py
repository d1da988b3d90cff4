"""Personas of the registry and the projects they work in.

Surveyors and case officers hold their role in ``project``; ``other_project`` is a
second project with its own case officer. Planners, analysts and the registry
admin are district-wide. The admin holds the role through a ``Membership``, not as
a Django superuser, so the tests exercise the role itself.
"""

import pytest
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.db.backends.signals import connection_created
from django.test import Client

from registry.choices import Role
from tests.factories import ProjectFactory, UserFactory, user_with_role

# Headless Chromium fixtures for page tests.
pytest_plugins = ["tests.browser"]


def allow_audit_truncate(sender, connection, **kwargs) -> None:
    """Let the test database be emptied between tests, audit trail included.

    Transactional tests end with Django's flush, a TRUNCATE of every table,
    which the audit trail refuses unless the session allows it (migration
    registry 0009); only the test suite does.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET registry.allow_audit_truncate = 'on'")


connection_created.connect(allow_audit_truncate, dispatch_uid="allow_audit_truncate")


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Hash test passwords cheaply; the real hasher costs a second per persona."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def tile_cache(settings, tmp_path):
    """Give each test an empty tile cache of its own, like a fresh server's.

    Tiles are kept in the request's thread, so that a hit can be read right
    after a miss (tests/tilesvc/test_keeper.py checks the writer thread).
    """
    settings.TILE_KEEP_BEHIND = False
    settings.CACHES = {
        **settings.CACHES,
        "tiles": {
            "BACKEND": "tilesvc.file_cache.TileFileCache",
            "LOCATION": str(tmp_path / "tile-cache"),
        },
    }


@pytest.fixture
def one_connection():
    """Let WSGI requests made in-process use the test's connection and transaction.

    Django's test client does the same: a request's start and end would
    otherwise close the connection the test's rows live in.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def project(db):
    return ProjectFactory(code="GM-SC", name_zh="光明科学城启动区")


@pytest.fixture
def other_project(db):
    return ProjectFactory(code="GM-L6", name_zh="轨道6号线")


@pytest.fixture
def outsider(db):
    """A user who can log in but holds no role at all."""
    return UserFactory(username="outsider")


@pytest.fixture
def surveyor(project):
    return user_with_role(Role.SURVEYOR, project, username="surveyor")


@pytest.fixture
def case_officer(project):
    return user_with_role(Role.CASE_OFFICER, project, username="case_officer")


@pytest.fixture
def surveyor_elsewhere(other_project):
    """A surveyor, but of the other project."""
    return user_with_role(Role.SURVEYOR, other_project, username="surveyor_elsewhere")


@pytest.fixture
def case_officer_elsewhere(other_project):
    return user_with_role(
        Role.CASE_OFFICER, other_project, username="case_officer_elsewhere"
    )


@pytest.fixture
def planner(db):
    return user_with_role(Role.PLANNER, username="planner")


@pytest.fixture
def analyst(db):
    return user_with_role(Role.ANALYST, username="analyst")


@pytest.fixture
def registry_admin(db):
    return user_with_role(Role.REGISTRY_ADMIN, username="registry_admin")


@pytest.fixture
def login(db):
    """Return a function that gives a test client logged in as a user."""

    def log_in(user, *, language: str | None = None, **client_kwargs) -> Client:
        client = Client(**client_kwargs)
        client.force_login(user)
        if language:
            # What the page's language switcher leaves behind.
            client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        return client

    return log_in
