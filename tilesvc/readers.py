"""Who may read map tiles, and how a refused tile request is answered.

Tiles are read by the map pages (a session) and by GIS clients (an API token),
so both are accepted; either way the user needs a role in the registry. A
refusal is JSON that says what was wrong, in Chinese and English, with the HTTP
status that fits it.
"""

from django.http import JsonResponse
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import AuthenticationFailed

from registry import access
from registry.errors import NotLoggedIn, RegistryError
from registry.token_auth import TokenWithRolesAuthentication


def tile_reader(request):
    """Return the user reading, by session or token, or refuse."""
    user = request.user
    if not user.is_authenticated:
        try:
            found = TokenWithRolesAuthentication().authenticate(request)
        except AuthenticationFailed:
            found = None
        if found is None:
            raise NotLoggedIn(_("Log in, or send an API token, to read map tiles."))
        user = found[0]
    access.refuse_unless_reader(user)
    return user


def refusal(error: RegistryError) -> JsonResponse:
    """Return the JSON answer to a refused tile request."""
    return JsonResponse(
        error.body(), status=error.status, json_dumps_params={"ensure_ascii": False}
    )
