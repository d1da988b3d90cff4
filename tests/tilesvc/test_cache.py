"""The tile cache may forget tiles; which drawing is current lives in the database."""

import pytest
from django.core.management import call_command
from django.db import connection

from tilesvc import cache, file_cache
from tilesvc.models import LayerEpoch, TileGeneration
from tilesvc.vector import PARCELS, TMS


def stamp_of(z=16, x=1, y=1) -> str:
    sql, params = cache.stamp_query(PARCELS, z, x, y)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def test_every_layer_has_an_epoch_of_its_own_from_the_start(db):
    epochs = dict(LayerEpoch.objects.values_list("layer", "epoch"))

    assert set(epochs) == {"parcels", "buildings", "projects"}
    assert len(set(epochs.values())) == 3
    assert stamp_of() == f"{epochs['parcels']}:0"  # an untouched tile: generation 0


def test_a_change_renews_the_tiles_under_it_at_every_zoom_and_no_others(db):
    lon, lat = 113.93, 22.78
    here = {z: TMS.tile(lon, lat, z) for z in range(PARCELS.minzoom, 19)}
    before = {z: stamp_of(z, t.x, t.y) for z, t in here.items()}
    elsewhere = stamp_of(16, 1, 1)

    renewed = cache.invalidate(PARCELS, [(lon - 1e-5, lat - 1e-5, lon, lat)])

    assert renewed >= len(here)
    assert all(stamp_of(z, t.x, t.y) != before[z] for z, t in here.items())
    assert stamp_of(16, 1, 1) == elsewhere
    assert TileGeneration.objects.filter(layer="buildings").count() == 0


def test_a_change_everywhere_renews_the_layer_in_one_write(db):
    before = stamp_of()

    assert cache.invalidate(PARCELS, None) == -1
    assert stamp_of() != before
    assert TileGeneration.objects.count() == 0


def test_a_change_too_big_to_list_renews_the_layer(db, monkeypatch):
    monkeypatch.setattr(cache, "MAX_TILES_PER_CHANGE", 10)
    before = stamp_of()

    assert cache.invalidate(PARCELS, [(113.8, 22.6, 114.0, 22.9)]) == -1
    assert stamp_of() != before


def test_culling_the_tiles_never_makes_a_stale_one_current(settings, tmp_path, db):
    settings.CACHES = {
        **settings.CACHES,
        "tiles": {
            "BACKEND": "tilesvc.file_cache.TileFileCache",
            "LOCATION": str(tmp_path / "tiles"),
            "OPTIONS": {"MAX_ENTRIES": 5, "CULL_FREQUENCY": 2},
        },
    }
    key = cache.entry_key(PARCELS, 16, 1, 1, {})
    cache.keep(key, stamp_of(), b"drawn before the change")
    cache.invalidate(PARCELS, None)
    original = file_cache.CULL_EVERY
    file_cache.CULL_EVERY = 1  # enough writes to cull the tiles again and again
    try:
        for n in range(40):
            cache.keep(f"filler-{n}", "stamp", b"x" * 100)
    finally:
        file_cache.CULL_EVERY = original

    kept = cache.get(key)
    assert kept is None or kept[0] != stamp_of()
    assert len(list((tmp_path / "tiles").glob("*"))) <= 5


@pytest.mark.django_db(transaction=True)
def test_an_emptied_database_never_makes_a_tile_from_before_current():
    # A database flushed and loaded again (or restored elsewhere) must not give
    # a tile the stamp, and so the ETag, it had before, or a browser's stale
    # copy would be called current.
    before = stamp_of()
    key = cache.entry_key(PARCELS, 16, 1, 1, {})

    call_command("flush", "--no-input", verbosity=0)

    assert stamp_of() != before
    assert cache.etag_of(key, stamp_of()) != cache.etag_of(key, before)


def test_a_layer_without_an_epoch_keeps_nothing(db):
    LayerEpoch.objects.filter(layer="parcels").delete()

    assert stamp_of() is None
