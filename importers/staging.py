"""The import's staging table: every row of the file, as checked chunk by chunk.

Rows are COPYed here as they are read, so that the importer's memory does not
grow with the file; the checks between rows (duplicate codes, overlaps, codes
registered elsewhere) run as SQL over it once its indexes are built, and the
commit reads the accepted rows from it. It is a temporary table of the import's
own transaction: no other session sees it, and nothing of it outlives the import.
"""

import numpy as np
import pyarrow as pa
from django.db import DatabaseError, transaction

from registry.pgcopy import copy_table

TABLE = "import_stage"

_COMMON = """
    row integer NOT NULL,
    code text NOT NULL,
    ok boolean NOT NULL,      -- the geometry passed its checks
    keep boolean NOT NULL,    -- ok, and no error on the row: to be committed
    inside boolean NOT NULL,  -- ok, and in the service area
    geom geometry(MultiPolygon, 4547)
"""
_COLUMNS = {
    "parcels": "land_class text, declared double precision",
    "buildings": (
        "parcel_code text, floors integer, floor_area double precision, "
        "legality text, owner_group text"
    ),
}
# What the commit reads (see registry.resurvey), accepted rows only.
ACCEPTED = {
    "parcels": "(SELECT code, land_class, declared, geom FROM import_stage WHERE keep)",
    "buildings": (
        "(SELECT code, parcel_code, floors, floor_area, legality, owner_group, "
        "geom AS footprint FROM import_stage WHERE keep)"
    ),
}


def create(cursor, layer: str) -> None:
    """Create an empty staging table for a ``layer`` import."""
    _tune(cursor)
    # A check earlier in the same transaction (a test's) may have left one.
    cursor.execute("DROP TABLE IF EXISTS import_stage")
    cursor.execute(
        "CREATE TEMP TABLE import_stage (" + _COMMON + ", " + _COLUMNS[layer] + ")"
        " ON COMMIT DROP"
    )


def _tune(cursor) -> None:
    # The overlap check probes the table's GiST index once per row: with the
    # default 8 MB of temporary buffers a large file's table and index are read
    # from disk again and again (a million rows take about 300 MB). The size
    # can only be set before the session's first temporary table (a worker's
    # later imports keep the first setting); buffers are taken as needed.
    try:
        with transaction.atomic():
            cursor.execute("SET temp_buffers = '512MB'")
    except DatabaseError:
        pass
    # Compiling these statements costs more than it saves: each runs once.
    cursor.execute("SET LOCAL jit = off")


def append(cursor, columns: dict[str, pa.Array]) -> int:
    """COPY one chunk of rows, given column by column; return their number."""
    return copy_table(cursor, TABLE, pa.table(columns))


def index(cursor) -> None:
    """Index the full table for the checks between rows and the commit."""
    cursor.execute("CREATE INDEX ON import_stage USING gist (geom)")
    cursor.execute("CREATE INDEX ON import_stage (code)")
    # Not the geometry: its statistics cost more than the plans need.
    cursor.execute("ANALYZE import_stage (row, code, ok, keep)")


def reject(cursor, rows) -> None:
    """Mark ``rows`` as not to be committed."""
    cursor.execute(
        "UPDATE import_stage SET keep = false WHERE keep AND row = ANY(%s)",
        [sorted(rows)],
    )


def kept(cursor) -> int:
    """Return how many rows are to be committed."""
    cursor.execute("SELECT count(*) FROM import_stage WHERE keep")
    return cursor.fetchone()[0]


def points_inside(cursor, sample: int) -> np.ndarray:
    """Return (x, y) on every n-th row inside the service area, ``sample`` or so.

    Every n-th in the file's order, n chosen as ``crs.gcj02_hint`` would.
    """
    cursor.execute("SELECT count(*) FROM import_stage WHERE inside")
    step = max(1, cursor.fetchone()[0] // sample)
    cursor.execute(
        """
        SELECT ST_X(p), ST_Y(p) FROM (
            SELECT ST_PointOnSurface(geom) AS p FROM (
                SELECT geom, row_number() OVER (ORDER BY row) - 1 AS i
                FROM import_stage WHERE inside
            ) numbered
            WHERE i %% %s = 0
        ) sampled
        """,
        [step],
    )
    return np.array(cursor.fetchall(), dtype=float).reshape(-1, 2)


def drop(cursor) -> None:
    """Drop the table (its transaction may go on, e.g. with another check)."""
    cursor.execute("DROP TABLE IF EXISTS import_stage")
