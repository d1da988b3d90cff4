"""Who may read map tiles.

Tiles are read by the map pages (a session) and by GIS clients (an API token),
so both are accepted; either way the user needs a role in the registry. A
refusal is JSON that says what was wrong, in Chinese and English, with the HTTP
status that fits it.

A vector tile that has to be drawn checks its caller in the statement that draws
it (``Caller``): the token's user and roles, or a session user's roles, are read
in the same round trip as the tile, and the tile is only drawn for a reader.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import AuthenticationFailed

from registry import access
from registry.errors import NotLoggedIn
from registry.token_auth import TokenWithRolesAuthentication

READER = "reader"
_NO_ROLE = "no_role"  # the others: "inactive", "unknown" (a 401 either way)

# One row whatever the caller: a verdict the view turns into an answer. The
# check is a function (tilesvc migration 0003) so that PostgreSQL keeps its
# plans for the connection instead of planning it again with every tile.
_BY_TOKEN = "SELECT tile_caller_verdict(%s, NULL) AS verdict"  # noqa: S105
_BY_ID = "SELECT tile_caller_verdict(NULL, %s) AS verdict"


def tile_reader(request):
    """Return the user reading, by session or token, or refuse."""
    user = request.user
    if not user.is_authenticated:
        try:
            found = TokenWithRolesAuthentication().authenticate(request)
        except AuthenticationFailed:
            found = None
        if found is None:
            raise _not_logged_in()
        user = found[0]
    access.refuse_unless_reader(user)
    return user


@dataclass(frozen=True)
class Caller:
    """Who asks, as far as is known without the database; checked in SQL.

    ``sql`` selects one row with one column, ``verdict``; ``admit`` turns it
    into a refusal unless it is ``READER``. The same check as ``tile_reader``:
    a session's user (as Django reads it) or an API token (DRF's header rules),
    active, with a role (the SQL function ``tile_caller_verdict``).
    """

    sql: str
    params: tuple

    @classmethod
    def of(cls, request) -> "Caller":
        """Return the caller of ``request``; refuse one with neither credential."""
        user = request.user
        if user.is_authenticated:
            return cls.by_user(user.pk)
        key = token_key(request)
        if key is None:
            raise _not_logged_in()
        return cls.by_token(key)

    @classmethod
    def by_user(cls, pk: int) -> "Caller":
        """Return the caller logged in as user ``pk``."""
        return cls(_BY_ID, (pk,))

    @classmethod
    def by_token(cls, key: str) -> "Caller":
        """Return the caller sending API token ``key`` (not yet checked)."""
        return cls(_BY_TOKEN, (key,))

    @property
    def gate(self) -> tuple[str, tuple, str]:
        """Return the check for a statement to run first (``vector.render_gated``)."""
        return self.sql, self.params, READER

    def check(self, reading: tuple[str, Sequence] | None = None):
        """Refuse the caller unless a reader (one query of its own).

        With ``reading`` (SQL selecting one row of one column, and its
        parameters: a kept tile's stamp, say), that is read in the same round
        trip, and its value returned.
        """
        sql, params = self.sql, list(self.params)
        if reading is not None:
            sql = f"SELECT c.verdict, r.* FROM ({sql}) c, ({reading[0]}) r"  # noqa: S608
            params += reading[1]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            verdict, *value = cursor.fetchone()
        self.admit(verdict)
        return value[0] if value else None

    @staticmethod
    def admit(verdict: str) -> None:
        """Raise the refusal ``verdict`` stands for, unless it is ``READER``."""
        if verdict == READER:
            return
        if verdict == _NO_ROLE:
            access.refuse_unless_reader(access.Grants())  # the one wording
        raise _not_logged_in()


def token_key(request) -> str | None:
    """Return the API token sent with ``request`` by DRF's header rules, or None.

    None also for a malformed ``Authorization: Token`` header (DRF would refuse
    it; so does the check, for want of a token).
    """
    try:
        found = _TokenKey().authenticate(request)
    except AuthenticationFailed:
        return None
    return None if found is None else found[1]


class _TokenKey(TokenWithRolesAuthentication):
    """DRF's reading of ``Authorization: Token …``, without the lookup."""

    def authenticate_credentials(self, key):
        """Return the key as read from the header; it is checked in SQL."""
        return None, key


def _not_logged_in() -> NotLoggedIn:
    return NotLoggedIn(_("Log in, or send an API token, to read map tiles."))
