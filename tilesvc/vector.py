"""Mapbox Vector Tiles of parcels, buildings and project outlines, built in SQL.

One statement per tile: ``ST_TileEnvelope`` gives the tile in EPSG:3857; the same
envelope, grown by the tile buffer and carried to EPSG:4547, is what the ``&&``
test uses, so the GiST index on the stored geometry answers it directly (a test
on a transformed column could use no index). ``ST_AsMVTGeom`` clips and snaps to
the 4096-unit grid, ``ST_AsMVT`` encodes (MVT 2.1).

Tiles stay small at every zoom by two rules that follow from what can be seen:
geometry is simplified in metres to a quarter of a tile unit before it is carried
to Web Mercator, and below ``full_detail_zoom`` features smaller than 3 × 3 screen
pixels are left out (a 100 m² shed is a speck at z14; zoom in and it is there).
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import morecantile
from django.db import connection

from registry.choices import BuildingStatus, LandClass
from registry.workflow import CLEARED_STATUSES, Status

TMS = morecantile.tms.get("WebMercatorQuad")
EXTENT = 4096
BUFFER = 64
SCREEN_PIXELS = 256  # a tile drawn at its nominal size
SPECK_PIXELS = 3
# Guangming lies at about 22.75° N; Web Mercator metres there are cos(lat) of
# ground metres. Used only to turn screen pixels into ground sizes.
GROUND_SCALE = math.cos(math.radians(22.75))


@dataclass(frozen=True)
class Filter:
    """A tile filter: the SQL column it tests, and its values if they are coded."""

    column: str
    values: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Layer:
    """One vector-tile layer: what it selects, from which zoom, with what fields."""

    id: str
    minzoom: int
    maxzoom: int
    full_detail_zoom: int
    fields: dict[str, str]
    """Attribute → TileJSON type ("String", "Number", "Boolean")."""
    select: str
    """SQL of the features: columns of ``fields``, ``geom`` (4547), ``fid``."""
    geometry: str
    area: str
    """SQL of each feature's ground area in m², for the speck rule."""
    filters: dict[str, "Filter"] = field(default_factory=dict)
    """Query parameter → what it filters (values are lists)."""
    description: str = ""


_CLEARED = ", ".join(f"'{s}'" for s in sorted(CLEARED_STATUSES))

PARCELS = Layer(
    id="parcels",
    minzoom=12,
    maxzoom=18,
    full_detail_zoom=17,
    fields={
        "code": "String",
        "project": "String",
        "land_class": "String",
        "status": "String",
        "cleared": "Boolean",
        "area_m2": "Number",
    },
    select=f"""
        SELECT p.id AS fid, p.code, pr.code AS project, p.land_class, p.status,
               p.status IN ({_CLEARED}) AS cleared,
               round(p.area_m2)::integer AS area_m2, {{geom}} AS geom
        FROM registry_parcel p LEFT JOIN registry_project pr ON pr.id = p.project_id
    """,  # noqa: S608  (constants of this module)
    geometry="p.geom",
    area="p.area_m2",
    filters={
        "project": Filter("pr.code"),
        "status": Filter("p.status", tuple(Status.values)),
        "land_class": Filter("p.land_class", tuple(LandClass.values)),
    },
    description="Parcels: land class, workflow status, cleared or not.",
)

BUILDINGS = Layer(
    id="buildings",
    minzoom=15,
    maxzoom=18,
    full_detail_zoom=16,
    fields={
        "code": "String",
        "parcel": "String",
        "project": "String",
        "status": "String",
        "legality": "String",
        "floors": "Number",
    },
    select="""
        SELECT b.id AS fid, b.code, pa.code AS parcel, pr.code AS project,
               b.status, b.legality, b.floors, {geom} AS geom
        FROM registry_building b
        JOIN registry_parcel pa ON pa.id = b.parcel_id
        LEFT JOIN registry_project pr ON pr.id = pa.project_id
    """,
    geometry="b.footprint",
    area="ST_Area(b.footprint)",
    filters={
        "project": Filter("pr.code"),
        "status": Filter("b.status", tuple(BuildingStatus.values)),
    },
    description="Building footprints: signing, vacating, demolition.",
)

PROJECTS = Layer(
    id="projects",
    minzoom=8,
    maxzoom=18,
    full_detail_zoom=8,
    fields={"code": "String", "name": "String", "kind": "String"},
    select="""
        SELECT pr.id AS fid, pr.code, pr.name_zh AS name, pr.kind, {geom} AS geom
        FROM registry_project pr
    """,
    geometry="pr.boundary",
    area="ST_Area(pr.boundary)",
    filters={"project": Filter("pr.code")},
    description="Consolidation project boundaries.",
)

LAYERS = {layer.id: layer for layer in (PARCELS, BUILDINGS, PROJECTS)}


def ground_pixel_m(z: int) -> float:
    """Return the ground size of one screen pixel at zoom ``z`` in Guangming."""
    tile = TMS.xy_bounds(morecantile.Tile(0, 0, z))
    return (tile.right - tile.left) / SCREEN_PIXELS * GROUND_SCALE


def tile_sql(
    layer: Layer, z: int, x: int, y: int, filters: dict[str, Sequence[str]]
) -> tuple[str, list]:
    """Return the one SQL statement (and its parameters) that builds the tile."""
    tile_unit_m = ground_pixel_m(z) * SCREEN_PIXELS / EXTENT
    geom = (
        f"ST_AsMVTGeom(ST_Transform(ST_Simplify({layer.geometry}, %s, true), 3857),"
        f" env.tile, {EXTENT}, {BUFFER}, true)"
    )
    where = [f"{layer.geometry} && env.query"]
    params: list = [tile_unit_m / 4]
    if z < layer.full_detail_zoom:
        where.append(f"{layer.area} >= %s")
        params.append((SPECK_PIXELS * ground_pixel_m(z)) ** 2)
    for name, values in sorted(filters.items()):
        where.append(f"{layer.filters[name].column} = ANY(%s)")
        params.append(list(values))
    sql = f"""
        WITH tile_envelope AS (
            SELECT ST_TileEnvelope(%s, %s, %s) AS tile,
                   ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => %s), 4547)
                       AS query
        ), features AS (
            {_cross_join(layer.select.format(geom=geom))}
            WHERE {" AND ".join(where)}
        )
        SELECT ST_AsMVT(features, %s, {EXTENT}, 'geom', 'fid') FROM features
    """  # noqa: S608  (constants of this module; values are parameters)
    # No ``WHERE geom IS NOT NULL`` on a feature clipped away: ST_AsMVT skips
    # rows whose geometry is NULL, and since PostgreSQL inlines the CTE such a
    # filter would run the clip (simplify, transform, ST_AsMVTGeom) twice per
    # feature — measured on the x100 demo: z15 tiles 62 → 36 ms.
    margin = BUFFER / EXTENT
    return sql, [z, x, y, z, x, y, margin, *params, layer.id]


def _cross_join(select: str) -> str:
    """Return the select with the tile envelope joined before its first table.

    The envelope is one row of constants (both functions are immutable), so the
    planner folds it into the index condition.
    """
    head, tail = select.split("FROM", 1)
    return f"{head} FROM tile_envelope env CROSS JOIN {tail.strip()}"


def render(
    layer: Layer, z: int, x: int, y: int, filters: dict[str, Sequence[str]]
) -> bytes:
    """Return the tile as MVT bytes (empty bytes for an empty tile)."""
    sql, params = tile_sql(layer, z, x, y, filters)
    # One round trip; the connection runs without parallel workers, which cost
    # a small index-driven read more than they save (config/settings.py).
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        (data,) = cursor.fetchone()
    return bytes(data or b"")


def gated_tile_sql(
    gate: tuple[str, Sequence, str],
    stamp: tuple[str, Sequence],
    layer: Layer,
    z: int,
    x: int,
    y: int,
    filters: dict[str, Sequence[str]],
) -> tuple[str, list]:
    """Return the tile's statement behind a check: (verdict, stamp, tile) in a row.

    ``gate`` is (SQL selecting one row with a ``verdict`` column, its
    parameters, the verdict that lets the tile be drawn); ``stamp`` is (SQL
    selecting one row with the tile's current ``stamp``, its parameters), read
    in the same snapshot as the tile. The tile is a scalar subquery PostgreSQL
    evaluates only for a passing verdict (NULL otherwise); the check is
    materialised so that it runs once, not once per mention.
    """
    check, check_params, passing = gate
    stamp_sql, stamp_params = stamp
    sql, params = tile_sql(layer, z, x, y, filters)
    gated = f"""
        WITH caller AS MATERIALIZED ({check})
        SELECT caller.verdict, now.stamp,
               CASE WHEN caller.verdict = %s THEN ({sql}) END
        FROM caller, ({stamp_sql}) now
    """  # noqa: S608  (the callers' constant SQL; values are parameters)
    return gated, [*check_params, passing, *params, *stamp_params]


def render_gated(
    gate: tuple[str, Sequence, str],
    stamp: tuple[str, Sequence],
    layer: Layer,
    z: int,
    x: int,
    y: int,
    filters: dict[str, Sequence[str]],
) -> tuple[str, str | None, bytes]:
    """Return the verdict, the tile's current stamp and, if it passed, the tile.

    See ``gated_tile_sql``; the tile is empty bytes for an empty tile or a
    refused caller (whom the verdict refuses).
    """
    sql, params = gated_tile_sql(gate, stamp, layer, z, x, y, filters)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        verdict, current, data = cursor.fetchone()
    return verdict, current, bytes(data or b"")
