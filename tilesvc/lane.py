"""A short lane through the middleware for map tiles that reach Django.

Most vector tiles are answered before Django by ``tilesvc.front``; the rest —
refusals, mistakes, orthophoto tiles, and every tile asked through Django's
test client — come here.

A map view asks for dozens of tiles at once and hundreds while panning, so the
work Django does around each one counts: the full middleware stack costs about
as much as drawing a small tile (measured under gunicorn, time in the WSGI
app: 3.6 ms per cached tile with every middleware, 2.8 ms with only those that
run before this one). A tile needs the
security headers, the session and the user (a map page's own login), and the
NUL guard — all of which run before this middleware —, the host check (made
here) and nothing else:
the tile views check their caller themselves (session or API token, a role in
the registry), write nothing, answer only GET and HEAD, and say what is wrong
in both languages whatever the active one.

So for GET and HEAD on a view marked ``@in_tile_lane`` (which must also be
``login_not_required``: it checks its caller itself), this middleware calls the
view at once. Every other request — other methods on a tile URL included, so a
POST still meets the CSRF check and its 403 — goes the whole way.
"""

from django.urls import Resolver404, resolve

from config.locale import activate_chosen_language

PREFIXES = ("/tiles/", "/imagery/")
SAFE_METHODS = ("GET", "HEAD")
NO_BODY = (204, 304)  # statuses that carry no body, nor its length


def in_tile_lane(view):
    """Mark a tile view to be answered by ``TileLaneMiddleware``."""
    view.tile_lane = True
    return view


class TileLaneMiddleware:
    """Answer a marked tile view's GET/HEAD without the middleware after this one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        """Call a tile view directly, or pass the request on."""
        match = self._tile_view(request)
        if match is None:
            return self.get_response(request)
        request.resolver_match = match
        # The host check CommonMiddleware would make (a DisallowedHost is
        # Django's 400), so that no tile is answered to a host not allowed.
        request.get_host()
        activate_chosen_language(request)
        response = match.func(request, *match.args, **match.kwargs)
        # What the skipped middleware would have added that a client uses: the
        # length (CommonMiddleware; without it the body goes chunked; never on
        # a 204 or 304, RFC 9110 §8.6) and the language of any message (the
        # locale middleware, from the cookie).
        # "Vary: Cookie" comes from the session middleware: every tile view
        # reads the session's user.
        if (
            not response.streaming
            and response.status_code not in NO_BODY
            and not response.has_header("Content-Length")
        ):
            response["Content-Length"] = str(len(response.content))
        response.headers.setdefault("Content-Language", request.LANGUAGE_CODE)
        return response

    @staticmethod
    def _tile_view(request):
        if request.method not in SAFE_METHODS:
            return None
        if not request.path_info.startswith(PREFIXES):
            return None
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return None
        view = match.func
        # Both marks, or the whole way: a view that relies on the login
        # middleware must never be reached from here.
        if getattr(view, "tile_lane", False) and not getattr(
            view, "login_required", True
        ):
            return match
        return None
