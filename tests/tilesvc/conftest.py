"""Tile tests: parcels placed on known tiles; an empty job queue."""

from pathlib import Path

import pytest
from django.db import connection
from pyproj import Transformer

from registry.workflow import Status
from tests.factories import ParcelFactory
from tests.tilesvc.test_imagery import Place, place_in
from tilesvc.vector import TMS

TO_LONLAT = Transformer.from_crs(4547, 4326, always_xy=True)


def tile_of(geom, z: int):
    """Return the tile at zoom ``z`` holding the centre of a 4547 geometry."""
    centre = geom.centroid
    lon, lat = TO_LONLAT.transform(centre.x, centre.y)
    return TMS.tile(lon, lat, z)


@pytest.fixture
def parcel_tile_url(project) -> str:
    """Return the z16 parcel tile holding a cleared parcel of the test project."""
    parcel = ParcelFactory(code="TILE-1", project=project, status=Status.CLEARED)
    tile = tile_of(parcel.geom, 16)
    return f"/tiles/parcels/16/{tile.x}/{tile.y}.mvt"


@pytest.fixture
def empty_queue(db):
    """Start with no jobs: the queue's tables are not Django's to flush."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM procrastinate_jobs")


@pytest.fixture(autouse=True)
def imagery_dir(settings, tmp_path) -> Path:
    """Keep every orthophoto file of a test in its own directory."""
    settings.IMAGERY_DIR = tmp_path / "imagery"
    return settings.IMAGERY_DIR


@pytest.fixture
def place(project) -> Place:
    """Where the test project's orthophotos lie."""
    return place_in(project)
