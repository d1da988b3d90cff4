"""What every REST view of the registry shares: access, paging, feature pages."""

from urllib.parse import urlencode

from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission

from registry import access, feature_pages, query_params
from registry.errors import BadQuery

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
ORDERINGS = ("code", "-code", "area_m2", "-area_m2", "updated_at", "-updated_at")


class HoldsARole(BasePermission):
    """Let in only users with a role in the registry (any project, any role)."""

    def has_permission(self, request, view):
        """Refuse users the registry does not know, bilingually.

        Nobody logged in is not a refusal of a role: False lets DRF answer 401
        (log in, or send a token) instead of 403.
        """
        if not request.user.is_authenticated:
            return False
        access.refuse_unless_reader(request.user)
        return True


def refuse_unknown(query, known: tuple[str, ...]) -> None:
    """Refuse a parameter the endpoint does not have, so typos do not pass."""
    unknown = sorted(set(query) - set(known))
    if unknown:
        raise BadQuery(
            _("%(parameter)s is not a parameter here; the parameters are %(known)s."),
            parameter=unknown[0][:40],
            known=", ".join(known),
        )


def ordering_of(
    text: str | None, *, allowed: tuple[str, ...] = ORDERINGS, default: str = "code"
) -> feature_pages.Ordering:
    """Return the keyset ordering asked for."""
    value = text or default
    if value not in allowed:
        raise BadQuery(
            _("%(parameter)s must be one of %(known)s, not %(value)s."),
            parameter="ordering",
            known=", ".join(allowed),
            value=value[:40],
        )
    return feature_pages.Ordering.parse(value)


def feature_collection(
    page: feature_pages.Page, *, next_url: str | None, crs_uri: str
) -> HttpResponse:
    """Return a page as a GeoJSON FeatureCollection response with its next link."""
    body = page.collection(
        {
            "numberReturned": page.returned,
            "next": next_url,
            "next_cursor": page.next_cursor,
        }
    )
    response = HttpResponse(body, content_type="application/geo+json")
    response["Content-Crs"] = f"<{crs_uri}>"
    return response


def next_url(request, cursor: str | None) -> str | None:
    """Return the URL of the next page of a GET listing (None on the last)."""
    if cursor is None:
        return None
    query = {k: v for k, v in request.query_params.items() if k != "cursor"}
    return request.build_absolute_uri(
        request.path + "?" + urlencode({**query, "cursor": cursor})
    )


def limit_of(text) -> int:
    """Return the page size of a REST listing."""
    return query_params.limit_of(text, default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
