"""Reads of the registry: the one place that says what a figure means.

The API, the map, the exports and the statistics all ask these functions, so that
"cleared area" or "banked area" is defined exactly once.
"""

from collections import defaultdict
from dataclasses import dataclass

from django.contrib.gis.geos import Polygon
from django.db.models import QuerySet

from registry import statistics
from registry.choices import LandClass
from registry.models import Parcel, Project
from registry.workflow import Status
from spatial.crs import STORAGE_SRID


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


def project_area_summary(
    *, projects: QuerySet[Project] | None = None
) -> dict[int | None, dict[str | None, AreaSummary]]:
    """Return area figures per project id and land class.

    Each project maps land-class codes to their summary, plus ``None`` for the
    project's total; parcels outside any project are under project ``None``
    (left out when ``projects`` is given). The figures are the statistics'
    own (``registry.statistics.area_cells``), regrouped: one query, one
    definition of cleared and banked for the pages, the API and the dashboard.
    """
    ids = dict(Project.objects.values_list("code", "pk"))
    wanted = None if projects is None else set(projects.values_list("pk", flat=True))
    totals: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for cell in statistics.area_cells():
        project_id = ids.get(cell.project)
        if wanted is not None and project_id not in wanted:
            continue
        for key in ((project_id, cell.land_class), (project_id, None)):
            total = totals[key]
            total[0] += cell.parcels
            total[1] += cell.area_m2
            total[2] += cell.area_m2 if cell.cleared else 0.0
            total[3] += cell.area_m2 if cell.status == Status.BANKED else 0.0
    summary: dict[int | None, dict[str | None, AreaSummary]] = {}
    for (project_id, land_class), (count, area, cleared, banked) in totals.items():
        summary.setdefault(project_id, {})[land_class] = AreaSummary(
            count, area, cleared, area - cleared, banked
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
