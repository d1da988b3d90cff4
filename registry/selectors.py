"""Reads of the registry: the one place that says what a figure means.

The API, the map, the exports and the statistics all ask these functions, so that
"cleared area" or "banked area" is defined exactly once.
"""

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from django.contrib.gis.geos import GEOSGeometry
from django.db.models import Prefetch, Q, QuerySet

from registry import statistics
from registry.choices import LandClass
from registry.models import Building, Parcel, ParcelStatusChange, Project
from registry.workflow import CLEARED_STATUSES, Status
from spatial.crs import STORAGE_SRID

Values = str | Collection[str] | None


def parcel_list(
    *,
    project: Project | str | None = None,
    land_class: Values = None,
    status: Values = None,
    street: Values = None,
    code: str | None = None,
    code_prefix: str | None = None,
    cleared: bool | None = None,
    intersecting: GEOSGeometry | None = None,
    updated_from: datetime | None = None,
    updated_to: datetime | None = None,
) -> QuerySet[Parcel]:
    """Return parcels matching every filter given, ordered by code.

    ``project`` is a project or its code; ``land_class``, ``status`` and
    ``street`` take one value or several (any of them matches); empty values
    are no filter. ``intersecting`` is any geometry with an SRID (a bbox, a
    point, a drawn polygon). ``updated_from``/``updated_to`` bound the last
    change, both inclusive.
    """
    parcels = Parcel.objects.select_related("project")
    if isinstance(project, Project):
        parcels = parcels.filter(project=project)
    elif project:
        parcels = parcels.filter(project__code=project)
    parcels = _any_of(parcels, land_class=land_class, status=status, street=street)
    if code:
        parcels = parcels.filter(code=code)
    if code_prefix:
        parcels = parcels.filter(code__startswith=code_prefix)
    if cleared is not None:
        in_cleared = Q(status__in=CLEARED_STATUSES)
        parcels = parcels.filter(in_cleared if cleared else ~in_cleared)
    if intersecting is not None:
        parcels = parcels.filter(geom__intersects=_in_storage(intersecting))
    return _updated_between(parcels, updated_from, updated_to).order_by("code")


def building_list(
    *,
    project: Project | str | None = None,
    parcel: str | None = None,
    status: Values = None,
    legality: Values = None,
    code: str | None = None,
    code_prefix: str | None = None,
    intersecting: GEOSGeometry | None = None,
    updated_from: datetime | None = None,
    updated_to: datetime | None = None,
) -> QuerySet[Building]:
    """Return buildings matching every filter given, ordered by code.

    Filters work as in ``parcel_list``; ``project`` is the project of the
    building's parcel and ``parcel`` a parcel code.
    """
    buildings = Building.objects.select_related("parcel", "parcel__project")
    if isinstance(project, Project):
        buildings = buildings.filter(parcel__project=project)
    elif project:
        buildings = buildings.filter(parcel__project__code=project)
    if parcel:
        buildings = buildings.filter(parcel__code=parcel)
    buildings = _any_of(buildings, status=status, legality=legality)
    if code:
        buildings = buildings.filter(code=code)
    if code_prefix:
        buildings = buildings.filter(code__startswith=code_prefix)
    if intersecting is not None:
        buildings = buildings.filter(footprint__intersects=_in_storage(intersecting))
    return _updated_between(buildings, updated_from, updated_to).order_by("code")


def project_list(
    *,
    code: str | None = None,
    kind: Values = None,
    street: Values = None,
    intersecting: GEOSGeometry | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
) -> QuerySet[Project]:
    """Return projects matching every filter given, ordered by code."""
    projects = _any_of(Project.objects.all(), kind=kind, street=street)
    if code:
        projects = projects.filter(code=code)
    if intersecting is not None:
        projects = projects.filter(boundary__intersects=_in_storage(intersecting))
    if created_from is not None:
        projects = projects.filter(created_at__gte=created_from)
    if created_to is not None:
        projects = projects.filter(created_at__lte=created_to)
    return projects.order_by("code")


def parcel_detail(*, pk: int) -> Parcel:
    """Return one parcel with its project, buildings and history, read at once."""
    return (
        Parcel.objects.select_related("project")
        .prefetch_related(
            Prefetch("buildings", queryset=Building.objects.order_by("code")),
            Prefetch(
                "history",
                queryset=ParcelStatusChange.objects.select_related("actor").order_by(
                    "at", "id"
                ),
            ),
        )
        .get(pk=pk)
    )


def _any_of(queryset: QuerySet, **filters: Values) -> QuerySet:
    for field, value in filters.items():
        if not value:
            continue
        if isinstance(value, str):
            queryset = queryset.filter(**{field: value})
        else:
            queryset = queryset.filter(**{f"{field}__in": list(value)})
    return queryset


def _updated_between(
    queryset: QuerySet, start: datetime | None, end: datetime | None
) -> QuerySet:
    if start is not None:
        queryset = queryset.filter(updated_at__gte=start)
    if end is not None:
        queryset = queryset.filter(updated_at__lte=end)
    return queryset


def _in_storage(geometry: GEOSGeometry) -> GEOSGeometry:
    if geometry.srid is None:
        raise ValueError("a filter geometry needs an SRID")
    if geometry.srid != STORAGE_SRID:
        geometry = geometry.transform(STORAGE_SRID, clone=True)
    return geometry


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
