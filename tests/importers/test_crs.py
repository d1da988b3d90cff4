"""Coordinates: the CRS is known or named, and data land where they belong.

Data are stored in EPSG:4547 whatever CRS they come in, and must fall in the
service area (Guangming plus a margin); when they do not, the refusal gives the
extent and a hint at the usual mistake.
"""

import pytest
import shapely
from shapely.geometry import box

from importers.models import ImportBatch
from registry.models import Parcel
from tests.importers import corpus
from tests.importers.helpers import (
    DATABASES,
    SIX_VALID,
    assert_refused,
    registry_state,
    reported,
    run_import,
)

pytestmark = pytest.mark.django_db(databases=DATABASES)

CGCS2000_LABEL = "EPSG:4547 CGCS2000 / 3-degree Gauss-Kruger CM 114E"
ZONE_38_LABEL = "EPSG:4526 CGCS2000 / 3-degree Gauss-Kruger zone 38"
ONE_MM = 0.001


def distance_to_truth() -> dict[str, float]:
    """Return, per stored parcel, its Hausdorff distance to the corpus geometry."""
    truth = {parcel["code"]: parcel["geometry"] for parcel in corpus.PARCELS}
    return {
        parcel.code: shapely.hausdorff_distance(
            shapely.from_wkb(bytes(parcel.geom.wkb)), truth[parcel.code]
        )
        for parcel in Parcel.objects.all()
    }


def test_a_file_without_a_crs_is_refused(corpus_dir, project, surveyor):
    before = registry_state()

    batch = run_import(
        corpus.shapefile_zip(corpus_dir, prj=False),
        project=project,
        actor=surveyor,
        commit=True,
    )

    assert_refused(
        batch,
        "parcels.zip does not say which coordinate system it uses (no .prj or CRS). "
        "Name it, e.g. EPSG:4547 (CGCS2000 / 3-degree GK CM 114E).",
    )
    assert registry_state() == before


def test_a_file_without_a_crs_imports_when_one_is_named(corpus_dir, project, surveyor):
    batch = run_import(
        corpus.shapefile_zip(corpus_dir, prj=False),
        project=project,
        actor=surveyor,
        commit=True,
        crs="EPSG:4547",
    )

    assert batch.state == ImportBatch.State.COMMITTED
    assert batch.crs == CGCS2000_LABEL
    assert batch.report["crs"] == {"label": CGCS2000_LABEL, "source": "override"}
    assert batch.created == 6


def test_a_named_crs_may_be_wkt(corpus_dir, project, surveyor):
    batch = run_import(
        corpus.shapefile_zip(corpus_dir, crs=corpus.LOCAL_GRID_WKT, prj=False),
        project=project,
        actor=surveyor,
        commit=True,
        crs=corpus.LOCAL_GRID_WKT,
    )

    assert batch.state == ImportBatch.State.COMMITTED
    assert batch.crs == "Guangming local grid"
    assert max(distance_to_truth().values()) < ONE_MM


def test_a_crs_that_is_not_understood_is_refused(corpus_dir, project, surveyor):
    batch = run_import(
        corpus.shapefile_zip(corpus_dir, prj=False),
        project=project,
        actor=surveyor,
        crs="EPSG:999999",
    )

    assert batch.state == ImportBatch.State.REFUSED
    assert batch.report["refusal"]["en"].startswith(
        "parcels.zip: the coordinate system “EPSG:999999” is not understood: "
    )


def test_a_custom_local_grid_prj_is_accepted(corpus_dir, project, surveyor):
    batch = run_import(
        corpus.shapefile_zip(corpus_dir, crs=corpus.LOCAL_GRID_WKT),
        project=project,
        actor=surveyor,
        commit=True,
    )

    assert batch.state == ImportBatch.State.COMMITTED
    assert batch.report["counts"] == SIX_VALID
    assert batch.report["crs"] == {"label": "Guangming_local_grid", "source": "prj"}
    assert max(distance_to_truth().values()) < ONE_MM


@pytest.mark.parametrize(
    "build",
    [
        lambda d: corpus.shapefile_zip(d),
        lambda d: corpus.shapefile_zip(d, crs="EPSG:4326"),
        lambda d: corpus.shapefile_zip(d, crs=corpus.CGCS2000_GK_ZONE_38),
        lambda d: corpus.shapefile_zip(d, crs="EPSG:4490"),
        lambda d: corpus.geojson(d),
        lambda d: corpus.geojson(d, crs="EPSG:4547"),
        lambda d: corpus.geojsonseq(d),
        lambda d: corpus.geojsonseq(d, rs=True),
        lambda d: corpus.geopackage(d, crs="EPSG:4326"),
    ],
    ids=[
        "shp 4547",
        "shp 4326",
        "shp 4526",
        "shp 4490",
        "geojson 4326",
        "geojson 4547",
        "geojsonseq",
        "geojsonseq rs",
        "gpkg 4326",
    ],
)
def test_the_same_parcels_are_stored_alike_within_a_millimetre(
    build, corpus_dir, project, surveyor
):
    batch = run_import(build(corpus_dir), project=project, actor=surveyor, commit=True)

    assert batch.state == ImportBatch.State.COMMITTED, batch.report
    assert batch.created == 6
    distances = distance_to_truth()
    assert sorted(distances) == [parcel["code"] for parcel in corpus.PARCELS]
    assert max(distances.values()) < ONE_MM


def test_swapped_axes_are_refused_with_a_hint(corpus_dir, project, surveyor):
    before = registry_state()

    batch = run_import(
        corpus.shapefile_zip(corpus_dir, transform=corpus.swap_axes),
        project=project,
        actor=surveyor,
        commit=True,
    )

    assert_refused(
        batch,
        f"parcels.zip lies outside Guangming: read as {CGCS2000_LABEL} its extent is "
        "2.5172e+06, 492100, 2.51878e+06, 493740. The X and Y (or longitude and "
        "latitude) look swapped.",
    )
    assert registry_state() == before


def test_swapped_longitude_and_latitude_are_refused_with_hints(
    corpus_dir, project, surveyor
):
    batch = run_import(
        corpus.shapefile_zip(corpus_dir, crs="EPSG:4326", transform=corpus.swap_axes),
        project=project,
        actor=surveyor,
    )

    assert_refused(
        batch,
        "parcels.zip lies outside Guangming: read as EPSG:4326 WGS 84 its extent is "
        "22.7531, 113.923, 22.7674, 113.939. The X and Y (or longitude and latitude) "
        "look swapped. The coordinates are not longitudes and latitudes in China.",
    )


def test_a_zone_prefix_on_an_epsg_4547_file_is_named(corpus_dir, project, surveyor):
    before = registry_state()

    batch = run_import(
        corpus.shapefile_zip(corpus_dir, transform=corpus.shift(38_000_000)),
        project=project,
        actor=surveyor,
        commit=True,
    )

    assert_refused(
        batch,
        f"parcels.zip lies outside Guangming: read as {CGCS2000_LABEL} its extent is "
        "3.84921e+07, 2.5172e+06, 3.84937e+07, 2.51878e+06. Eastings carry a zone "
        "prefix (e.g. 38 500 000): the file is probably EPSG:4526, not EPSG:4547.",
    )
    assert registry_state() == before


def test_a_missing_zone_prefix_on_an_epsg_4526_file_is_named(
    corpus_dir, project, surveyor
):
    batch = run_import(
        corpus.shapefile_zip(
            corpus_dir,
            crs=corpus.CGCS2000_GK_ZONE_38,
            transform=corpus.shift(-38_000_000),
        ),
        project=project,
        actor=surveyor,
    )

    assert_refused(
        batch,
        f"parcels.zip lies outside Guangming: read as {ZONE_38_LABEL} its extent is "
        "492100, 2.5172e+06, 493740, 2.51878e+06. Eastings have no zone prefix: the "
        "file is probably EPSG:4547, not EPSG:4526.",
    )


def test_data_far_away_are_refused_with_their_extent(corpus_dir, project, surveyor):
    batch = run_import(
        corpus.shapefile_zip(corpus_dir, transform=corpus.shift(0, 1_000_000)),
        project=project,
        actor=surveyor,
    )

    assert batch.state == ImportBatch.State.REFUSED
    # No hint fits: the message ends with the extent.
    assert batch.report["refusal"]["en"].rstrip() == (
        f"parcels.zip lies outside Guangming: read as {CGCS2000_LABEL} its extent is "
        "492100, 3.5172e+06, 493740, 3.51878e+06."
    )


def test_one_parcel_outside_the_service_area_is_a_row_error(
    corpus_dir, project, surveyor
):
    far = box(520000.0, 2517200.0, 520060.0, 2517260.0)  # 26 km east
    parcels = [*corpus.PARCELS, corpus._parcel("GM-T-0007", "集体", "远处", far)]

    batch = run_import(
        corpus.shapefile_zip(corpus_dir, parcels=parcels),
        project=project,
        actor=surveyor,
    )

    assert batch.state == ImportBatch.State.REFUSED
    assert batch.report["counts"]["rejected"] == 1
    assert reported(batch) == [
        (
            7,
            "GM-T-0007",
            "geometry",
            "error",
            "The parcel lies outside the service area.",
        )
    ]


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:4547"])
def test_gcj02_offsets_are_hinted_at(crs, corpus_dir, project, surveyor):
    batch = run_import(
        corpus.shapefile_zip(corpus_dir, crs=crs, transform=corpus.gcj02_offset(crs)),
        project=project,
        actor=surveyor,
    )

    # About 600 m off is still inside the service area: a warning, not a refusal.
    assert batch.state == ImportBatch.State.CHECKED
    assert batch.report["counts"] == {**SIX_VALID, "warnings": 1}
    assert reported(batch) == [
        (
            None,
            "",
            "",
            "warning",
            "The data sit about 600 m off the project; moved from GCJ-02 (the offset "
            "of AMap/Tencent maps) to WGS84 they fit it. Were they digitised on a "
            "Chinese web map?",
        )
    ]


def test_data_true_to_the_project_get_no_gcj02_hint(corpus_dir, project, surveyor):
    batch = run_import(
        corpus.shapefile_zip(corpus_dir, crs="EPSG:4326"),
        project=project,
        actor=surveyor,
    )

    assert reported(batch) == []


OLD_DATUMS = [
    (
        corpus.BEIJING_1954_GK_114E,
        "EPSG:2435 Beijing 1954 / 3-degree Gauss-Kruger CM 114E",
    ),
    (corpus.XIAN_1980_GK_114E, "EPSG:2383 Xian 1980 / 3-degree Gauss-Kruger CM 114E"),
]


def ballpark_warning(label: str) -> str:
    return (
        f"No datum transformation from {label} to CGCS2000 is known; positions may "
        "be off by tens of metres. Check them on the map."
    )


@pytest.mark.parametrize(
    ("crs", "label"), OLD_DATUMS, ids=["Beijing 1954", "Xian 1980"]
)
def test_old_datums_are_accepted_with_a_ballpark_warning(
    crs, label, corpus_dir, project, surveyor
):
    batch = run_import(
        corpus.shapefile_zip(corpus_dir, crs=crs),
        project=project,
        actor=surveyor,
        commit=True,
    )

    assert batch.state == ImportBatch.State.COMMITTED
    assert batch.crs == label
    assert batch.report["counts"] == {**SIX_VALID, "warnings": 1}
    assert reported(batch) == [(None, "", "", "warning", ballpark_warning(label))]
    # The corpus wrote them with the same ballpark (no shift): they come back.
    assert max(distance_to_truth().values()) < ONE_MM
