"""Login throttling with django-axes: who is locked out, what they read, who unlocks.

After ``AXES_FAILURE_LIMIT`` wrong passwords for one user name from one address,
that user name is refused from that address for ``AXES_COOLOFF_TIME``, even with
the right password; the page says so in Chinese and English. Other users, and
the same user elsewhere, are not held up, so a guessing attacker cannot lock a
whole office out. A registry administrator lifts a lockout in the admin
(*Access attempts*: delete the row) or with ``manage.py axes_reset_username``.

The address is the one the audit trail records (``registry.audit_origin``):
``REMOTE_ADDR``, or the client named by a trusted proxy, so one rule decides
where a request comes from.
"""

from axes.admin import AccessAttemptAdmin, AccessLogAdmin
from axes.backends import AxesStandaloneBackend
from axes.models import AccessAttempt, AccessLog
from django.conf import settings
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from registry.admin import RegistryAdminOnly
from registry.audit_origin import client_address
from registry.errors import RegistryError


class LoginLockedOut(RegistryError):
    """Too many wrong passwords for one user name from one address."""

    status = 429


class LoginThrottleBackend(AxesStandaloneBackend):
    """Refuse a locked-out user name; pass over callers without a request.

    ``authenticate()`` called without a request (a command, a script checking a
    password) has no address to throttle by; django-axes would raise, this
    lets the next backend answer.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        """Refuse a locked-out login, or let the model backend decide."""
        if request is None:
            return None
        return super().authenticate(
            request, username=username, password=password, **kwargs
        )


def client_ip(request) -> str | None:
    """Return the address a login attempt is counted against."""
    return client_address(request.META)


def locked_out(request, original_response=None, credentials=None):
    """Answer a locked-out login with the reason, in both languages (429)."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    error = LoginLockedOut(
        _(
            "Too many wrong passwords for this user name: logging in from here is "
            "locked for %(minutes)s minutes. Ask a registry administrator to "
            "unlock it sooner."
        ),
        minutes=minutes,
    )
    return render(
        request,
        "registration/locked_out.html",
        {"error": error},
        status=error.status,
    )


class _AttemptAdmin(RegistryAdminOnly, AccessAttemptAdmin):
    """Failed logins counted towards a lockout; deleting one unlocks."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class _LogAdmin(RegistryAdminOnly, AccessLogAdmin):
    """Successful logins, read-only."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def register(site) -> None:
    """Show lockouts (to lift them) and the login log on the registry's admin."""
    site.register(AccessAttempt, _AttemptAdmin)
    site.register(AccessLog, _LogAdmin)
