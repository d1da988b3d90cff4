"""Checks of each feature: every bad row is named, and nothing is written.

Each case runs through the import core with ``commit=True``: a file with a bad row
is refused as a whole, its report names the row, the code, the field and what is
wrong, and the registry (which already holds a parcel with history and a building)
is exactly as before.
"""

import pytest
import shapely
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from shapely.geometry import box

from importers.models import ImportBatch
from registry import services
from registry.choices import LandClass
from registry.models import Parcel
from tests.factories import BuildingFactory
from tests.importers import corpus
from tests.importers.helpers import (
    DATABASES,
    SIX_VALID,
    preview,
    registry_state,
    reported,
    run_import,
    stored_geometry,
)

pytestmark = pytest.mark.django_db(databases=DATABASES)

CODES = [parcel["code"] for parcel in corpus.PARCELS]
#: A registered parcel 15 m east of GM-T-0003, inside the project.
REGISTERED = box(492660.0, 2517600.0, 492690.0, 2517630.0)


def counts(features, valid, errors, warnings=0):
    return {
        "features": features,
        "valid": valid,
        "rejected": features - valid,
        "errors": errors,
        "warnings": warnings,
    }


def multipolygon(geometry) -> MultiPolygon:
    return MultiPolygon(GEOSGeometry(geometry.wkt, srid=4547), srid=4547)


@pytest.fixture
def registered(project, registry_admin):
    """Register a parcel (with its creation in the history) and a building on it."""
    parcel = services.parcel_create(
        code="GM-R-0001",
        land_class=LandClass.COLLECTIVE,
        geom=multipolygon(REGISTERED),
        actor=registry_admin,
        project=project,
    )
    BuildingFactory(parcel=parcel)
    return parcel


def with_parcel(code, geometry, land_class="集体"):
    """Return the corpus parcels plus one more."""
    return [*corpus.PARCELS, corpus._parcel(code, land_class, "新增", geometry)]


def every_row(field, message):
    return [
        (row, code, field, "error", message) for row, code in enumerate(CODES, start=1)
    ]


def bad_bytes_of_row_4() -> str:
    note = corpus.PARCELS[3]["owner_note"].encode("gbk") + b"\xff\xfe"
    return note[:24].hex(" ")


REFUSED_ROWS = {
    "points": (
        corpus.with_points,
        counts(6, 0, errors=6),
        every_row("geometry", "The geometry is a Point; parcels must be polygons."),
    ),
    "lines": (
        corpus.with_lines,
        counts(6, 0, errors=6),
        every_row(
            "geometry", "The geometry is a LineString; parcels must be polygons."
        ),
    ),
    "one point among polygons": (
        corpus.with_mixed_shape_types,
        counts(6, 5, errors=1),
        [
            (
                2,
                "GM-T-0002",
                "geometry",
                "error",
                "The geometry is a Point; parcels must be polygons.",
            )
        ],
    ),
    "null geometry": (
        corpus.with_null_geometry,
        counts(6, 5, errors=1),
        [(3, "GM-T-0003", "geometry", "error", "The feature has no geometry.")],
    ),
    # GDAL reads a shapefile's empty polygon record as a null shape.
    "empty polygon record": (
        corpus.with_empty_geometry,
        counts(6, 5, errors=1),
        [(3, "GM-T-0003", "geometry", "error", "The feature has no geometry.")],
    ),
    "self-intersecting bowtie": (
        corpus.with_invalid_bowtie,
        counts(6, 5, errors=1),
        [
            (
                3,
                "GM-T-0003",
                "geometry",
                "error",
                "Invalid geometry: Self-intersection[492622.5 2517635]. Fix it, or "
                "import with repair.",
            )
        ],
    ),
    "duplicate code": (
        corpus.with_duplicate_codes,
        counts(6, 5, errors=1),
        [
            (
                5,
                "GM-T-0002",
                "DKBM",
                "error",
                "The code GM-T-0002 is already used by row 2.",
            )
        ],
    ),
    "overlap within the file": (
        corpus.with_internal_overlap,
        counts(6, 4, errors=2),
        [
            (
                1,
                "GM-T-0001",
                "geometry",
                "error",
                "Overlaps GM-T-0002 (row 2) by 100.00 m².",
            ),
            (
                2,
                "GM-T-0002",
                "geometry",
                "error",
                "Overlaps GM-T-0001 (row 1) by 100.00 m².",
            ),
        ],
    ),
    "unknown land class": (
        corpus.with_unknown_land_class,
        counts(6, 5, errors=1),
        [
            (
                6,
                "GM-T-0006",
                "QSXZ",
                "error",
                "Unknown land class “国有划拨”; map it to one of the three.",
            )
        ],
    ),
    "declared area off": (
        corpus.with_declared_area_off,
        counts(6, 5, errors=1),
        [
            (
                1,
                "GM-T-0001",
                "MJ",
                "error",
                "Declared area 4320.00 m² differs from the surveyed 3600.00 m² by "
                "20.0% (tolerance 5%).",
            )
        ],
    ),
    "dbf longer than shp": (
        corpus.with_dbf_shp_mismatch,
        counts(7, 6, errors=2),
        [
            (
                None,
                "",
                "",
                "error",
                "The .dbf has 7 records but the .shp has 6 shapes: the files do not "
                "belong together or one is truncated.",
            ),
            (7, "", "", "error", "The record has attributes but no shape."),
        ],
    ),
    "undecodable value": (
        corpus.with_bad_encoding_value,
        counts(6, 5, errors=1),
        [
            (
                4,
                "",
                "BZ",
                "error",
                f"The value is not valid GB18030 text (bytes {bad_bytes_of_row_4()}).",
            )
        ],
    ),
}


@pytest.mark.parametrize("case", REFUSED_ROWS)
def test_a_file_with_a_bad_row_is_refused_naming_the_row(
    case, corpus_dir, project, surveyor, registered
):
    build, expected_counts, expected_problems = REFUSED_ROWS[case]
    before = registry_state()

    batch = run_import(build(corpus_dir), project=project, actor=surveyor, commit=True)

    assert batch.state == ImportBatch.State.REFUSED
    assert batch.report["accepted"] is False
    assert batch.report["counts"] == expected_counts
    assert reported(batch) == expected_problems
    assert (batch.created, batch.updated, batch.unchanged) == (0, 0, 0)
    assert batch.rejected == expected_counts["rejected"]
    assert batch.committed_at is None
    assert registry_state() == before


def test_an_undecodable_value_is_never_shown_as_mojibake(corpus_dir, project, surveyor):
    batch = run_import(
        corpus.with_bad_encoding_value(corpus_dir), project=project, actor=surveyor
    )

    rows = preview(batch)
    assert rows[4]["BZ"] is None
    assert rows[3]["BZ"] == "原农场职工 李四 / 光明农场"


def test_a_record_flagged_deleted_is_reported_not_lost(
    corpus_dir, project, surveyor, registered
):
    before = registry_state()

    batch = run_import(
        corpus.with_deleted_record(corpus_dir),
        project=project,
        actor=surveyor,
        commit=True,
    )

    assert batch.state == ImportBatch.State.REFUSED
    assert batch.report["counts"]["features"] == 6
    assert batch.report["counts"]["rejected"] == 1
    assert (
        3,
        "",
        "",
        "error",
        "The record is flagged deleted in the .dbf (GIS software hides it). "
        "Restore it or pack the file before importing.",
    ) in reported(batch)
    assert {row for row, *_ in reported(batch)} == {3}
    assert registry_state() == before


def test_a_dbf_shorter_than_the_shp_is_reported(
    corpus_dir, project, surveyor, registered
):
    before = registry_state()

    batch = run_import(
        corpus.with_dbf_shp_mismatch(corpus_dir, dbf_delta=-1),
        project=project,
        actor=surveyor,
        commit=True,
    )

    assert batch.state == ImportBatch.State.REFUSED
    assert batch.report["counts"]["features"] == 6
    assert batch.report["counts"]["rejected"] == 1
    problems = reported(batch)
    assert problems[:2] == [
        (
            None,
            "",
            "",
            "error",
            "The .dbf has 5 records but the .shp has 6 shapes: the files do not "
            "belong together or one is truncated.",
        ),
        (6, "", "", "error", "The shape has no attribute record."),
    ]
    assert {row for row, *_ in problems} == {None, 6}
    assert registry_state() == before


@pytest.mark.parametrize(
    ("build", "row", "message"),
    [
        (
            corpus.with_deleted_record,
            3,
            "The record is flagged deleted in the .dbf (GIS software hides it). "
            "Restore it or pack the file before importing.",
        ),
        (
            lambda directory: corpus.with_dbf_shp_mismatch(directory, dbf_delta=-1),
            6,
            "The shape has no attribute record.",
        ),
    ],
    ids=["deleted record", "short dbf"],
)
def test_a_record_gdal_skips_is_reported_once_for_what_it_is(
    build, row, message, corpus_dir, project, surveyor
):
    batch = run_import(build(corpus_dir), project=project, actor=surveyor)

    assert [p for p in reported(batch) if p[0] == row] == [
        (row, "", "", "error", message)
    ]


def test_an_empty_geometry_in_a_geopackage_is_refused(corpus_dir, project, surveyor):
    parcels = [dict(parcel) for parcel in corpus.PARCELS]
    parcels[2]["geometry"] = shapely.Polygon()

    batch = run_import(
        corpus.geopackage(corpus_dir, layers={"parcels": parcels}),
        project=project,
        actor=surveyor,
        commit=True,
    )

    assert batch.state == ImportBatch.State.REFUSED
    assert batch.report["counts"] == counts(6, 5, errors=1)
    assert reported(batch) == [
        (3, "GM-T-0003", "geometry", "error", "The geometry is empty.")
    ]
    assert Parcel.objects.count() == 0


def test_a_null_geometry_in_geojson_is_refused(corpus_dir, project, surveyor):
    parcels = [dict(parcel) for parcel in corpus.PARCELS]
    parcels[1]["geometry"] = None

    batch = run_import(
        corpus.geojson(corpus_dir, parcels=parcels), project=project, actor=surveyor
    )

    assert batch.state == ImportBatch.State.REFUSED
    assert reported(batch) == [
        (2, "GM-T-0002", "geometry", "error", "The feature has no geometry.")
    ]


def test_an_overlap_with_a_registered_parcel_of_another_code_is_refused(
    corpus_dir, project, surveyor, registered
):
    # 10 m of GM-T-0007 reach into GM-R-0001: 10 m x 30 m.
    overlapping = box(492650.0, 2517600.0, 492670.0, 2517630.0)
    before = registry_state()

    batch = run_import(
        corpus.shapefile_zip(corpus_dir, parcels=with_parcel("GM-T-0007", overlapping)),
        project=project,
        actor=surveyor,
        commit=True,
    )

    assert batch.state == ImportBatch.State.REFUSED
    assert batch.report["counts"] == counts(7, 6, errors=1)
    assert reported(batch) == [
        (
            7,
            "GM-T-0007",
            "geometry",
            "error",
            "Overlaps registered parcel GM-R-0001 by 300.00 m².",
        )
    ]
    assert registry_state() == before


def test_an_overlap_within_the_tolerance_is_accepted(
    corpus_dir, project, surveyor, registered
):
    # 0.02 m x 30 m = 0.6 m² over GM-R-0001, below the 1 m² tolerance.
    sliver = box(492650.0, 2517600.0, 492660.02, 2517630.0)
    parcels = with_parcel("GM-T-0007", sliver)
    parcels[-1]["declared_area"] = round(sliver.area, 2)

    batch = run_import(
        corpus.shapefile_zip(corpus_dir, parcels=parcels),
        project=project,
        actor=surveyor,
    )

    assert batch.state == ImportBatch.State.CHECKED
    assert batch.report["counts"] == counts(7, 7, errors=0)


def test_neighbours_sharing_an_edge_do_not_overlap(corpus_dir, project, surveyor):
    # GM-T-0001 and GM-T-0002 share the edge x = 492160.
    batch = run_import(
        corpus.shapefile_zip(corpus_dir), project=project, actor=surveyor
    )

    assert batch.state == ImportBatch.State.CHECKED
    assert batch.report["counts"] == SIX_VALID
    assert reported(batch) == []


def test_z_values_are_dropped_with_a_warning(corpus_dir, project, surveyor):
    batch = run_import(
        corpus.with_z(corpus_dir), project=project, actor=surveyor, commit=True
    )

    assert batch.state == ImportBatch.State.COMMITTED
    assert batch.report["counts"] == counts(6, 6, errors=0, warnings=1)
    assert reported(batch) == [
        (
            1,
            "GM-T-0001",
            "geometry",
            "warning",
            "Z (height) values are dropped: 6 feature(s) have them.",
        )
    ]
    assert batch.created == 6
    assert not any(parcel.geom.hasz for parcel in Parcel.objects.all())


def test_a_bowtie_is_repaired_on_request_and_the_area_change_recorded(
    corpus_dir, project, surveyor
):
    # The repaired bowtie is two triangles, half its bounding box: declare that.
    parcels = [dict(parcel) for parcel in corpus.PARCELS]
    parcels[2]["declared_area"] = 1575.0

    batch = run_import(
        corpus.with_invalid_bowtie(corpus_dir, parcels=parcels),
        project=project,
        actor=surveyor,
        commit=True,
        repair=True,
    )

    assert batch.state == ImportBatch.State.COMMITTED
    assert batch.report["counts"] == counts(6, 6, errors=0, warnings=1)
    assert reported(batch) == [
        (
            3,
            "GM-T-0003",
            "geometry",
            "warning",
            "Invalid geometry (Self-intersection[492622.5 2517635]) repaired; area "
            "0.00 m² → 1575.00 m².",
        )
    ]
    repaired = stored_geometry("GM-T-0003")
    assert repaired.valid
    assert repaired.area == pytest.approx(1575.0)
    assert len(repaired) == 2


def test_a_repaired_bowtie_still_has_its_area_checked(
    corpus_dir, project, surveyor, registered
):
    before = registry_state()

    batch = run_import(
        corpus.with_invalid_bowtie(corpus_dir),
        project=project,
        actor=surveyor,
        commit=True,
        repair=True,
    )

    assert batch.state == ImportBatch.State.REFUSED
    assert batch.report["counts"] == counts(6, 5, errors=1, warnings=1)
    assert reported(batch) == [
        (
            3,
            "GM-T-0003",
            "MJ",
            "error",
            "Declared area 3150.00 m² differs from the surveyed 1575.00 m² by "
            "100.0% (tolerance 5%).",
        ),
        (
            3,
            "GM-T-0003",
            "geometry",
            "warning",
            "Invalid geometry (Self-intersection[492622.5 2517635]) repaired; area "
            "0.00 m² → 1575.00 m².",
        ),
    ]
    assert registry_state() == before
