"""Pages of the registry; thin: check access, ask a selector, render."""

from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.http import require_safe

from registry import access, selectors


@require_safe
def home(request):
    """List every project with its cleared, uncleared and banked land."""
    if not access.can_read_registry(request.user):
        raise PermissionDenied
    return render(
        request,
        "registry/home.html",
        {
            "overview": selectors.project_overview(),
            "roles": access.roles_of(request.user),
        },
    )
