"""Reading a layer chunk by chunk: the outcome is the file's, not the chunking's.

The importer reads, checks and stages a layer a chunk of rows at a time (so that a
million parcels never sit in memory at once) and runs the checks between rows in
SQL over the staging table. Read two rows at a time, a file full of faults gives
exactly the report it gives read at once: the same problems in the same order,
the same counts, the same preview; committed, the same parcels.
"""

import pyogrio.raw
import pytest
import shapely
from django.db import connection
from shapely.geometry import Polygon, box

from importers import reading
from importers.dbf import read_dbf
from importers.models import ImportBatch
from tests.importers import corpus
from tests.importers.helpers import (
    DATABASES,
    registry_state,
    reported,
    run_import,
    stored_geometry,
)

pytestmark = pytest.mark.django_db(databases=DATABASES)

OVERLAP = "Overlaps %s (row %s) by 100.00 m²."


def faulty_file(directory):
    """The six parcels with one fault of each kind a row can have.

    Row 1 overlaps row 2 by 100 m²; row 3 has no geometry; row 4's land class is
    unknown; row 5 repeats row 2's code; row 6 declares three times its area and
    is flagged deleted in the .dbf.
    """
    parcels = corpus._copy(corpus.PARCELS)
    minx, miny, maxx, maxy = parcels[1]["geometry"].bounds
    parcels[1]["geometry"] = box(minx - 2.0, miny, maxx, maxy)
    parcels[1]["declared_area"] = round(parcels[1]["geometry"].area, 2)
    parcels[2]["geometry"] = None
    parcels[3]["land_class_zh"] = "宅基地"
    parcels[4]["code"] = parcels[1]["code"]
    parcels[5]["declared_area"] = round(parcels[5]["geometry"].area * 3, 2)

    def delete_row_6(dbf: bytearray) -> None:
        dbf[corpus._record_start(dbf, 6)] = ord("*")

    return corpus._variant(
        directory,
        "faulty.zip",
        parcels,
        {},
        lambda shp: corpus._patch_dbf(shp, delete_row_6),
    )


@pytest.mark.parametrize(
    "build",
    [
        faulty_file,
        corpus.with_internal_overlap,
        corpus.with_deleted_record,
        corpus.with_dbf_shp_mismatch,
        corpus.with_bad_encoding_value,
        corpus.geojson,
    ],
    ids=["faulty", "overlap", "deleted", "mismatch", "encoding", "geojson"],
)
def test_two_rows_at_a_time_give_the_report_of_one_read(
    build, corpus_dir, project, surveyor, monkeypatch
):
    path = build(corpus_dir)
    whole = run_import(path, project=project, actor=surveyor)
    monkeypatch.setattr(reading, "BATCH_SIZE", 2)

    chunked = run_import(path, project=project, actor=surveyor)

    assert chunked.report == whole.report
    assert (chunked.features, chunked.rejected) == (whole.features, whole.rejected)


def test_the_faulty_file_is_reported_row_by_row(corpus_dir, project, surveyor):
    batch = run_import(faulty_file(corpus_dir), project=project, actor=surveyor)

    assert batch.state == ImportBatch.State.REFUSED
    assert batch.report["counts"] == {
        "features": 6,
        "valid": 0,
        "rejected": 6,
        "errors": 6,
        "warnings": 0,
    }
    assert reported(batch) == [
        (1, "GM-T-0001", "geometry", "error", OVERLAP % ("GM-T-0002", 2)),
        (2, "GM-T-0002", "geometry", "error", OVERLAP % ("GM-T-0001", 1)),
        (3, "GM-T-0003", "geometry", "error", "The feature has no geometry."),
        (
            4,
            "GM-T-0004",
            "QSXZ",
            "error",
            "Unknown land class “宅基地”; map it to one of the three.",
        ),
        (
            5,
            "GM-T-0002",
            "DKBM",
            "error",
            "The code GM-T-0002 is already used by row 2.",
        ),
        # Flagged deleted: its declared area is not questioned as well.
        (
            6,
            "",
            "",
            "error",
            "The record is flagged deleted in the .dbf (GIS software hides it). "
            "Restore it or pack the file before importing.",
        ),
    ]


def test_a_file_committed_in_chunks_stores_what_one_read_stores(
    corpus_dir, project, surveyor, monkeypatch
):
    path = corpus.shapefile_zip(corpus_dir)
    run_import(path, project=project, actor=surveyor, commit=True)
    once = registry_state()
    monkeypatch.setattr(reading, "BATCH_SIZE", 2)

    again = run_import(path, project=project, actor=surveyor, commit=True)

    assert again.state == ImportBatch.State.COMMITTED
    assert (again.created, again.updated, again.unchanged) == (0, 0, 6)
    assert registry_state() == once


def test_coordinates_are_rounded_to_the_millimetre_in_the_surveyors_order(
    corpus_dir, project, surveyor
):
    parcels = corpus._copy(corpus.PARCELS)
    minx, miny, maxx, maxy = parcels[0]["geometry"].bounds
    parcels[0]["geometry"] = Polygon(
        [
            (minx + 0.00041, miny + 0.00062),
            (minx + 0.00013, maxy - 0.00049),
            (maxx - 0.00071, maxy + 0.00038),
            (maxx + 0.00024, miny - 0.00056),
        ]
    )
    parcels[0]["declared_area"] = round(parcels[0]["geometry"].area, 2)
    shp = corpus.shapefile_set(corpus_dir / "loose", parcels)
    _, _, geometry, _ = pyogrio.raw.read(shp, max_features=1)
    as_read = shapely.get_coordinates(shapely.from_wkb(geometry[0]))
    path = corpus.shapefile_zip(corpus_dir, parcels=parcels)

    batch = run_import(path, project=project, actor=surveyor, commit=True)

    assert batch.state == ImportBatch.State.COMMITTED, batch.report
    stored = shapely.from_wkb(bytes(stored_geometry("GM-T-0001").wkb))
    assert (
        shapely.get_coordinates(stored).tolist()
        == ((as_read * 1000).round() / 1000).tolist()
    )


def test_the_dbf_reader_keeps_each_field_as_wide_as_its_longest_value(corpus_dir):
    shp = corpus.shapefile_set(corpus_dir)

    table = read_dbf(shp.with_suffix(".dbf"))

    longest = max(len(p["code"].encode()) for p in corpus.PARCELS)
    assert table.raw["DKBM"].dtype.itemsize == longest
    assert [f.length for f in table.fields if f.name == "DKBM"] != [longest]


def test_buildings_read_two_at_a_time_are_checked_and_committed_alike(
    corpus_dir, project, surveyor, monkeypatch
):
    run_import(
        corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor, commit=True
    )
    path = corpus.buildings_zip(corpus_dir)
    whole = run_import(path, project=project, actor=surveyor, layer="buildings")
    monkeypatch.setattr(reading, "BATCH_SIZE", 2)

    chunked = run_import(
        path, project=project, actor=surveyor, layer="buildings", commit=True
    )

    assert chunked.state == ImportBatch.State.COMMITTED, chunked.report
    assert chunked.report == whole.report
    assert (chunked.created, chunked.updated) == (len(corpus.BUILDINGS), 0)


def test_a_parcel_stored_with_its_vertices_in_another_order_is_unchanged(
    corpus_dir, project, surveyor
):
    path = corpus.shapefile_zip(corpus_dir)
    run_import(path, project=project, actor=surveyor, commit=True)
    imported = registry_state()
    # As imports stored it while GEOS rebuilt every rounded ring: the same ring,
    # starting at its second vertex.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE registry_parcel SET geom = ST_Multi(ST_MakePolygon("
            "ST_AddPoint(ST_RemovePoint(ST_ExteriorRing(ST_GeometryN(geom, 1)), 0),"
            " ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 2))))"
            " WHERE code = 'GM-T-0001'"
        )
    rotated = registry_state()
    assert rotated["geometries"]["GM-T-0001"] != imported["geometries"]["GM-T-0001"]

    again = run_import(path, project=project, actor=surveyor, commit=True)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 6)
    assert registry_state() == rotated
