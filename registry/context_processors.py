"""Template context every page needs."""

from registry import access
from registry.choices import Role
from registry.selectors import synthetic_data_present


def synthetic_data(request) -> dict:
    """Tell templates whether to show the "synthetic demo data" banner."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"synthetic_data": False}
    return {"synthetic_data": synthetic_data_present()}


def navigation(request) -> dict:
    """Tell templates which sections to link to for this user."""
    user = getattr(request, "user", None)
    if not user or not user.is_authenticated:
        return {}
    grants = access.grants_of(user)
    return {
        "nav": {
            "imports": grants.is_registry_admin
            or any(Role.SURVEYOR in roles for roles in grants.projects.values()),
            "admin": grants.is_registry_admin,
            # registry.audit_views: admins, and members of a project for its own.
            "audit": grants.is_registry_admin or bool(grants.projects),
        }
    }
