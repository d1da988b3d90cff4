"""Pages of GeoJSON features built in PostGIS, paged by keyset.

The query APIs (REST and OGC API – Features) ask the selectors which rows match,
then hand the queryset here: one SQL statement orders it, cuts the page, and
writes every feature with ``ST_AsGeoJSON``, so Python never touches a geometry.
Output follows RFC 7946 in CRS84 (longitude/latitude, exterior rings
counter-clockwise, 7 decimals ≈ 1 cm); other CRSs keep their authority axis order
(OGC API – Features Part 2), with 3 decimals (1 mm) in metres.

Pages are cut by keyset, never OFFSET: the cursor holds the ordering value and
the id of the last feature, so page 1,000 costs what page 1 costs and a parcel
changed between two pages is neither skipped nor repeated by a shift of rows.
"""

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext_lazy as _
from django.utils.translation import override
from psycopg.adapt import Loader

from registry.choices import BuildingStatus, LandClass, Legality, OwnerGroup, Street
from registry.errors import RegistryError
from registry.selectors import project_area_summary
from registry.workflow import CLEARED_STATUSES, Status
from spatial.api_crs import CRS84, ApiCrs


class BadCursor(RegistryError):
    """A page cursor that this server did not write, or for another ordering."""

    parameter = "cursor"  # named in the API's refusal


@dataclass(frozen=True)
class Ordering:
    """A keyset ordering: one column (plus the id as tie-break), up or down."""

    field: str
    descending: bool = False

    @classmethod
    def parse(cls, text: str) -> "Ordering":
        """Return the ordering named ``field`` or ``-field``."""
        return cls(text.removeprefix("-"), text.startswith("-"))

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.field

    def sql(self, alias: str) -> str:
        """Return the ORDER BY list for a table alias."""
        direction = " DESC" if self.descending else ""
        if self.field == "id":
            return f"{alias}.id{direction}"
        return f"{alias}.{self.field}{direction}, {alias}.id{direction}"


BY_ID = Ordering("id")
MAX_CURSOR = 512


@dataclass(frozen=True)
class Page:
    """One page: the features as UTF-8 JSON (comma-separated), the next cursor.

    Bytes, not text: the features go from PostgreSQL to the response as they
    came, never decoded and encoded again (a page can be megabytes).
    """

    features: bytes
    returned: int
    next_cursor: str | None

    def collection(self, members: dict) -> bytes:
        """Return a FeatureCollection of the features, with other ``members``."""
        envelope = json.dumps(
            {"type": "FeatureCollection", **members}, ensure_ascii=False
        ).encode()
        return b"".join((envelope[:-1], b',"features":[', self.features, b"]}"))


class _Utf8(Loader):
    """Load text columns as their UTF-8 bytes (the database speaks UTF-8)."""

    def load(self, data) -> bytes:
        return bytes(data)


def _labels(column: str, choices) -> str:
    """Return a SQL CASE giving the Chinese label of a coded column.

    Labels are written in Chinese whatever the request's language: a GIS client
    keeps the attribute table, and its column should not change meaning with
    the language of whoever fetched it.
    """
    with override("zh-hans"):
        cases = " ".join(
            f"WHEN '{value}' THEN '{str(label).replace(chr(39), chr(39) * 2)}'"
            for value, label in choices
        )
    return f"CASE {column} {cases} END"


def _geometry(column: str, crs: ApiCrs) -> str:
    geometry = f"ST_Transform({column}, {crs.srid})"
    if crs.srid == CRS84.srid:
        # RFC 7946 §3.1.6: exterior rings counter-clockwise, holes clockwise.
        geometry = f"ST_ForcePolygonCCW({geometry})"
    if crs.swapped:
        geometry = f"ST_FlipCoordinates({geometry})"
    # Options 0: no "crs" member (RFC 7946 dropped it; OGC API Part 2 names the
    # CRS in the Content-Crs header instead) and no bbox.
    return f"ST_AsGeoJSON({geometry}, {crs.decimals}, 0)::json"


def parcel_feature_sql(crs: ApiCrs) -> str:
    """Return the SQL expression of one parcel feature (aliases p, pr)."""
    cleared = ", ".join(f"'{s}'" for s in sorted(CLEARED_STATUSES))
    return f"""json_build_object(
        'type', 'Feature', 'id', p.id,
        'geometry', {_geometry("p.geom", crs)},
        'properties', json_build_object(
            'code', p.code,
            'project', pr.code,
            'project_name', pr.name_zh,
            'land_class', p.land_class,
            'land_class_name', {_labels("p.land_class", LandClass.choices)},
            'status', p.status,
            'status_name', {_labels("p.status", Status.choices)},
            'cleared', p.status IN ({cleared}),
            'street', nullif(p.street, ''),
            'street_name', {_labels("p.street", Street.choices)},
            'area_m2', round(p.area_m2::numeric, 2),
            'declared_area_m2', p.declared_area_m2,
            'banked_on', p.banked_on,
            'bank_ref', nullif(p.bank_ref, ''),
            -- Milliseconds: GDAL/pyogrio fail on fractions rounding up to 1 s.
            'updated_at', date_trunc('milliseconds', p.updated_at)))"""


def building_feature_sql(crs: ApiCrs, *, owners: list[int] | None) -> str:
    """Return the SQL expression of one building feature (aliases b, pa, pr).

    ``owner_group`` is personal data: it is filled only for buildings in the
    projects ``owners`` lists (ids), or in every project when ``owners`` is None.
    """
    if owners is None:
        visible = "TRUE"
    else:
        ids = ",".join(str(int(pk)) for pk in owners)
        visible = f"pa.project_id = ANY(ARRAY[{ids}]::bigint[])"
    return f"""json_build_object(
        'type', 'Feature', 'id', b.id,
        'geometry', {_geometry("b.footprint", crs)},
        'properties', json_build_object(
            'code', b.code,
            'parcel', pa.code,
            'project', pr.code,
            'floors', b.floors,
            'floor_area_m2', b.floor_area_m2,
            'legality', b.legality,
            'legality_name', {_labels("b.legality", Legality.choices)},
            'status', b.status,
            'status_name', {_labels("b.status", BuildingStatus.choices)},
            'owner_group', CASE WHEN {visible} THEN b.owner_group END,
            'owner_group_name', CASE WHEN {visible}
                THEN {_labels("b.owner_group", OwnerGroup.choices)} END,
            'updated_at', date_trunc('milliseconds', b.updated_at)))"""


@dataclass(frozen=True)
class Source:
    """Where a feature expression reads: the page's rows, and what they join."""

    alias: str
    columns: tuple[str, ...]
    """Columns the page's rows carry into the feature expression."""
    joins: str


PARCEL_FROM = Source(
    "p",
    (
        "id", "code", "project_id", "land_class", "status", "street", "geom",
        "area_m2", "declared_area_m2", "banked_on", "bank_ref", "updated_at",
    ),
    "LEFT JOIN registry_project pr ON pr.id = p.project_id",
)  # fmt: skip
BUILDING_FROM = Source(
    "b",
    (
        "id", "code", "parcel_id", "footprint", "floors", "floor_area_m2",
        "legality", "owner_group", "status", "updated_at",
    ),
    "JOIN registry_parcel pa ON pa.id = b.parcel_id"
    " LEFT JOIN registry_project pr ON pr.id = pa.project_id",
)  # fmt: skip


def page_of(
    queryset: QuerySet,
    *,
    feature_sql: str,
    source: Source,
    ordering: Ordering = BY_ID,
    limit: int,
    cursor: str | None = None,
) -> Page:
    """Return one page of ``queryset`` as GeoJSON features, and the next cursor.

    ``feature_sql`` is one of the ``*_feature_sql`` expressions, ``source`` the
    matching ``Source``. The queryset's own ordering is replaced by
    ``ordering``.
    """
    limit = int(limit)
    after = decode_cursor(cursor, ordering) if cursor else None
    rows = queryset.order_by(*_orm_ordering(ordering))
    if after is not None:
        rows = rows.filter(_after(ordering, after))
    page = rows.values(*source.columns)[: limit + 1]
    rows_sql, rows_params = page.query.sql_with_params()
    alias = source.alias
    value = "NULL" if ordering.field == "id" else f"{alias}.{ordering.field}"
    # One statement: the page's rows (with the filters, keyset and LIMIT the ORM
    # wrote, read once from the index scan), then every feature as text, joined
    # in order, plus the key of the last one. The extra row (limit + 1) only
    # says whether there is a next page.
    sql = f"""
        WITH page AS (
            SELECT {alias}.id, {value} AS k,
                   row_number() OVER (ORDER BY {ordering.sql(alias)}) AS n,
                   ({feature_sql})::text AS f
            FROM ({rows_sql}) {alias} {source.joins}
        )
        SELECT string_agg(f, ',' ORDER BY n) FILTER (WHERE n <= {limit:d}),
               count(*),
               (array_agg(id ORDER BY n) FILTER (WHERE n = {limit:d}))[1],
               (array_agg(k ORDER BY n) FILTER (WHERE n = {limit:d}))[1]
        FROM page
    """  # noqa: S608  (fixed SQL of this module; the ORM's values are parameters)
    # One round trip, no transaction of its own; the connection runs without
    # parallel workers (config/settings.py says why).
    with connection.cursor() as db:
        db.cursor.adapters.register_loader("text", _Utf8)
        db.execute(sql, rows_params)
        features, matched, last_id, last_value = db.fetchone()
    if isinstance(last_value, bytes):  # a text ordering column, loaded as bytes
        last_value = last_value.decode()
    more = matched > limit
    return Page(
        features=features or b"",
        returned=min(matched, limit),
        next_cursor=encode_cursor(ordering, last_value, last_id) if more else None,
    )


def _orm_ordering(ordering: Ordering) -> list[str]:
    sign = "-" if ordering.descending else ""
    if ordering.field == "id":
        return [f"{sign}pk"]
    return [f"{sign}{ordering.field}", f"{sign}pk"]


def _after(ordering: Ordering, after: tuple[Any, int]) -> Q:
    value, last_id = after
    beyond = "lt" if ordering.descending else "gt"
    if ordering.field == "id":
        return Q(**{f"pk__{beyond}": last_id})
    return Q(**{f"{ordering.field}__{beyond}": value}) | Q(
        **{ordering.field: value, f"pk__{beyond}": last_id}
    )


def encode_cursor(ordering: Ordering, value: Any, last_id: int) -> str:
    """Return an opaque cursor for the page after the feature ``last_id``."""
    if isinstance(value, datetime):
        value = value.isoformat()
    payload = json.dumps([str(ordering), value, last_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, ordering: Ordering) -> tuple[Any, int]:
    """Return (ordering value, id) from a cursor, or refuse it."""
    try:
        # The cursors written here hold a code or a time and an id: a few dozen
        # characters. A longer one was not written here, and is not decoded.
        if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR:
            raise TypeError(cursor)
        padded = cursor + "=" * (-len(cursor) % 4)
        name, value, last_id = json.loads(base64.urlsafe_b64decode(padded))
        # Ids are bigint: a cursor beyond them is no cursor this server wrote.
        if name != str(ordering) or not isinstance(last_id, int):
            raise ValueError(name)
        if not 0 <= last_id < 2**63:
            raise ValueError(last_id)
        if ordering.field == "code" and (not isinstance(value, str) or "\x00" in value):
            raise TypeError(value)
        if ordering.field == "area_m2" and (
            not isinstance(value, int | float) or not math.isfinite(value)
        ):
            raise TypeError(value)
        if ordering.field == "updated_at":
            value = datetime.fromisoformat(value)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as error:
        raise BadCursor(
            _(
                "The cursor %(cursor)s is not one this server wrote for the "
                "ordering %(ordering)s; follow the next link as given."
            ),
            cursor=str(cursor)[:40],
            ordering=str(ordering),
        ) from error
    return value, last_id


def project_page(
    queryset: QuerySet,
    *,
    crs: ApiCrs,
    limit: int,
    cursor: str | None = None,
) -> Page:
    """Return one page of projects as GeoJSON features, with their area figures.

    Projects are few (dozens), so their figures come straight from
    ``selectors.project_area_summary`` — the one definition of cleared,
    uncleared and banked — and are merged in Python; the boundary is still
    written by PostGIS.
    """
    after = decode_cursor(cursor, BY_ID)[1] if cursor else None
    rows = queryset.order_by("pk")
    if after is not None:
        rows = rows.filter(pk__gt=after)
    rows = list(
        rows.annotate(
            # A fixed expression of this module; no user text reaches it.
            geojson=RawSQL(_geometry("registry_project.boundary", crs) + "::text", ())  # noqa: S611
        )[: limit + 1]
    )
    summary = project_area_summary(projects=queryset)
    features = []
    for project in rows[:limit]:
        properties = _project_properties(project, summary.get(project.pk, {}))
        features.append(
            f'{{"type":"Feature","id":{project.pk:d},"geometry":{project.geojson},'
            f'"properties":{json.dumps(properties, ensure_ascii=False)}}}'
        )
    more = len(rows) > limit
    return Page(
        features=",".join(features).encode(),
        returned=len(features),
        next_cursor=encode_cursor(BY_ID, None, rows[limit - 1].pk) if more else None,
    )


def _project_properties(project, by_class: dict) -> dict:
    with override("zh-hans"):
        kind_name = str(project.get_kind_display())
        street_name = str(project.get_street_display())
    total = by_class.get(None)
    properties = {
        "code": project.code,
        "name": project.name_zh,
        "name_en": project.name_en,
        "kind": project.kind,
        "kind_name": kind_name,
        "street": project.street,
        "street_name": street_name,
        "planned_area_m2": project.planned_area_m2,
        "start_date": project.start_date.isoformat() if project.start_date else None,
        "target_date": project.target_date.isoformat() if project.target_date else None,
        "parcels": total.parcels if total else 0,
    }
    for figure in ("area_m2", "cleared_m2", "uncleared_m2", "banked_m2"):
        properties[figure] = round(getattr(total, figure), 2) if total else 0.0
        for land_class in LandClass.values:
            cell = by_class.get(land_class)
            value = round(getattr(cell, figure), 2) if cell else 0.0
            properties[f"{land_class}_{figure}"] = value
    return properties
