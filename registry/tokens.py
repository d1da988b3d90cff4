"""API tokens: each user's own page to issue, rotate and revoke theirs; the command.

A token stands for its user in scripts and GIS clients (``registry.token_auth``),
with the user's roles as they are at each request. One token per user (DRF's
``authtoken``): issuing a new one revokes the old, and a revoked token is refused
on the very next request, since every request looks its token up. The key is
shown once, in the answer to the request that made it; the page never shows an
existing key again. Creating and revoking are recorded in the audit trail
(``registry.audit``, from the token's own saves and deletes).

Only users with a role in the registry have a token: one for a user without a
role would open nothing.
"""

from django.contrib import messages
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from rest_framework.authtoken.models import Token

from registry import access


def token_issue(*, user: AbstractBaseUser) -> Token:
    """Give ``user`` a new token, revoking the one they had."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


def token_revoke(*, user: AbstractBaseUser) -> bool:
    """Revoke the user's token; return whether there was one."""
    with transaction.atomic():
        token = Token.objects.filter(user=user).first()
        if token is None:
            return False
        token.delete()
        return True


@never_cache  # the answer to "issue" carries the key: no cache may keep it
@require_http_methods(["GET", "POST"])
def token_page(request):
    """Show whether the user has a token; issue, rotate or revoke it (POST)."""
    if not access.can_read_registry(request.user):
        raise PermissionDenied
    new_key = None
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "issue":
            new_key = token_issue(user=request.user).key
        elif action == "revoke":
            if token_revoke(user=request.user):
                messages.success(
                    request, _("Your API token is revoked; it no longer works.")
                )
            return redirect("api-token")
        else:
            messages.error(request, _("Choose to issue or to revoke the token."))
            return redirect("api-token")
    token = Token.objects.filter(user=request.user).first()
    return render(
        request, "registry/api_token.html", {"token": token, "new_key": new_key}
    )
