"""The tile cache: drawn tiles kept, and redrawn only when what lies under them changes.

Each kept tile carries the *stamp* it was drawn under: its layer's epoch and the
tile's own generation. Both live in PostgreSQL (``LayerEpoch``,
``TileGeneration``), beside the data they describe: a change under a tile gives
it a new generation once the change has committed (``invalidate``), a change
everywhere gives the layer a new epoch. A request reads the current stamp in
the same round trip as it checks the caller, and in the statement that draws a
tile not kept (``vector.render_gated``): one file read and one statement, kept
or not (two when a kept tile turns out stale). A tile is never served stale:
its stamp is compared with the database's, not with a copy of it.

A late write cannot make a stale tile current either: a tile drawn from data
read just before a change carries the stamp from before, which the change has
already replaced, so the next request draws it again. The tiles themselves live
in Django's cache named ``tiles`` (a file cache under ``var/`` by default,
shared by every server process; Redis when ``TILE_CACHE_URL`` is set), which may
forget any of them at any time.
"""

import hashlib
import uuid
from collections.abc import Sequence

from django.core.cache import caches
from django.db import connection, connections

from tilesvc.vector import TMS, Layer

# A change touching more tiles than this renews the whole layer instead: one
# write instead of tens of thousands, at the price of redrawing the rest.
MAX_TILES_PER_CHANGE = 20_000
TTL_S = 30 * 24 * 3600

# The stamp a tile would be drawn under now (a function: tilesvc migration
# 0005); NULL while the layer has no epoch (an emptied database before
# ``seed_epochs``), and then nothing is kept.
STAMP_SQL = "SELECT tile_stamp(%s, %s, %s, %s) AS stamp"


def _cache():
    return caches["tiles"]


def _filters_key(filters: dict[str, Sequence[str]]) -> str:
    text = "&".join(f"{k}={','.join(sorted(v))}" for k, v in sorted(filters.items()))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def entry_key(layer: Layer, z: int, x: int, y: int, filters) -> str:
    """Return the cache key under which the tile (with its stamp) is kept."""
    return f"tile:{layer.id}:{z}:{x}:{y}:{_filters_key(filters)}"


def stamp_query(layer: Layer, z: int, x: int, y: int) -> tuple[str, list]:
    """Return SQL (and parameters) selecting the tile's current ``stamp``."""
    return STAMP_SQL, [layer.id, z, x, y]


def get(key: str) -> tuple[str, bytes] | None:
    """Return the kept (stamp, tile), or None."""
    return _cache().get(key)


def keep(key: str, stamp: str, data: bytes) -> None:
    """Keep the tile drawn under ``stamp`` (replacing any older drawing)."""
    _cache().set(key, (stamp, data), TTL_S)


def etag_of(key: str, stamp: str) -> str:
    """Return the ETag of the tile ``key`` drawn under ``stamp``.

    It names the drawing, not the bytes: a stamp only ever stands for one
    drawing of a tile, since any change under it gives it a new generation, so
    hashing 100 KB per tile is not needed.
    """
    return hashlib.sha1(f"{key}|{stamp}".encode(), usedforsecurity=False).hexdigest()[
        :20
    ]


def invalidate(layer: Layer, boxes) -> int:
    """Give every tile of ``layer`` under ``boxes`` a new generation.

    ``boxes`` are (west, south, east, north) in EPSG:4326, or None for the whole
    layer. Return the number of tiles renewed (-1: the whole layer).
    """
    token = uuid.uuid4().hex[:12]
    if boxes is None:
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO tilesvc_layerepoch (layer, epoch) VALUES (%s, %s) "
                "ON CONFLICT (layer) DO UPDATE SET epoch = EXCLUDED.epoch",
                [layer.id, token],
            )
        return -1
    tiles = set()
    zooms = list(range(layer.minzoom, layer.maxzoom + 1))
    for west, south, east, north in boxes:
        for tile in TMS.tiles(west, south, east, north, zooms):
            tiles.add((tile.z, tile.x, tile.y))
            if len(tiles) > MAX_TILES_PER_CHANGE:
                return invalidate(layer, None)
    if not tiles:
        return 0
    zs, xs, ys = zip(*tiles, strict=True)
    with connection.cursor() as cursor:
        # One statement for all of them: 4,500 tiles of a 100,000-parcel import
        # in milliseconds (a file per tile took 1.8 s).
        cursor.execute(
            "INSERT INTO tilesvc_tilegeneration (layer, z, x, y, generation) "
            "SELECT %s, z, x, y, %s FROM unnest(%s::smallint[], %s::integer[], "
            "%s::integer[]) AS t(z, x, y) "
            "ON CONFLICT (layer, z, x, y) "
            "DO UPDATE SET generation = EXCLUDED.generation",
            [layer.id, token, list(zs), list(xs), list(ys)],
        )
    return len(tiles)


def seed_epochs(layers: Sequence[str], using: str = "default") -> None:
    """Give every layer without an epoch a first one (a random token)."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "INSERT INTO tilesvc_layerepoch (layer, epoch) "
            "SELECT layer, substr(md5(random()::text || clock_timestamp()::text),"
            " 1, 12) FROM unnest(%s::text[]) AS layer ON CONFLICT (layer) DO NOTHING",
            [list(layers)],
        )
