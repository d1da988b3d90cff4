"""Asking the APIs hostile questions: bounded in time, no leaks, bilingual refusals.

Shared by the hostile-request tests of the REST API, OGC API – Features and the
tiles. Every request runs under a short ``statement_timeout`` (a statement that
ran unbounded would fail the request with a 500, which the test client raises),
must come back within ``ROUND_TRIP_S``, and may not show SQL or Python errors.
"""

import contextlib
import time

from django.db import connection

from tests.importers.helpers import assert_chinese

LEAKS = ("psycopg", "Traceback", "syntax error", "SELECT ", "ProgrammingError")
ROUND_TRIP_S = 2.0
STATEMENT_TIMEOUT = "2s"


@contextlib.contextmanager
def statement_timeout():
    """Cut off every statement of the test's connection after 2 seconds."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")


def ask(client, method: str, url: str, **kwargs):
    """Make the request; assert it came back quickly and leaked nothing."""
    started = time.perf_counter()
    response = getattr(client, method)(url, **kwargs)
    assert time.perf_counter() - started < ROUND_TRIP_S
    assert response.status_code < 500
    text = response.content.decode("utf-8", "replace")
    assert not any(leak in text for leak in LEAKS), text[:500]
    return response


def refused(response, *, parameter: str | None, en: str, status: int = 400) -> dict:
    """Assert a bilingual refusal naming ``parameter`` with this English text."""
    assert response.status_code == status, response.content[:500]
    body = response.json()
    assert body["error"]["en"] == en
    assert body["description"] == en
    assert_chinese(body["error"]["zh"], en)
    assert body.get("parameter") == parameter
    return body
