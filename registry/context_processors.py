"""Template context every page needs."""

from registry.selectors import synthetic_data_present


def synthetic_data(request) -> dict:
    """Tell templates whether to show the "synthetic demo data" banner."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {"synthetic_data": False}
    return {"synthetic_data": synthetic_data_present()}
