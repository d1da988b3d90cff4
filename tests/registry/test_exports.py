"""Exports of banked land, read back by GDAL: counts, areas and Chinese text."""

import datetime
import io
import json
import threading
import zipfile

import pyogrio
import pytest
import shapely
import time_machine
from django.db import connection

from registry import exports, services
from registry.models import ExportLog, Parcel
from registry.workflow import Status
from tests.factories import ParcelFactory, parcel_square

pytestmark = pytest.mark.django_db
SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
JAN, MAR = (
    datetime.datetime(2025, 1, 15, 10, tzinfo=SHANGHAI),
    datetime.datetime(2025, 3, 15, 10, tzinfo=SHANGHAI),
)


@pytest.fixture
def banked(project, registry_admin):
    """Three parcels banked (two in January, one in March) and one only cleared."""
    parcels = [
        ParcelFactory(
            project=project,
            status=Status.CLEARED,
            land_class=land_class,
            geom=parcel_square(project, n, 40 + 10 * n),
        )
        for n, land_class in enumerate(
            ["collective", "state_farm", "collective", "unfinished_expropriation"]
        )
    ]
    for parcel, moment in zip(parcels[:3], (JAN, JAN, MAR), strict=True):
        with time_machine.travel(moment, tick=False):
            services.parcel_transition(
                parcel=parcel,
                to_status=Status.BANKED,
                actor=registry_admin,
                banked_on=moment.date(),
                bank_ref=f"入库-{moment:%Y%m}",
            )
    return parcels


def banked_area(parcels) -> float:
    codes = [p.code for p in parcels]
    return sum(Parcel.objects.filter(code__in=codes).values_list("area_m2", flat=True))


def geojson(selection=None) -> dict:
    manifest = exports.Manifest("now", {}, "geojson", "EPSG:4326")
    data = b"".join(exports.geojson_stream(selection or exports.Selection(), manifest))
    return json.loads(data)


def test_geojson_is_rfc_7946_with_chinese_names_and_a_manifest(banked, project):
    document = geojson()
    features = document["features"]
    assert [f["properties"]["code"] for f in features] == sorted(
        p.code for p in banked[:3]
    )
    first = features[0]
    assert first["properties"]["project_name"] == project.name_zh
    assert first["properties"]["bank_ref"] == "入库-202501"
    # Longitude/latitude in Guangming, exterior ring counter-clockwise.
    ring = first["geometry"]["coordinates"][0][0]
    assert 113.7 < ring[0][0] < 114.1 and 22.6 < ring[0][1] < 22.9
    assert shapely.Polygon(ring).exterior.is_ccw
    manifest = document["manifest"]
    assert manifest["features"] == 3
    assert manifest["total_area_m2"] == pytest.approx(banked_area(banked[:3]), abs=0.1)
    assert len(manifest["sha256"]) == 64


@pytest.mark.parametrize("fmt", ["gpkg", "shp", "fgb"])
def test_file_formats_read_back_with_gdal(fmt, banked, project, tmp_path):
    manifest = exports.write_files(exports.Selection(), tmp_path, fmt=fmt)
    path = tmp_path / exports.FILE_NAMES[fmt]
    meta, _fids, geometry, fields = pyogrio.raw.read(path)
    names = list(meta["fields"])
    rows = [
        dict(zip(names, values, strict=True)) for values in zip(*fields, strict=True)
    ]
    assert len(rows) == manifest.features == 3
    assert sorted(r["code"] for r in rows) == sorted(p.code for p in banked[:3])
    name_field = "proj_name" if fmt == "shp" else "project_name"
    assert {r[name_field] for r in rows} == {project.name_zh}
    areas = shapely.area(shapely.from_wkb(geometry))
    assert areas.sum() == pytest.approx(banked_area(banked[:3]), rel=1e-6)
    written = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    assert written["features"] == 3 and written["crs"] == "EPSG:4547"


def test_shapefiles_can_be_gbk_with_a_cpg_that_says_so(banked, project, tmp_path):
    exports.write_files(exports.Selection(), tmp_path, fmt="shp", encoding="GBK")
    assert (tmp_path / "banked.cpg").read_text() == "GBK"
    raw = (tmp_path / "banked.dbf").read_bytes()
    assert project.name_zh.encode("gbk") in raw
    meta, _, _, fields = pyogrio.raw.read(tmp_path / "banked.shp")
    assert project.name_zh in list(fields[list(meta["fields"]).index("proj_name")])


def test_csv_opens_in_excel_with_a_bom_and_wkt_in_wgs84(banked, tmp_path):
    exports.write_files(exports.Selection(), tmp_path, fmt="csv")
    data = (tmp_path / "banked.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    lines = data.decode("utf-8-sig").splitlines()
    assert lines[0].split(",")[-1] == "wkt"
    assert len(lines) == 4
    assert "MULTIPOLYGON (((113." in lines[1]


def test_filters_and_as_of_select_what_was_banked_then(banked, project):
    january = exports.Selection(banked_to=datetime.date(2025, 1, 31))
    assert len(geojson(january)["features"]) == 2
    as_of_february = exports.Selection(
        as_of=datetime.datetime(2025, 2, 1, tzinfo=SHANGHAI)
    )
    assert len(geojson(as_of_february)["features"]) == 2
    collective = exports.Selection(land_class="collective")
    assert len(geojson(collective)["features"]) == 2
    assert geojson(exports.Selection(project="NOPE"))["features"] == []


def test_as_of_exports_carry_the_geometry_parcels_had_then(
    banked, project, registry_admin
):
    parcel = banked[0]
    before = Parcel.objects.get(pk=parcel.pk)
    with time_machine.travel(MAR, tick=False):
        # A re-survey in March: the revision keeps the January geometry.
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO registry_parcelrevision (parcel_id, kind, import_batch_id,"
                " old_geom, old_land_class, old_declared_area_m2, actor_id, at)"
                " VALUES (%s, 'updated', 1, %s, %s, NULL, %s, %s)",
                [parcel.pk, before.geom.ewkb.hex(), "state_farm", registry_admin.pk,
                 MAR],
            )  # fmt: skip
        Parcel.objects.filter(pk=parcel.pk).update(geom=parcel_square(project, 9, 80))

    def feature(selection):
        found = geojson(selection)["features"]
        return next(f for f in found if f["properties"]["code"] == parcel.code)

    february = feature(
        exports.Selection(as_of=datetime.datetime(2025, 2, 1, tzinfo=SHANGHAI))
    )
    now = feature(exports.Selection())

    assert february["properties"]["area_m2"] == pytest.approx(before.area_m2, abs=0.01)
    assert february["properties"]["land_class"] == "state_farm"
    assert now["properties"]["area_m2"] == pytest.approx(6400, abs=0.01)
    assert now["properties"]["land_class"] == "collective"


@pytest.mark.parametrize(
    ("persona", "status"),
    [("analyst", 200), ("registry_admin", 200), ("planner", 403), ("outsider", 403)],
)
def test_only_analysts_and_admins_export(persona, status, request, login, banked):
    response = login(request.getfixturevalue(persona)).get("/api/exports/banked/")
    assert response.status_code == status
    if status == 200:
        body = json.loads(b"".join(response.streaming_content))
        assert body["manifest"]["features"] == 3
        log = ExportLog.objects.get()
        assert (log.format, log.features, log.channel) == ("geojson", 3, "api")


def test_the_api_zips_file_formats_with_their_manifest(analyst, login, banked):
    response = login(analyst).get("/api/exports/banked/", {"format": "shp"})
    assert response.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert {"banked.shp", "banked.dbf", "banked.cpg", "manifest.json"} <= set(names)


def test_a_bad_format_or_date_is_a_400(analyst, login):
    client = login(analyst)
    assert client.get("/api/exports/banked/", {"format": "kml"}).status_code == 400
    bad_date = client.get("/api/exports/banked/", {"banked_from": "2025-02-30"})
    assert bad_date.status_code == 400
    assert "banked_from" in bad_date.json()["error"]["en"]


@pytest.mark.django_db(transaction=True)
def test_an_export_sees_one_snapshot_while_a_status_change_commits(
    banked, registry_admin
):
    manifest = exports.Manifest("now", {}, "geojson", "EPSG:4326")
    stream = exports.geojson_stream(exports.Selection(), manifest)
    chunks = [next(stream), next(stream)]  # the query has run; rows are pending

    def bank_the_fourth():
        services.parcel_transition(
            parcel=banked[3],
            to_status=Status.BANKED,
            actor=registry_admin,
            banked_on=datetime.date(2025, 4, 1),
            bank_ref="入库-202504",
        )
        connection.close()

    writer = threading.Thread(target=bank_the_fourth)
    writer.start()
    writer.join()
    chunks.extend(stream)

    assert Parcel.objects.filter(status=Status.BANKED).count() == 4
    assert len(json.loads(b"".join(chunks))["features"]) == 3
    assert manifest.features == 3


def test_a_map_selection_exports_every_parcel_it_touches(
    analyst, registry_admin, login, banked
):
    from pyproj import Transformer

    from registry.models import ParcelStatusChange

    # Factories write no history; the export reads statuses from it.
    ParcelStatusChange.objects.create(
        parcel=banked[3], move="create", from_status="", to_status="cleared",
        actor=registry_admin, at=JAN,
    )  # fmt: skip

    to_lonlat = Transformer.from_crs(4547, 4326, always_xy=True)
    x0, y0, x1, y1 = banked[3].geom.extent  # the one parcel not banked
    ring = [list(to_lonlat.transform(x, y)) for x, y in
            ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))]  # fmt: skip
    drawn = json.dumps({"type": "Polygon", "coordinates": [ring]})

    everything = login(analyst).get(
        "/api/exports/banked/", {"status": "all", "geometry": drawn}
    )
    banked_only = login(analyst).get("/api/exports/banked/", {"geometry": drawn})

    assert everything["Content-Disposition"] == 'attachment; filename="parcels.geojson"'
    body = json.loads(b"".join(everything.streaming_content))
    assert [f["properties"]["code"] for f in body["features"]] == [banked[3].code]
    assert body["manifest"]["selection"]["statuses"] == [
        "surveyed", "declared", "verified", "signed", "cleared", "banked",
    ]  # fmt: skip
    assert json.loads(b"".join(banked_only.streaming_content))["features"] == []
    log = ExportLog.objects.order_by("pk").first()
    assert log.selection["within"].startswith("POLYGON")


@pytest.mark.parametrize(
    "query, parameter",
    [
        ({"status": "gone"}, "status"),
        ({"geometry": "not json"}, "geometry"),
        ({"bbox": "1,2,3"}, "bbox"),
    ],
)
def test_bad_export_filters_are_refused_bilingually(analyst, login, query, parameter):
    response = login(analyst).get("/api/exports/banked/", query)

    assert response.status_code == 400
    assert response.json()["parameter"] == parameter
    assert response.json()["error"]["zh"]


def test_a_long_drawn_polygon_is_posted_rather_than_put_in_a_url(
    analyst, login, banked
):
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs(4547, 4326, always_xy=True)
    around = banked[0].geom.centroid.buffer(500, quadsegs=150)  # 600 vertices
    ring = [list(to_lonlat.transform(x, y)) for x, y in around.exterior_ring.coords]
    drawn = json.dumps({"type": "Polygon", "coordinates": [ring]})
    assert len(drawn) > 8192  # more than a request line may carry

    response = login(analyst).post(
        "/api/exports/banked/", {"format": "geojson", "geometry": drawn}
    )

    assert response.status_code == 200
    body = json.loads(b"".join(response.streaming_content))
    assert banked[0].code in {f["properties"]["code"] for f in body["features"]}


def test_a_posted_export_needs_the_csrf_token(analyst, banked):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(analyst)

    assert client.post("/api/exports/banked/", {"format": "geojson"}).status_code == 403
