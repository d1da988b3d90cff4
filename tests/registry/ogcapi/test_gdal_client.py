"""GDAL's OAPIF driver reads the registry as QGIS and ogr2ogr users would.

Two GDALs: Debian's ``ogrinfo`` (GDAL 3.6, OGC API Part 1 only, so CRS84) and the
newer GDAL inside pyogrio (Part 2: it asks for the storage CRS, or the CRS open
option). Both run against the live server with the planner's token and a small
page size, so every read crosses several ``next`` links.

pyogrio runs in a child process: its feature loop holds the GIL, and the live
server answers in a thread of this process (in-process, the two would wait on
each other for ever); a child also keeps GDAL's global options out of this one.
The bundled GDAL does not send ``GDAL_HTTP_HEADERS`` with the OAPIF driver's
requests (only its own ``Accept``), so the child gives the token through
``GDAL_HTTP_HEADER_FILE``.
"""

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import CRS, Transformer
from rest_framework.authtoken.models import Token

from registry.models import Parcel

OGRINFO = Path("/usr/bin/ogrinfo")
PAGE_SIZE = 7
LAND_CLASS_NAMES = {
    "collective": "原农村集体土地",
    "state_farm": "原光明农场国有用地",
    "unfinished_expropriation": "未完善征转手续土地",
}
PROJECT_NAMES = {"GM-SC": "光明科学城启动区", "GM-L6": "轨道6号线"}

needs_ogrinfo = pytest.mark.skipif(
    not OGRINFO.exists(), reason="Debian's gdal-bin is not installed"
)


def child_environment() -> dict[str, str]:
    """Return this environment without proxies (the server is on loopback)."""
    return {
        name: value
        for name, value in os.environ.items()
        if not name.lower().endswith("_proxy") and not name.startswith("GDAL_HTTP")
    }


@pytest.fixture
def served(transactional_db, registry_parcels, planner, live_server):
    """Return (dataset name, token) of the live server with the registry."""
    key = Token.objects.create(user=planner).key
    return f"OAPIF:{live_server.url}/ogcapi/", key


def stored_geometries() -> dict[str, shapely.Geometry]:
    return {
        code: shapely.from_wkb(bytes(geom.wkb))
        for code, geom in Parcel.objects.values_list("code", "geom")
    }


@functools.cache
def transformer_to_storage(crs: str) -> Transformer | None:
    if CRS.from_user_input(crs).to_epsg() == 4547:
        return None
    return Transformer.from_crs(crs, "EPSG:4547", always_xy=True)


def in_storage(geometry: shapely.Geometry, crs: str) -> shapely.Geometry:
    """Return a GDAL geometry (x = east, as GDAL gives it) in EPSG:4547."""
    to_storage = transformer_to_storage(crs)
    if to_storage is None:
        return geometry
    return shapely.transform(
        geometry, lambda xy: np.column_stack(to_storage.transform(*xy.T))
    )


# -- Debian's ogrinfo (GDAL 3.6) -------------------------------------------------


def ogrinfo(*arguments: str, token: str | None = None):
    header = ["--config", "GDAL_HTTP_HEADERS", f"Authorization: Token {token}"]
    return subprocess.run(
        [str(OGRINFO), *(header if token else []), *arguments],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env=child_environment(),
        check=False,
    )


def ogrinfo_features(text: str) -> list[dict]:
    """Return the features ``ogrinfo -al`` printed, as {field: text, "wkt": …}."""
    features = []
    for block in re.split(r"^OGRFeature\(parcels\):\d+$", text, flags=re.M)[1:]:
        feature = {}
        for line in block.strip("\n").splitlines():
            field = re.match(r"^  (\w+) \([\w()]+\) = (.*)$", line)
            if field:
                feature[field[1]] = field[2]
            elif line.strip().startswith(("MULTIPOLYGON", "POLYGON")):
                feature["wkt"] = line.strip()
        features.append(feature)
    return features


@needs_ogrinfo
def test_ogrinfo_lists_the_three_collections(served):
    dataset, token = served

    result = ogrinfo("-ro", dataset, token=token)

    assert result.returncode == 0, result.stderr
    layers = re.findall(r"^\d+: (\w+)", result.stdout, flags=re.M)
    assert layers == ["parcels", "buildings", "projects"]
    assert "(Multi Polygon)" in result.stdout


@needs_ogrinfo
def test_ogrinfo_reads_every_parcel_once_across_pages_in_chinese(served):
    dataset, token = served

    result = ogrinfo(
        "--debug", "on", "-ro", "-al", "-q",
        "-oo", f"PAGE_SIZE={PAGE_SIZE}",
        dataset, "parcels",
        token=token,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-2000:]
    pages = re.findall(r"Fetch\(\S*/collections/parcels/items\?[^)]*\)", result.stderr)
    assert sum("cursor=" in page for page in pages) >= 3, pages
    features = ogrinfo_features(result.stdout)
    codes = [feature["code"] for feature in features]
    parcels = {p.code: p for p in Parcel.objects.select_related("project")}
    assert sorted(codes) == sorted(parcels), "not every parcel exactly once"
    for feature in features:
        parcel = parcels[feature["code"]]
        project = parcel.project.code if parcel.project else None
        assert feature["project_name"] == PROJECT_NAMES.get(project, "(null)")
        assert feature["land_class_name"] == LAND_CLASS_NAMES[parcel.land_class]
        assert float(feature["area_m2"]) == pytest.approx(parcel.area_m2, abs=0.01)


@needs_ogrinfo
def test_ogrinfo_geometries_are_longitude_latitude_of_the_stored_parcels(served):
    dataset, token = served

    result = ogrinfo(
        "-ro", "-al", "-q", "-oo", f"PAGE_SIZE={PAGE_SIZE}", dataset, "parcels",
        token=token,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr[-2000:]
    stored = stored_geometries()
    for feature in ogrinfo_features(result.stdout):
        geometry = shapely.from_wkt(feature["wkt"])
        lon, lat = shapely.get_coordinates(geometry)[0]
        assert 113.5 < lon < 114.3 and 22.0 < lat < 23.2, feature["wkt"][:80]
        back = in_storage(geometry, "OGC:CRS84")
        assert back.area == pytest.approx(stored[feature["code"]].area, rel=1e-3)
        assert shapely.hausdorff_distance(back, stored[feature["code"]]) < 0.02


@needs_ogrinfo
def test_ogrinfo_without_a_token_cannot_open_the_registry(served):
    dataset, _token = served

    result = ogrinfo("-ro", dataset)

    assert result.returncode != 0
    assert "401" in result.stderr
    assert "parcels" not in result.stdout


@needs_ogrinfo
def test_ogrinfo_with_the_token_of_a_user_without_a_role_is_refused(served, outsider):
    dataset, _token = served

    result = ogrinfo("-ro", dataset, token=Token.objects.create(user=outsider).key)

    assert result.returncode != 0
    assert "403" in result.stderr


# -- pyogrio (its own, newer GDAL) -----------------------------------------------

READER = r"""
import json, sys
import pyogrio
from pyogrio.raw import read

dataset, header_file, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
pyogrio.set_gdal_config_options({"GDAL_HTTP_HEADER_FILE": header_file or None})
bbox = options.pop("bbox", None)
if bbox:
    options["bbox"] = tuple(bbox)
# Read as datetimes: pyogrio 0.13 fails ("microsecond must be in 0..999999") on
# a time whose fraction rounds up to a whole second, so the API writes times to
# the millisecond; reading them as real datetimes checks that it does.
meta, _fids, geometries, fields = read(dataset, layer="parcels", **options)
print(json.dumps({
    "crs": meta["crs"],
    "gdal": pyogrio.__gdal_version_string__,
    "features": [
        {
            **{name: column[i] for name, column in zip(meta["fields"], fields)},
            "wkb": geometries[i].hex(),
        }
        for i in range(len(geometries))
    ],
}, ensure_ascii=False, default=str))
"""


def pyogrio_read(dataset: str, token: str | None, tmp_path: Path, **options):
    header_file = ""
    if token:
        header = tmp_path / "headers.txt"
        header.write_text(f"Authorization: Token {token}\n")
        header_file = str(header)
    return subprocess.run(
        [sys.executable, "-c", READER, dataset, header_file, json.dumps(options)],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
        env={**child_environment(), "CPL_DEBUG": "ON"},
        check=False,
    )


def read_layer(dataset, token, tmp_path, **options) -> tuple[dict, str]:
    result = pyogrio_read(dataset, token, tmp_path, **options)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout), result.stderr


def gdal_supports_crs_option() -> bool:
    import pyogrio

    return pyogrio.__gdal_version__ >= (3, 7, 0)


def test_pyogrio_reads_every_parcel_once_in_the_storage_crs(served, tmp_path):
    dataset, token = served

    layer, log = read_layer(dataset, token, tmp_path, PAGE_SIZE=PAGE_SIZE)

    assert "cursor=" in log, "GDAL read one page only"
    codes = [feature["code"] for feature in layer["features"]]
    stored = stored_geometries()
    assert sorted(codes) == sorted(stored), "not every parcel exactly once"
    areas = dict(Parcel.objects.values_list("code", "area_m2"))
    for feature in layer["features"]:
        geometry = in_storage(shapely.from_wkb(feature["wkb"]), layer["crs"])
        assert geometry.area == pytest.approx(areas[feature["code"]], rel=1e-3)
        assert feature["land_class_name"] == LAND_CLASS_NAMES[feature["land_class"]]
        if feature["project"]:
            assert feature["project_name"] == PROJECT_NAMES[feature["project"]]


@pytest.mark.parametrize("crs", ["EPSG:4547", "EPSG:4326", "EPSG:4490", "OGC:CRS84"])
def test_pyogrio_reads_parcels_where_they_are_in_every_crs(served, tmp_path, crs):
    if not gdal_supports_crs_option():
        pytest.skip("this GDAL has no CRS open option (OGC API Part 2)")
    dataset, token = served

    layer, log = read_layer(dataset, token, tmp_path, PAGE_SIZE=PAGE_SIZE, CRS=crs)

    assert "crs=http" in log or crs == "OGC:CRS84", "GDAL did not ask for the CRS"
    stored = stored_geometries()
    assert sorted(f["code"] for f in layer["features"]) == sorted(stored)
    for feature in layer["features"]:
        geometry = shapely.from_wkb(feature["wkb"])
        x, y = shapely.get_coordinates(geometry)[0]
        if crs == "EPSG:4547":
            # GDAL gives easting as x whatever the CRS's axis order.
            assert 480_000 < x < 520_000 and 2_500_000 < y < 2_540_000, (x, y)
        else:
            assert 113.5 < x < 114.3 and 22.0 < y < 23.2, (x, y)
        back = in_storage(geometry, layer["crs"])
        code = feature["code"]
        assert back.area == pytest.approx(stored[code].area, rel=1e-3)
        assert shapely.hausdorff_distance(back, stored[code]) < 0.02, code


def test_pyogrio_spatial_filter_in_the_storage_crs_finds_the_parcels_there(
    served, tmp_path
):
    if not gdal_supports_crs_option():
        pytest.skip("this GDAL has no CRS open option (OGC API Part 2)")
    dataset, token = served
    stored = stored_geometries()
    # A strip along the lower edge of the first project's first row of parcels.
    west, south, _east, _north = stored["GM-000"].bounds
    bbox = (west - 10, south - 10, west + 1300, south + 60)
    expected = sorted(c for c, g in stored.items() if g.intersects(shapely.box(*bbox)))
    assert 2 < len(expected) < len(stored)

    layer, log = read_layer(
        dataset, token, tmp_path, PAGE_SIZE=PAGE_SIZE, CRS="EPSG:4547", bbox=bbox
    )

    assert "bbox=" in log, "GDAL filtered on its side only"
    assert sorted(f["code"] for f in layer["features"]) == expected


def test_pyogrio_without_a_token_fails(served, tmp_path):
    dataset, _token = served

    result = pyogrio_read(dataset, None, tmp_path, PAGE_SIZE=PAGE_SIZE)

    assert result.returncode != 0
    assert "401" in result.stderr
