"""Fixtures of the importer tests: a project around the corpus, and isolation.

The corpus parcels (``tests.importers.corpus.PARCELS``) lie around x 492 100-493 740,
y 2 517 200-2 518 780 (EPSG:4547), across four of the factory's 2.5 km project
squares, so ``project`` is redefined here: the same code and name as the registry's
fixture, but with a boundary drawn 100 m around the corpus parcels. Every persona of
``tests/conftest.py`` (surveyor, case officer...) then holds its role in it. The
tight boundary matters for the GCJ-02 hint, which compares the data with the project.

Every test gets its own upload directory and its own temporary directory (where
the importer unpacks uploads), so that a test can see what an import left behind.
"""

import tempfile

import pytest
import shapely
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from django.db import connection, connections

from tests.factories import ProjectFactory
from tests.importers import corpus

BOUNDARY_MARGIN_M = 100.0


def corpus_boundary() -> MultiPolygon:
    """Return the corpus parcels grown by 100 m, as a project boundary."""
    grown = shapely.union_all(
        [parcel["geometry"].buffer(BOUNDARY_MARGIN_M) for parcel in corpus.PARCELS]
    )
    geometry = GEOSGeometry(grown.wkt, srid=4547)
    if geometry.geom_type == "Polygon":
        geometry = MultiPolygon(geometry, srid=4547)
    return geometry


@pytest.fixture
def project(db):
    return ProjectFactory(
        code="GM-SC", name_zh="光明科学城启动区", boundary=corpus_boundary()
    )


@pytest.fixture
def corpus_dir(tmp_path):
    """Return an empty directory for the test's survey files."""
    directory = tmp_path / "corpus"
    directory.mkdir()
    return directory


@pytest.fixture
def import_tmp(tmp_path, monkeypatch):
    """Return the directory the importer's private temporary directories go in."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture(autouse=True)
def isolated_imports(settings, tmp_path, import_tmp):
    """Give each test its own upload directory; close the progress connection.

    ``pipeline`` writes progress through the ``progress`` alias (a mirror of the
    default database, but its own connection); left open, it keeps the test
    database from being dropped at the end of the run.
    """
    settings.IMPORT_UPLOAD_DIR = tmp_path / "uploads"
    yield
    connections["progress"].close()


@pytest.fixture
def queue(transactional_db):
    """Start and end the test with an empty procrastinate queue.

    The queue's tables are not Django models, so the flush after a transactional
    test leaves their rows behind; a job left over would run in the next test.
    """

    def empty() -> None:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM procrastinate_jobs")

    empty()
    yield
    empty()
