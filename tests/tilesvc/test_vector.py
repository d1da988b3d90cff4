"""Vector tiles read back by real decoders: mapbox-vector-tile and GDAL's MVT driver."""

import subprocess

import mapbox_vector_tile
import pytest

from registry.choices import LandClass
from registry.workflow import Status
from tests.factories import BuildingFactory, ParcelFactory
from tests.tilesvc.conftest import tile_of
from tilesvc import vector


@pytest.fixture
def land(project):
    return {
        "cleared": ParcelFactory(code="SC-C", project=project, status=Status.CLEARED),
        "signed": ParcelFactory(
            code="SC-S", project=project, land_class=LandClass.STATE_FARM
        ),
        "speck": ParcelFactory(code="SC-X", project=project, side=4.0),
    }


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data)


def features_by_code(data: bytes, layer: str = "parcels") -> dict[str, dict]:
    return {
        f["properties"]["code"]: f
        for f in decode(data).get(layer, {"features": []})["features"]
    }


def render(layer, tile, **filters):
    return vector.render(layer, tile.z, tile.x, tile.y, filters)


def test_a_tile_holds_the_parcels_under_it_with_their_attributes(land):
    def under(parcel):
        return features_by_code(render(vector.PARCELS, tile_of(parcel.geom, 17)))

    found = {**under(land["cleared"]), **under(land["signed"])}

    cleared = found["SC-C"]
    assert cleared["id"] == land["cleared"].pk
    assert cleared["properties"]["project"] == "GM-SC"
    assert cleared["properties"]["status"] == "cleared"
    assert cleared["properties"]["cleared"] is True
    assert cleared["properties"]["area_m2"] == round(land["cleared"].area_m2)
    assert cleared["geometry"]["type"] == "Polygon"
    assert found["SC-S"]["properties"]["cleared"] is False
    assert found["SC-S"]["properties"]["land_class"] == "state_farm"


def test_specks_are_left_out_until_they_can_be_seen(land):
    far = render(vector.PARCELS, tile_of(land["speck"].geom, 15))
    near = render(vector.PARCELS, tile_of(land["speck"].geom, 17))

    assert "SC-X" not in features_by_code(far)  # 16 m²: under 3 × 3 pixels at z15
    assert "SC-X" in features_by_code(near)


def test_filters_keep_only_matching_parcels(land, other_project):
    tile = tile_of(land["cleared"].geom, 15)

    only_cleared = render(vector.PARCELS, tile, status=["cleared", "banked"])
    other = render(vector.PARCELS, tile, project=["GM-L6"])

    assert set(features_by_code(only_cleared)) == {"SC-C"}
    assert other == b""


def test_an_empty_tile_is_empty_bytes(db):
    assert vector.render(vector.PARCELS, 17, 0, 0, {}) == b""


def test_buildings_and_projects_have_their_own_layers(land, project):
    BuildingFactory(parcel=land["signed"], code="B-1")
    tile = tile_of(land["signed"].geom, 17)

    buildings = decode(render(vector.BUILDINGS, tile))
    projects = decode(render(vector.PROJECTS, tile))

    assert [f["properties"]["code"] for f in buildings["buildings"]["features"]] == [
        "B-1"
    ]
    assert (
        projects["projects"]["features"][0]["properties"]["name"] == "光明科学城启动区"
    )


def test_gdal_opens_a_tile(land, tmp_path):
    tile = tile_of(land["cleared"].geom, 16)
    path = tmp_path / "16" / str(tile.x) / f"{tile.y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(render(vector.PARCELS, tile))

    info = subprocess.run(
        ["ogrinfo", "-ro", "-al", "-so", "-oo", f"X={tile.x}", "-oo", f"Y={tile.y}",
         "-oo", "Z=16", f"MVT:{path}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip

    assert "Layer name: parcels" in info
    assert "Feature Count: 0" not in info
    assert "land_class: String" in info
    assert "cleared: Integer(Boolean)" in info
