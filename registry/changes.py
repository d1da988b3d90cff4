"""Where the map changed: announced after each committed write, for the tile cache.

The registry does not know about tiles (data flows one way, from the registry to
``tilesvc``). Each writer says *where* it changed parcels, buildings or projects,
as lon/lat boxes computed inside its own transaction (so a re-survey can name
the old geometry as well as the new); the boxes are sent once the transaction
commits, and never if it rolls back. Whoever caches drawings of the registry
listens to ``map_changed``.

Boxes are grouped on a 250 m grid: one box per grid cell holding changes, so an
import of 100,000 parcels announces a few hundred boxes, not 100,000, and a single
status change announces exactly its parcel's box.
"""

from django.db import connection, transaction
from django.dispatch import Signal

from spatial.crs import STORAGE_SRID

# Sent with ``layer`` ("parcels", "buildings", "projects") and ``boxes``: a list
# of (west, south, east, north) in EPSG:4326; ``boxes=None`` means everywhere.
map_changed = Signal()

GRID_M = 250.0
# The grid boxes are carried to lon/lat by their corners; a margin of 1 m
# covers the curvature of their edges many times over.
MARGIN_M = 1.0

_BOXES_SQL = f"""
    SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)
    FROM (
        SELECT ST_Transform(
                   ST_Expand(ST_SetSRID(ST_Extent(g)::geometry, {STORAGE_SRID}),
                             {MARGIN_M}),
                   4326)::box2d AS b
        FROM ({{source}}) changed
        WHERE g IS NOT NULL
        GROUP BY floor(ST_XMin(g) / {GRID_M}), floor(ST_YMin(g) / {GRID_M})
    ) cells
"""  # noqa: S608  (constants of this module; the source is the callers' fixed SQL)


def announce(layer: str, source_sql: str, params=None) -> None:
    """Announce, on commit, the places of the geometries ``source_sql`` selects.

    ``source_sql`` selects one geometry column named ``g`` (EPSG:4547); it is
    read now, inside the caller's transaction.
    """
    with connection.cursor() as cursor:
        cursor.execute(_BOXES_SQL.format(source=source_sql), params)
        boxes = [tuple(row) for row in cursor.fetchall()]
    if boxes:
        _on_commit(layer, boxes)


def announce_parcels(ids) -> None:
    """Announce, on commit, the places of these parcels as they are now."""
    announce(
        "parcels",
        "SELECT geom AS g FROM registry_parcel WHERE id = ANY(%s)",
        [list(ids)],
    )


def announce_buildings(ids) -> None:
    """Announce, on commit, the places of these buildings as they are now."""
    announce(
        "buildings",
        "SELECT footprint AS g FROM registry_building WHERE id = ANY(%s)",
        [list(ids)],
    )


def announce_buildings_on(parcel_ids) -> None:
    """Announce, on commit, the buildings standing on these parcels.

    Building tiles carry their parcel's and project's codes, so a parcel that is
    renamed or moved to another project redraws its buildings too.
    """
    announce(
        "buildings",
        "SELECT footprint AS g FROM registry_building WHERE parcel_id = ANY(%s)",
        [list(parcel_ids)],
    )


def announce_project_land(ids) -> None:
    """Announce, on commit, the parcels and buildings of these projects."""
    ids = list(ids)
    announce(
        "parcels",
        "SELECT geom AS g FROM registry_parcel WHERE project_id = ANY(%s)",
        [ids],
    )
    announce(
        "buildings",
        "SELECT b.footprint AS g FROM registry_building b JOIN registry_parcel p"
        " ON p.id = b.parcel_id WHERE p.project_id = ANY(%s)",
        [ids],
    )


def announce_projects(ids) -> None:
    """Announce, on commit, the places of these project boundaries as they are now."""
    announce(
        "projects",
        "SELECT boundary AS g FROM registry_project WHERE id = ANY(%s)",
        [list(ids)],
    )


def announce_everything() -> None:
    """Announce, on commit, that everything may have changed (a demo reload)."""
    for layer in ("parcels", "buildings", "projects"):
        _on_commit(layer, None)


def _on_commit(layer: str, boxes) -> None:
    transaction.on_commit(
        lambda: map_changed.send(sender=None, layer=layer, boxes=boxes),
        robust=True,
    )
