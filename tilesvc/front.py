"""The vector-tile front: a tile answered before Django whenever it can be.

A map view asks for dozens of tiles at once and hundreds while panning, and
most of them are plain answers: a reader, a tile that exists, a kept copy or
one drawn now. For those, Django's handler, URL resolver, request and response
objects and middleware hooks cost as much as reading the kept tile (measured
under gunicorn on the ×100 demo: a kept tile 3.2–3.7 ms at the client through
Django, 1.8–2.4 ms here; see the README's tile figures). So ``TileFront`` wraps
Django's WSGI application (``config/wsgi.py``) and answers GET and HEAD of
``/tiles/{layer}/{z}/{x}/{y}.mvt`` itself, with the view's own parts: the
caller (``tilesvc.readers.Caller``, checked in the tile's statement), what is
asked (``views.tile_asked``), the answer (``views.reply``).

Anything else goes to Django unchanged, which then answers it as it always
has: other methods (a POST meets the CSRF check), a host not allowed, a plain
HTTP request that must be redirected to HTTPS, a NUL in the query, no
credentials, a malformed or unknown token, a session that is not a user's,
a refused caller, a tile or filter that is not one, and any error here. So a
refusal and its bilingual wording come from one place, and this front never
answers an error of its own.

The headers are the ones Django's way gives a tile (``TileLaneMiddleware``):
the tile's own, the length, the language of the switcher's cookie, ``Vary:
Cookie`` (the answer depends on the session) and the security middleware's,
which are computed by Django's ``SecurityMiddleware`` itself.
``tests/tilesvc/test_front.py`` checks that both ways answer alike, header for
header and byte for byte, for every kind of caller.
"""

import logging
import re
import time
from http import HTTPStatus
from importlib import import_module

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import get_user_model
from django.core import signals
from django.core.exceptions import DisallowedHost, SuspiciousOperation
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest
from django.http import HttpResponse
from django.middleware.security import SecurityMiddleware
from django.utils.crypto import constant_time_compare

from config.locale import chosen_language
from registry.errors import RegistryError
from tilesvc import views
from tilesvc.lane import SAFE_METHODS
from tilesvc.readers import Caller, token_key

# tilesvc/urls.py's ``tile`` route under ``/tiles/`` (str and int converters);
# tests/tilesvc/test_front.py holds the two to each other.
TILE_PATH = re.compile(r"/tiles/([^/]+)/([0-9]+)/([0-9]+)/([0-9]+)\.mvt")
log = logging.getLogger(__name__)


class TileFront:
    """A WSGI application: plain vector-tile answers, else Django's ``app``."""

    def __init__(self, app: WSGIHandler):
        self.app = app
        self.session_store = import_module(settings.SESSION_ENGINE).SessionStore
        # The security middleware's redirect setting and headers (not its
        # content type: the tile has its own), by whether the request is
        # secure: HSTS goes over HTTPS only. The middleware reads its settings
        # once, at start, as in Django's stack; so does this front.
        security = SecurityMiddleware(_unused)
        self.redirects_to_https = security.redirect
        self.security_headers = {
            secure: tuple(
                (name, value)
                for name, value in security.process_response(
                    _Scheme(secure), HttpResponse()
                ).items()
                if name != "Content-Type"
            )
            for secure in (False, True)
        }

    def __call__(self, environ, start_response):
        """Answer a plain tile request here, or hand it to Django."""
        match = TILE_PATH.fullmatch(environ.get("PATH_INFO", ""))
        if (
            match is None
            or environ.get("REQUEST_METHOD") not in SAFE_METHODS
            # A NUL would reach PostgreSQL as an error: Django's NUL guard
            # refuses it, saying so in both languages.
            or "%00" in environ.get("QUERY_STRING", "")
        ):
            return self.app(environ, start_response)
        started = time.perf_counter()
        # As Django's handler does: the signal recycles old or broken database
        # connections; its pair is sent when the server closes the body.
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            answer = self._answer(WSGIRequest(environ), match, started)
        except SuspiciousOperation:  # too many query fields, say: Django's 400
            answer = None
        except Exception:
            # Django answers it (a 500 it logs, or a database back by then);
            # logged here too, since the front should never fail on its own.
            log.exception("tile front failed; Django answers the request")
            answer = None
        if answer is None:
            signals.request_finished.send(sender=self.__class__)
            return self.app(environ, start_response)
        status, headers, body = answer
        try:
            start_response(status, headers)
        except BaseException:
            body.close()  # the request ends here all the same
            raise
        return body

    def _answer(self, request: WSGIRequest, match, started: float):
        """Return (status line, headers, body), or None for Django to answer."""
        secure = request.is_secure()
        if self.redirects_to_https and not secure:
            return None
        try:
            request.get_host()  # ALLOWED_HOSTS
        except DisallowedHost:
            return None
        caller = self._caller(request)
        if caller is None:
            return None
        layer, z, x, y = match[1], int(match[2]), int(match[3]), int(match[4])
        try:
            spec, filters = views.tile_asked(request, layer, z, x, y)
            reply = views.reply(
                caller,
                spec,
                z,
                x,
                y,
                filters,
                request.META.get("HTTP_IF_NONE_MATCH", ""),
            )
        except RegistryError:
            return None
        headers = [
            *reply.headers(started),
            ("Vary", "Cookie"),
            ("Content-Language", chosen_language(request.COOKIES)),
            *self.security_headers[secure],
        ]
        status = f"{reply.status} {HTTPStatus(reply.status).phrase}"
        return status, headers, _Body(reply.body, reply.keep)

    def _caller(self, request: WSGIRequest) -> Caller | None:
        """Return the caller by session or API token, or None (Django decides)."""
        key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if key is None:
            token = token_key(request)
            return None if token is None else Caller.by_token(token)
        if settings.SESSION_SAVE_EVERY_REQUEST:  # saved with every answer: Django's
            return None
        user = self._session_user(key)
        return None if user is None else Caller.by_user(user.pk)

    def _session_user(self, key: str):
        """Return the session's user if Django would take it as is, else None.

        Django's own reading (``auth.get_user``), without what it may change:
        a session it would flush (a password changed since the login) or renew
        (a hash under a previous secret key) is left to Django, which does so.
        Nothing is written here: an expired or unknown session reads as empty.
        """
        session = self.session_store(key)
        try:
            # Stored as text: the primary key's own type, as Django reads it.
            user_id = get_user_model()._meta.pk.to_python(session[auth.SESSION_KEY])
            backend_path = session[auth.BACKEND_SESSION_KEY]
        except KeyError:
            return None
        if backend_path not in settings.AUTHENTICATION_BACKENDS:
            return None
        user = auth.load_backend(backend_path).get_user(user_id)
        if user is None or not hasattr(user, "get_session_auth_hash"):
            return None
        session_hash = session.get(auth.HASH_SESSION_KEY)
        if not session_hash or not constant_time_compare(
            session_hash, user.get_session_auth_hash()
        ):
            return None
        return user


class _Body:
    """A tile's body that keeps a drawn tile once it has been sent.

    The WSGI server calls ``close`` after the last byte, as with Django's
    responses (``views._TileResponse``): the tile is handed to the process's
    writer, and the request's end is signalled (database connections). Not a
    list: a server may send a list without asking whether it has a ``close``.
    """

    def __init__(self, data: bytes, keep):
        self.chunks = (data,) if data else ()
        self.keep = keep

    def __iter__(self):
        """Yield the tile's bytes (nothing for an empty tile)."""
        return iter(self.chunks)

    def close(self):
        """Keep the tile, then end the request."""
        try:
            views.keep_sent(self.keep)
        finally:
            signals.request_finished.send(sender=TileFront)


class _Scheme:
    """A stand-in request for the security middleware: only its scheme matters."""

    def __init__(self, secure: bool):
        self.secure = secure

    def is_secure(self) -> bool:
        """Return whether the request came over HTTPS."""
        return self.secure


def _unused(request):
    """Stand in for the rest of the stack, which the front never calls."""
    raise AssertionError("only the middleware's response hook is used")
