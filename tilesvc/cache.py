"""The tile cache: rendered tiles kept until the parcels under them change.

Keys carry generations instead of being deleted: a tile's key names the layer's
epoch and the tile's own generation, and a change under the tile gives it a new
generation, so the old entry is simply never asked for again (and expires).
Deleting would race with a request rendering the tile from data read just before
the change; a new generation cannot be overtaken by an old render.

The tiles live in Django's cache named ``tiles`` (a file cache under ``var/`` by
default, shared by every server process; Redis when ``TILE_CACHE_URL`` is set);
the generations in ``tile_generations``, which must never lose an entry: a file
cache that is never culled, or the same Redis, whose generation keys carry no
expiry (so a ``volatile-*`` eviction policy can only ever drop tiles).
"""

import hashlib
import uuid
from collections.abc import Sequence

from django.core.cache import caches

from tilesvc.vector import TMS, Layer

# A change touching more tiles than this renews the whole layer instead: one
# write instead of tens of thousands, at the price of redrawing the rest.
MAX_TILES_PER_CHANGE = 20_000
TTL_S = 30 * 24 * 3600


def _cache():
    return caches["tiles"]


def _generations():
    # Apart from the tiles, and never culled or evicted: a lost generation
    # would make a tile drawn before a change current again.
    return caches["tile_generations"]


def _filters_key(filters: dict[str, Sequence[str]]) -> str:
    text = "&".join(f"{k}={','.join(sorted(v))}" for k, v in sorted(filters.items()))
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def _generation_keys(layer: str, z: int, x: int, y: int) -> tuple[str, str]:
    return f"epoch:{layer}", f"gen:{layer}:{z}:{x}:{y}"


def tile_key(layer: Layer, z: int, x: int, y: int, filters) -> str:
    """Return the cache key of the tile as the registry stands now."""
    epoch_key, gen_key = _generation_keys(layer.id, z, x, y)
    generations = _generations().get_many([epoch_key, gen_key])
    epoch = generations.get(epoch_key) or _first_epoch(epoch_key)
    gen = generations.get(gen_key, "0")
    return f"tile:{layer.id}:{z}:{x}:{y}:{epoch}:{gen}:{_filters_key(filters)}"


def _first_epoch(epoch_key: str) -> str:
    """Start a layer's first epoch with a token of its own, never a constant.

    An empty generations cache (a new server, a wiped ``var/``) must not hand
    out the keys, and so the ETags, of tiles drawn before it was emptied: a
    browser revalidating such a tile would be told it is current, and a tile
    kept late by a request from before would be found again.
    """
    _generations().add(epoch_key, uuid.uuid4().hex[:12], None)
    return _generations().get(epoch_key)


def get(key: str) -> tuple[bytes, str] | None:
    """Return the cached (tile, ETag), or None."""
    return _cache().get(key)


def put(key: str, data: bytes) -> str:
    """Keep the tile; return its ETag.

    The ETag names the key, not the bytes: a key (layer, tile, epoch,
    generation, filters) only ever holds one drawing, since any change under the
    tile gives it a new generation, so hashing 100 KB per tile is not needed.
    """
    etag = etag_of(key)
    keep(key, data, etag)
    return etag


def keep(key: str, data: bytes, etag: str) -> None:
    """Keep the tile drawn for ``key`` with its ETag (``etag_of(key)``)."""
    _cache().set(key, (data, etag), TTL_S)


def etag_of(key: str) -> str:
    """Return the ETag of the tile kept under ``key``."""
    return hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest()[:20]


def invalidate(layer: Layer, boxes) -> int:
    """Give every tile of ``layer`` under ``boxes`` a new generation.

    ``boxes`` are (west, south, east, north) in EPSG:4326, or None for the whole
    layer. Return the number of tiles renewed (-1: the whole layer).
    """
    token = uuid.uuid4().hex[:12]
    if boxes is None:
        _generations().set(f"epoch:{layer.id}", token, None)
        return -1
    keys = set()
    zooms = list(range(layer.minzoom, layer.maxzoom + 1))
    for west, south, east, north in boxes:
        for tile in TMS.tiles(west, south, east, north, zooms):
            keys.add(_generation_keys(layer.id, tile.z, tile.x, tile.y)[1])
            if len(keys) > MAX_TILES_PER_CHANGE:
                return invalidate(layer, None)
    _generations().set_many(dict.fromkeys(keys, token), None)
    return len(keys)
