"""Refuse NUL characters in URLs before any view sees them.

PostgreSQL text cannot hold NUL, so a ``%00`` in a filter or a path would reach
the database as an error (a 500) wherever a value is used as text. It is never
part of a legitimate code, name or date: refuse it once, here, with the same
bilingual answer as every other bad parameter.
"""

from django.http import HttpResponseBadRequest
from django.utils.translation import gettext_lazy as _

from registry.errors import BadQuery

JSON_PREFIXES = ("/api/", "/ogcapi/", "/tiles/", "/imagery/")


class RefuseNulMiddleware:
    """Answer 400 to any request whose path or query holds a NUL character."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        """Refuse the request, or pass it on."""
        parameter = _nul_in(request)
        if parameter is None:
            return self.get_response(request)
        error = BadQuery(
            _("%(parameter)s holds a NUL character, which no value may contain."),
            parameter=parameter,
        )
        if not request.path.startswith(JSON_PREFIXES):
            return HttpResponseBadRequest(error.bilingual)
        return error.response("InvalidParameterValue")


def _nul_in(request) -> str | None:
    if "\x00" in request.path:
        return "path"
    for name, values in request.GET.lists():
        if "\x00" in name or any("\x00" in value for value in values):
            return name.replace("\x00", "")[:40] or "query"
    return None
