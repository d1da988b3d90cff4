"""Every route of the URL conf, made concrete with real ids, for the access matrix.

``routes()`` walks ``get_resolver()`` the way Django resolves: each pattern
with the prefixes of the includes above it, so a route is named by the very
text a reader finds in the ``urls.py`` files (``api/parcels/<int:pk>/``), and a
new ``path()`` anywhere shows up here without anyone listing it.
"""

import re
from dataclasses import dataclass

from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

# ``path()`` parameters (<int:pk>) and ``re_path()`` groups ((?P<app_label>…)).
_PARAMETER = re.compile(
    r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>|\(\?P<(?P<group>\w+)>[^)]*\)"
)


@dataclass(frozen=True)
class Route:
    """One URL pattern: its full route text and the view's module.function."""

    route: str
    name: str | None
    view: str


def routes() -> list[Route]:
    """Return every pattern of the root URL conf, includes expanded."""
    found: list[Route] = []

    def walk(resolver: URLResolver, prefix: str) -> None:
        for pattern in resolver.url_patterns:
            text = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern, text)
            elif isinstance(pattern, URLPattern):
                callback = pattern.callback
                view = getattr(callback, "view_class", None) or callback
                found.append(
                    Route(
                        route=text,
                        name=pattern.name,
                        view=f"{view.__module__}.{view.__qualname__}",
                    )
                )

    walk(get_resolver(), "")
    return found


def admin_model(route: str):
    """Return the model of an admin route (``admin/<app>/<model>/…``), or None."""
    match = re.match(r"admin/(\w+)/(\w+)/", route)
    if match is None:
        return None
    try:
        return apps.get_model(match[1], match[2])
    except LookupError:
        return None


def concrete(route: str, value) -> str:
    """Return the URL of ``route`` with each ``<parameter>`` filled in.

    ``value(route, name)`` gives the text of one parameter (it raises
    ``LookupError`` for one it does not know, naming the route).
    """
    filled = _PARAMETER.sub(
        lambda match: str(value(route, match["name"] or match["group"])), route
    )
    return "/" + filled.replace("^", "").replace("$", "")
