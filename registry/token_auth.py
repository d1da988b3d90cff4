"""API tokens that bring the user's roles along: one query instead of two.

Every API and tile request by a script or a GIS client presents a token; the
token's user and the user's roles (``registry.access.Grants``) are read in one
statement and the roles kept on that request's user object, which lives exactly
as long as the request, so a revoked role still takes effect on the next one.
"""

from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from registry import access

_USER_AND_ROLES = """
    SELECT u.*,
           coalesce(array_agg(m.role ORDER BY m.id)
                    FILTER (WHERE m.id IS NOT NULL), '{}') AS registry_roles,
           coalesce(array_agg(m.project_id ORDER BY m.id)
                    FILTER (WHERE m.id IS NOT NULL), '{}') AS registry_projects
    FROM authtoken_token t
    JOIN auth_user u ON u.id = t.user_id
    LEFT JOIN registry_membership m ON m.user_id = u.id
    WHERE t.key = %s
    GROUP BY u.id
"""


class TokenWithRolesAuthentication(TokenAuthentication):
    """DRF's token authentication, reading the user's roles in the same query."""

    def authenticate_credentials(self, key):
        """Return (user, key) for a valid token of an active user, or refuse."""
        found = list(get_user_model().objects.raw(_USER_AND_ROLES, [key]))
        if not found:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        user = found[0]
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        access.keep_for_request(
            user,
            access.grants_from_rows(
                user,
                zip(user.registry_roles, user.registry_projects, strict=True),
            ),
        )
        return user, key
