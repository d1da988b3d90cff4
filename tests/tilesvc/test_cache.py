"""The tile cache may forget tiles, never which drawing of a tile is current."""

from django.core.cache import caches

from tilesvc import cache, file_cache
from tilesvc.vector import PARCELS


def test_culling_the_tiles_never_touches_their_generations(settings, tmp_path, db):
    settings.CACHES = {
        **settings.CACHES,
        "tiles": {
            "BACKEND": "tilesvc.file_cache.TileFileCache",
            "LOCATION": str(tmp_path / "tiles"),
            "OPTIONS": {"MAX_ENTRIES": 5, "CULL_FREQUENCY": 2},
        },
    }
    stale_key = cache.tile_key(PARCELS, 16, 1, 1, {})
    cache.put(stale_key, b"drawn before the change")
    cache.invalidate(PARCELS, None)  # a change everywhere: a new epoch
    fresh_key = cache.tile_key(PARCELS, 16, 1, 1, {})
    # Enough writes to cull the tiles again and again.
    original = file_cache.CULL_EVERY
    file_cache.CULL_EVERY = 1
    try:
        for n in range(40):
            cache.put(f"filler-{n}", b"x" * 100)
    finally:
        file_cache.CULL_EVERY = original

    assert cache.tile_key(PARCELS, 16, 1, 1, {}) == fresh_key != stale_key
    assert len(list((tmp_path / "tiles").glob("*"))) <= 5


def test_the_generation_store_never_culls(tmp_path):
    store = file_cache.TileFileCache(
        str(tmp_path / "generations"),
        {"OPTIONS": {"CULL": False, "MAX_ENTRIES": 3}},
    )
    store.set_many({f"gen:{n}": "t" for n in range(50)}, None)

    assert len(store.get_many([f"gen:{n}" for n in range(50)])) == 50
    assert caches["tile_generations"] is not caches["tiles"]


def test_an_emptied_generation_store_never_hands_out_a_key_from_before(
    settings, tmp_path
):
    # A new server, or var/ wiped: the same tile must not get the key (and so
    # the ETag) it had before, or a browser's stale copy would be called current.
    def fresh_store(name):
        settings.CACHES = {
            **settings.CACHES,
            "tile_generations": {
                "BACKEND": "tilesvc.file_cache.TileFileCache",
                "LOCATION": str(tmp_path / name),
                "OPTIONS": {"CULL": False},
            },
        }

    fresh_store("first")
    before = cache.tile_key(PARCELS, 16, 1, 1, {})
    assert cache.tile_key(PARCELS, 16, 1, 1, {}) == before  # stable while kept
    fresh_store("second")

    assert cache.tile_key(PARCELS, 16, 1, 1, {}) != before
    assert cache.etag_of(cache.tile_key(PARCELS, 16, 1, 1, {})) != cache.etag_of(before)
