"""Template filters that print areas and shares the way the statistics do."""

from django import template

register = template.Library()


@register.filter
def km2(area_m2: float | None) -> str:
    """Format square metres as square kilometres with three decimals."""
    return "—" if area_m2 is None else f"{area_m2 / 1e6:,.3f}"


@register.filter
def percent(share: float | None) -> str:
    """Format a fraction as a percentage with one decimal."""
    return "—" if share is None else f"{share * 100:.1f}%"
