"""Reads of the registry: the one place that says what a figure means.

The API, the map, the exports and the statistics all ask these functions, so that
"cleared area" or "banked area" is defined exactly once.
"""

from dataclasses import dataclass

from django.contrib.gis.geos import Polygon
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from registry.choices import LandClass
from registry.models import Parcel, Project
from registry.workflow import CLEARED_STATUSES, Status
from spatial.crs import STORAGE_SRID

CLEARED = Q(status__in=[s.value for s in CLEARED_STATUSES])
BANKED = Q(status=Status.BANKED)


def parcel_list(
    *,
    project: Project | None = None,
    land_class: str | None = None,
    status: str | None = None,
    bbox: Polygon | None = None,
) -> QuerySet[Parcel]:
    """Return parcels matching every filter given, ordered by code."""
    parcels = Parcel.objects.select_related("project")
    if project is not None:
        parcels = parcels.filter(project=project)
    if land_class:
        parcels = parcels.filter(land_class=land_class)
    if status:
        parcels = parcels.filter(status=status)
    if bbox is not None:
        if bbox.srid != STORAGE_SRID:
            bbox = bbox.transform(STORAGE_SRID, clone=True)
        parcels = parcels.filter(geom__intersects=bbox)
    return parcels.order_by("code")


@dataclass(frozen=True)
class AreaSummary:
    """Cleared, uncleared and banked land of one project and land class (or all)."""

    parcels: int
    area_m2: float
    cleared_m2: float
    uncleared_m2: float
    banked_m2: float

    @property
    def cleared_share(self) -> float:
        """Return the cleared fraction of the area, 0 when there is no land."""
        return self.cleared_m2 / self.area_m2 if self.area_m2 else 0.0


_AREA_AGGREGATES = {
    "parcels": Count("pk"),
    "area_m2": Coalesce(Sum("area_m2"), 0.0),
    "cleared_m2": Coalesce(Sum("area_m2", filter=CLEARED), 0.0),
    "uncleared_m2": Coalesce(Sum("area_m2", filter=~CLEARED), 0.0),
    "banked_m2": Coalesce(Sum("area_m2", filter=BANKED), 0.0),
}


def project_area_summary(
    *, projects: QuerySet[Project] | None = None
) -> dict[int | None, dict[str | None, AreaSummary]]:
    """Return area figures per project id and land class, in one query.

    Each project maps land-class codes to their summary, plus ``None`` for the
    project's total; parcels outside any project are under project ``None``.
    """
    parcels = Parcel.objects.all()
    if projects is not None:
        parcels = parcels.filter(project__in=projects)
    # Aggregates get a prefix: "area_m2" is also the name of the summed column.
    rows = (
        parcels.values("project_id", "land_class")
        .order_by()
        .annotate(**{f"sum_{name}": agg for name, agg in _AREA_AGGREGATES.items()})
    )
    summary: dict[int | None, dict[str | None, AreaSummary]] = {}
    for row in rows:
        by_class = summary.setdefault(row["project_id"], {})
        by_class[row["land_class"]] = AreaSummary(
            **{name: row[f"sum_{name}"] for name in _AREA_AGGREGATES}
        )
    for by_class in summary.values():
        by_class[None] = AreaSummary(
            **{
                field: sum(getattr(s, field) for s in by_class.values())
                for field in AreaSummary.__dataclass_fields__
            }
        )
    return summary


def project_overview() -> list[tuple[Project, AreaSummary, dict[str, AreaSummary]]]:
    """Return every project with its totals and its per-land-class figures."""
    summary = project_area_summary()
    empty = AreaSummary(0, 0.0, 0.0, 0.0, 0.0)
    overview = []
    for project in Project.objects.order_by("code"):
        by_class = summary.get(project.pk, {})
        overview.append(
            (
                project,
                by_class.get(None, empty),
                {lc: by_class.get(lc, empty) for lc in LandClass.values},
            )
        )
    return overview


def synthetic_data_present() -> bool:
    """Return whether any synthetic demo data is in the registry."""
    return Project.objects.filter(synthetic=True).exists() or (
        Parcel.objects.filter(synthetic=True).exists()
    )
