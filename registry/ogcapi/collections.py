"""The registry's OGC API collections: parcels, buildings and projects.

Each collection says which query parameters filter it, how those become selector
arguments, and how its features are written. The views know nothing of parcels
or buildings; adding a collection is adding an entry here.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from registry import access, feature_pages, query_params, selectors
from registry.choices import BuildingStatus, LandClass, Legality, ProjectKind, Street
from registry.feature_pages import Page
from registry.workflow import Status
from spatial.api_crs import ApiCrs
from spatial.crs import STORAGE_SRID

Reader = Callable[[str], object]


Writer = Callable[[QuerySet, ApiCrs, access.Grants, int, str | None], Page]


@dataclass(frozen=True)
class Collection:
    """One feature collection as OGC API serves it."""

    id: str
    title: object  # lazy translation
    description: object
    table: str
    geometry_column: str
    time_column: str
    filters: dict[str, Reader]
    """Query parameter → reader of its text into the selector's argument."""
    select: Callable[..., QuerySet]
    """Selector called with the filters, ``intersecting``, ``start``, ``end``."""
    write: Writer

    def queryset(
        self,
        values: dict[str, object],
        *,
        intersecting=None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> QuerySet:
        """Return the selector's rows for the parsed filter values."""
        return self.select(**values, intersecting=intersecting, start=start, end=end)

    def page(
        self,
        queryset: QuerySet,
        *,
        crs: ApiCrs,
        grants: access.Grants,
        limit: int,
        cursor: str | None = None,
    ) -> Page:
        """Return one page of ``queryset`` as features in ``crs``."""
        return self.write(queryset, crs, grants, limit, cursor)

    def extent(self) -> tuple[list[float] | None, list[str | None]]:
        """Return the CRS84 bbox and the time interval of the table.

        The bbox comes from the planner's statistics (``ST_EstimatedExtent``)
        when the table has been analysed, so asking for it costs nothing at a
        million rows; a small, never-analysed table is measured exactly.
        """
        with connection.cursor() as db:
            db.execute(
                f"""
                SELECT coalesce(
                    ST_EstimatedExtent('{self.table}', '{self.geometry_column}'),
                    (SELECT ST_Extent({self.geometry_column}) FROM {self.table}))
                """  # noqa: S608  (fixed names of this module)
            )
            (box,) = db.fetchone()
            bbox = None
            if box is not None:
                db.execute(
                    "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM"
                    " (SELECT ST_Transform(ST_SetSRID(%s::box2d::geometry, %s),"
                    " 4326)::box2d AS b) t",
                    [box, STORAGE_SRID],
                )
                bbox = [round(v, 7) for v in db.fetchone()]
            column, table = self.time_column, self.table
            db.execute(f"SELECT min({column}), max({column}) FROM {table}")  # noqa: S608
            start, end = db.fetchone()
        return bbox, [
            start.isoformat() if start else None,
            end.isoformat() if end else None,
        ]


def _choices(parameter: str, choices) -> Reader:
    values = [value for value, _label in choices]
    return lambda text: query_params.choices_of(text, values, parameter=parameter)


def _text(text: str) -> str:
    return text.strip()


def _parcels(*, start, end, **filters) -> QuerySet:
    return selectors.parcel_list(**filters, updated_from=start, updated_to=end)


def _buildings(*, start, end, **filters) -> QuerySet:
    return selectors.building_list(**filters, updated_from=start, updated_to=end)


def _projects(*, start, end, **filters) -> QuerySet:
    return selectors.project_list(**filters, created_from=start, created_to=end)


def _write_parcels(queryset, crs, grants, limit, cursor) -> Page:
    return feature_pages.page_of(
        queryset,
        feature_sql=feature_pages.parcel_feature_sql(crs),
        source=feature_pages.PARCEL_FROM,
        limit=limit,
        cursor=cursor,
    )


def _write_buildings(queryset, crs, grants, limit, cursor) -> Page:
    return feature_pages.page_of(
        queryset,
        feature_sql=feature_pages.building_feature_sql(
            crs, owners=access.owner_data_projects(grants)
        ),
        source=feature_pages.BUILDING_FROM,
        limit=limit,
        cursor=cursor,
    )


def _write_projects(queryset, crs, grants, limit, cursor) -> Page:
    return feature_pages.project_page(queryset, crs=crs, limit=limit, cursor=cursor)


PARCELS = Collection(
    id="parcels",
    title=_("Parcels"),
    description=_(
        "Land parcels of the three land classes, with their workflow status "
        "(cleared or not) and project."
    ),
    table="registry_parcel",
    geometry_column="geom",
    time_column="updated_at",
    filters={
        "project": _text,
        "land_class": _choices("land_class", LandClass.choices),
        "status": _choices("status", Status.choices),
        "street": _choices("street", Street.choices),
        "code": _text,
        "cleared": lambda text: query_params.boolean_of(text, parameter="cleared"),
    },
    select=_parcels,
    write=_write_parcels,
)

BUILDINGS = Collection(
    id="buildings",
    title=_("Buildings"),
    description=_(
        "Building footprints with their legal standing and their signing, "
        "vacating and demolition status."
    ),
    table="registry_building",
    geometry_column="footprint",
    time_column="updated_at",
    filters={
        "project": _text,
        "parcel": _text,
        "status": _choices("status", BuildingStatus.choices),
        "legality": _choices("legality", Legality.choices),
        "code": _text,
    },
    select=_buildings,
    write=_write_buildings,
)

PROJECTS = Collection(
    id="projects",
    title=_("Consolidation projects"),
    description=_(
        "Land consolidation projects with their boundary and their cleared, "
        "uncleared and banked area."
    ),
    table="registry_project",
    geometry_column="boundary",
    time_column="created_at",
    filters={
        "code": _text,
        "kind": _choices("kind", ProjectKind.choices),
        "street": _choices("street", Street.choices),
    },
    select=_projects,
    write=_write_projects,
)

COLLECTIONS = {c.id: c for c in (PARCELS, BUILDINGS, PROJECTS)}
