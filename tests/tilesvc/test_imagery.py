"""Orthophoto ingest: GeoTIFF in, COG out, and refusals that leave nothing behind.

The test images are made here with rasterio: 1024 × 1024 pixels of 0.25 m in
EPSG:4547, left half red and right half blue, centred on the zoom-16 tile at the
middle of the test project, so that the tile's pixels can be predicted.
"""

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from registry.choices import Role
from registry.errors import PermissionRefused
from spatial.crs import transformer
from tests.factories import user_with_role
from tilesvc import imagery
from tilesvc.imagery import TMS, ImageryRefused, orthophoto_ingest
from tilesvc.models import Orthophoto

HAN = re.compile(r"[\u4e00-\u9fff]")
SIZE, RES = 1024, 0.25
RED, BLUE = (255, 0, 0), (0, 0, 255)
ZOOM = 16


@dataclass(frozen=True)
class Place:
    """Where a test image lies: its corner in EPSG:4547 and points to look at."""

    west: float
    north: float
    tile: object  # the zoom-16 morecantile Tile holding the whole image
    red: tuple[float, float]  # lon/lat in the middle of the left half
    blue: tuple[float, float]  # lon/lat in the middle of the right half
    outside: tuple[float, float]  # lon/lat in the same tile, off the image


def place_in(project) -> Place:
    """Return the place of the test image in ``project``: one zoom-16 tile."""
    to_lonlat = transformer(4547, 4326)
    centre = project.boundary.centroid
    tile = TMS.tile(*to_lonlat.transform(centre.x, centre.y), ZOOM)
    bounds = TMS.bounds(tile)
    mid_x, mid_y = transformer(4326, 4547).transform(
        (bounds.left + bounds.right) / 2, (bounds.bottom + bounds.top) / 2
    )
    half = SIZE * RES / 2  # 128 m; the tile is ≈ 560 m wide here
    west, north = mid_x - half, mid_y + half
    return Place(
        west=west,
        north=north,
        tile=tile,
        red=to_lonlat.transform(mid_x - half / 2, mid_y),
        blue=to_lonlat.transform(mid_x + half / 2, mid_y),
        outside=to_lonlat.transform(mid_x - 1.8 * half, mid_y + 1.8 * half),
    )


def halves(bands: int = 3, dtype: str = "uint8") -> np.ndarray:
    """Return an image whose left half is red and right half blue."""
    data = np.zeros((bands, SIZE, SIZE), dtype=dtype)
    for band, (left, right) in enumerate(zip(RED, BLUE, strict=True)):
        if band < bands:
            data[band, :, : SIZE // 2] = left
            data[band, :, SIZE // 2 :] = right
    if bands == 4:
        data[3] = 255
    return data


def write_geotiff(
    path: Path,
    *,
    west: float,
    north: float,
    data: np.ndarray | None = None,
    crs: str | None = "EPSG:4547",
    res: float = RES,
    **profile,
) -> Path:
    """Write ``data`` (red/blue halves by default) as a GeoTIFF at (west, north)."""
    data = halves() if data is None else data
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs=crs,
        transform=from_origin(west, north, res, res),
        compress="deflate",
        **profile,
    ) as dataset:
        dataset.write(data)
    return path


def decode(content: bytes, driver: str = "PNG") -> np.ndarray:
    """Return the bands of an encoded tile (RGBA: 4 × 256 × 256)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile(content) as memory, memory.open(driver=driver) as image:
            return image.read()


def pixel(rgba: np.ndarray, tile, lon: float, lat: float) -> tuple[int, ...]:
    """Return the RGBA value of the tile's pixel at ``lon``, ``lat``."""
    bounds = TMS.xy_bounds(tile)
    x, y = TMS.xy(lon, lat)
    size = rgba.shape[1]
    column = int((x - bounds.left) / (bounds.right - bounds.left) * size)
    row = int((bounds.top - y) / (bounds.top - bounds.bottom) * size)
    return tuple(int(value) for value in rgba[:, row, column])


def files_under(directory: Path) -> list[Path]:
    """Return every file (not folder) under ``directory``, but its owner's mark."""
    return sorted(
        p for p in directory.rglob("*") if p.is_file() and p.name != ".database"
    )


def assert_bilingual(error, english: str) -> None:
    """Assert the refusal says ``english``, and says it in Chinese too."""
    assert error.en == english
    assert error.zh != error.en, "no Chinese translation in the catalogue"
    assert HAN.search(error.zh), error.zh


def damaged_geotiff(path: Path, place: Place) -> Path:
    """Write a GeoTIFF whose header is sound and whose pixels cannot be decoded.

    GDAL opens it, then fails to read: the pixel data is zeroed, not the header.
    """
    noise = np.random.default_rng(7).integers(0, 255, (3, SIZE, SIZE), dtype="uint8")
    write_geotiff(
        path,
        west=place.west,
        north=place.north,
        data=noise,
        tiled=True,
        blockxsize=256,
        blockysize=256,
    )
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    content[middle : middle + 200_000] = bytes(200_000)
    path.write_bytes(bytes(content))
    return path


def assert_nothing_written(imagery_dir: Path) -> None:
    """Assert no orthophoto row and no file (COG or scratch) was left behind."""
    assert Orthophoto.objects.count() == 0
    assert files_under(imagery_dir) == []


@pytest.fixture
def geotiff(tmp_path, place) -> Path:
    """Return a red/blue GeoTIFF inside the test project."""
    return write_geotiff(
        tmp_path / "DJI_正射影像.tif", west=place.west, north=place.north
    )


def ingest(path: Path, project, actor, **kwargs) -> Orthophoto:
    return orthophoto_ingest(
        project=project, upload_path=path, title="2026年11月航拍", actor=actor, **kwargs
    )


def test_it_converts_a_geotiff_to_a_cloud_optimized_geotiff(
    geotiff, project, surveyor, imagery_dir, place
):
    orthophoto = ingest(geotiff, project, surveyor)

    cog = imagery.cog_path(orthophoto)
    assert cog.parent.parent == imagery_dir
    assert files_under(imagery_dir) == [cog]  # the scratch copy is gone
    with rasterio.open(cog) as dataset:
        profile = dataset.profile
        assert dataset.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert profile["tiled"] and profile["blockxsize"] == 512
        assert profile["compress"] == "deflate"
        assert dataset.crs.to_epsg() == 3857
        assert dataset.overviews(1)[0] == 2  # halved, then on down to a block
        assert dataset.count == 4  # RGB and the alpha band of the reprojection
    orthophoto.refresh_from_db()
    assert orthophoto.project == project
    assert orthophoto.uploaded_by == surveyor
    assert orthophoto.title == "2026年11月航拍"
    assert orthophoto.source_name == "DJI_正射影像.tif"
    assert orthophoto.source_crs == "EPSG:4547"
    assert (orthophoto.width, orthophoto.height, orthophoto.band_count) == (
        1024,
        1024,
        3,
    )
    assert orthophoto.resolution_m == pytest.approx(RES, rel=1e-3)
    assert orthophoto.size_bytes == cog.stat().st_size
    assert orthophoto.sha256 == imagery._sha256(cog)
    assert orthophoto.source_sha256 == imagery._sha256(geotiff)
    west, south, east, north = orthophoto.footprint.extent
    for lon, lat in (place.red, place.blue):
        assert west < lon < east and south < lat < north
    assert geotiff.exists()  # the caller's file is the caller's to remove


def test_it_serves_the_colours_where_they_are(geotiff, project, surveyor, place):
    orthophoto = ingest(geotiff, project, surveyor)

    rgba = decode(
        imagery.orthophoto_tile(
            orthophoto, z=ZOOM, x=place.tile.x, y=place.tile.y, img_format="png"
        )
    )

    assert rgba.shape == (4, 256, 256)
    assert pixel(rgba, place.tile, *place.red) == (*RED, 255)
    assert pixel(rgba, place.tile, *place.blue) == (*BLUE, 255)
    assert pixel(rgba, place.tile, *place.outside)[3] == 0  # transparent


def test_a_tile_away_from_the_image_is_empty(geotiff, project, surveyor, place):
    orthophoto = ingest(geotiff, project, surveyor)

    far = imagery.orthophoto_tile(
        orthophoto, z=ZOOM, x=place.tile.x + 3, y=place.tile.y, img_format="png"
    )

    assert far is None


def test_grey_and_rgba_images_are_taken(tmp_path, project, surveyor, place):
    grey = write_geotiff(
        tmp_path / "grey.tif", west=place.west, north=place.north, data=halves(1)
    )
    rgba = write_geotiff(
        tmp_path / "rgba.tif", west=place.west, north=place.north, data=halves(4)
    )

    taken = [ingest(path, project, surveyor) for path in (grey, rgba)]

    assert [o.band_count for o in taken] == [1, 4]
    tile = imagery.orthophoto_tile(
        taken[0], z=ZOOM, x=place.tile.x, y=place.tile.y, img_format="png"
    )
    assert pixel(decode(tile), place.tile, *place.red)[-1] == 255


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n" + bytes(100),
        b"<html><body>not an image</body></html>",
        b"GIF89a" + bytes(100),
    ],
    ids=["png", "html", "gif"],
)
def test_a_file_that_is_not_a_tiff_is_refused(
    content, tmp_path, project, surveyor, imagery_dir
):
    upload = tmp_path / "ortho.tif"
    upload.write_bytes(content)

    with pytest.raises(ImageryRefused) as refused:
        ingest(upload, project, surveyor)

    assert_bilingual(
        refused.value,
        "ortho.tif is not a GeoTIFF. Upload the orthophoto as a GeoTIFF (.tif).",
    )
    assert_nothing_written(imagery_dir)


def test_a_real_png_named_tif_is_refused(tmp_path, project, surveyor, imagery_dir):
    upload = tmp_path / "ortho.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            upload, "w", driver="PNG", width=8, height=8, count=3, dtype="uint8"
        ) as png:
            png.write(np.zeros((3, 8, 8), dtype="uint8"))

    with pytest.raises(ImageryRefused) as refused:
        ingest(upload, project, surveyor)

    assert refused.value.en.startswith("ortho.tif is not a GeoTIFF.")
    assert_nothing_written(imagery_dir)


def test_a_tiff_without_crs_is_refused(tmp_path, project, surveyor, place, imagery_dir):
    upload = write_geotiff(
        tmp_path / "no_crs.tif", west=place.west, north=place.north, crs=None
    )
    # A sidecar that GDAL would read by default gives no CRS: only the TIFF counts.
    crs = rasterio.crs.CRS.from_epsg(4547).to_wkt()
    (tmp_path / "no_crs.tif.aux.xml").write_text(
        f"<PAMDataset><SRS>{crs}</SRS></PAMDataset>"
    )

    with pytest.raises(ImageryRefused) as refused:
        ingest(upload, project, surveyor)

    assert_bilingual(
        refused.value,
        "no_crs.tif has no coordinate reference system. Export it as a GeoTIFF "
        "with its CRS embedded (for example EPSG:4547).",
    )
    assert_nothing_written(imagery_dir)


def test_only_the_gtiff_driver_may_open_an_upload(tmp_path):
    png = tmp_path / "ortho.png"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            png, "w", driver="PNG", width=8, height=8, count=3, dtype="uint8"
        ) as image:
            image.write(np.zeros((3, 8, 8), dtype="uint8"))

    # Past the signature check too: GDAL is not allowed to try its PNG driver.
    with pytest.raises(ImageryRefused) as refused, imagery._open_upload(png, "x.tif"):
        pass

    assert refused.value.en.startswith("x.tif cannot be read as a GeoTIFF: ")
    assert str(tmp_path) not in refused.value.en  # no server paths in messages


def test_a_tiff_without_geotransform_is_refused(
    tmp_path, project, surveyor, imagery_dir
):
    upload = tmp_path / "plain.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            upload, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8"
        ) as plain:
            plain.crs = "EPSG:4547"
            plain.write(np.zeros((3, 8, 8), dtype="uint8"))

    with pytest.raises(ImageryRefused) as refused:
        ingest(upload, project, surveyor)

    assert_bilingual(
        refused.value,
        "plain.tif has no north-up georeferencing (no geotransform, or a rotated "
        "one). Export it rectified, north up.",
    )
    assert_nothing_written(imagery_dir)


def test_a_tiff_far_from_the_project_is_refused(
    tmp_path, project, surveyor, place, imagery_dir
):
    upload = write_geotiff(
        tmp_path / "far.tif", west=place.west + 30_000, north=place.north
    )

    with pytest.raises(ImageryRefused) as refused:
        ingest(upload, project, surveyor)

    message = refused.value.en
    assert message.startswith("far.tif lies at longitude 114.")
    assert message.endswith(
        "which does not overlap project GM-SC. Check its coordinate reference system."
    )
    assert_bilingual(refused.value, message)
    assert_nothing_written(imagery_dir)


def test_a_tiff_in_another_project_is_refused(
    tmp_path, project, other_project, registry_admin, imagery_dir
):
    elsewhere = place_in(other_project)
    upload = write_geotiff(
        tmp_path / "other.tif", west=elsewhere.west, north=elsewhere.north
    )

    with pytest.raises(ImageryRefused) as refused:
        ingest(upload, project, registry_admin)

    assert "does not overlap project GM-SC" in refused.value.en
    assert_nothing_written(imagery_dir)


def test_a_tiff_too_large_in_pixels_is_refused_before_reading_them(
    tmp_path, project, surveyor, place, imagery_dir
):
    # 50,000 × 50,000 declared, no tile written: a few hundred kilobytes.
    upload = tmp_path / "huge.tif"
    with rasterio.open(
        upload,
        "w",
        driver="GTiff",
        width=50_000,
        height=50_000,
        count=3,
        dtype="uint8",
        crs="EPSG:4547",
        transform=from_origin(place.west, place.north, 0.01, 0.01),
        tiled=True,
        blockxsize=512,
        blockysize=512,
        sparse_ok=True,
        compress="deflate",
    ):
        pass
    assert upload.stat().st_size < 2_000_000

    with pytest.raises(ImageryRefused) as refused:
        ingest(upload, project, surveyor)

    assert_bilingual(
        refused.value,
        "huge.tif is 50,000 × 50,000 pixels; an orthophoto may be at most 40,000 "
        "pixels on a side and 1,000,000,000 pixels in all. Split it into tiles or "
        "lower its resolution.",
    )
    assert_nothing_written(imagery_dir)


def test_the_pixel_budget_comes_from_settings(
    settings, geotiff, project, surveyor, imagery_dir
):
    settings.IMAGERY_LIMITS = {"pixels": 1000 * 1000}

    with pytest.raises(ImageryRefused) as refused:
        ingest(geotiff, project, surveyor)

    assert "at most 40,000 pixels on a side and 1,000,000 pixels" in refused.value.en
    assert_nothing_written(imagery_dir)


def test_a_file_over_the_byte_limit_is_refused(
    settings, geotiff, project, surveyor, imagery_dir
):
    settings.IMAGERY_LIMITS = {"upload_bytes": 1000}
    size = geotiff.stat().st_size

    with pytest.raises(ImageryRefused) as refused:
        ingest(geotiff, project, surveyor)

    assert_bilingual(
        refused.value,
        f"DJI_正射影像.tif is {size:,} bytes; an orthophoto may be at most 1,000 "
        "bytes.",
    )
    assert_nothing_written(imagery_dir)


def test_an_empty_file_is_refused(tmp_path, project, surveyor, imagery_dir):
    upload = tmp_path / "empty.tif"
    upload.write_bytes(b"")

    with pytest.raises(ImageryRefused) as refused:
        ingest(upload, project, surveyor)

    assert_bilingual(refused.value, "empty.tif is empty.")
    assert_nothing_written(imagery_dir)


@pytest.mark.parametrize(
    ("data", "english"),
    [
        (
            halves(3, "uint16"),
            "deep.tif holds uint16 values; only 8-bit images (Byte) can be shown "
            "on the map. Export it as 8-bit.",
        ),
        (
            halves(2),
            "deep.tif has 2 bands; an orthophoto has 1 (grey), 3 (RGB) or 4 (RGBA).",
        ),
    ],
    ids=["16-bit", "2-bands"],
)
def test_images_the_map_cannot_show_are_refused(
    data, english, tmp_path, project, surveyor, place, imagery_dir
):
    upload = write_geotiff(
        tmp_path / "deep.tif", west=place.west, north=place.north, data=data
    )

    with pytest.raises(ImageryRefused) as refused:
        ingest(upload, project, surveyor)

    assert_bilingual(refused.value, english)
    assert_nothing_written(imagery_dir)


def test_a_damaged_tiff_is_refused_and_leaves_nothing(
    tmp_path, project, surveyor, place, imagery_dir
):
    upload = damaged_geotiff(tmp_path / "cut.tif", place)

    with pytest.raises(ImageryRefused) as refused:
        ingest(upload, project, surveyor)

    assert refused.value.en.startswith("cut.tif ")
    assert_nothing_written(imagery_dir)


def test_the_same_file_twice_is_refused(geotiff, project, surveyor, imagery_dir):
    first = ingest(geotiff, project, surveyor)

    with pytest.raises(ImageryRefused) as refused:
        ingest(geotiff, project, surveyor, name="copy.tif")

    assert_bilingual(
        refused.value,
        "copy.tif was already uploaded to project GM-SC, as “2026年11月航拍” "
        f"(no. {first.pk}).",
    )
    assert Orthophoto.objects.count() == 1
    assert files_under(imagery_dir) == [imagery.cog_path(first)]


def test_a_title_is_required(geotiff, project, surveyor, imagery_dir):
    with pytest.raises(ImageryRefused) as refused:
        orthophoto_ingest(
            project=project, upload_path=geotiff, title="  ", actor=surveyor
        )

    assert_bilingual(refused.value, "Give the orthophoto DJI_正射影像.tif a title.")
    assert_nothing_written(imagery_dir)


@pytest.mark.parametrize(
    "persona", ["planner", "analyst", "case_officer", "outsider", "surveyor_elsewhere"]
)
def test_only_surveyors_of_the_project_and_admins_may_upload(
    persona, request, geotiff, project, other_project, imagery_dir
):
    if persona == "surveyor_elsewhere":
        actor = user_with_role(Role.SURVEYOR, other_project, username="elsewhere")
    else:
        actor = request.getfixturevalue(persona)

    with pytest.raises(PermissionRefused) as refused:
        ingest(geotiff, project, actor)

    assert_bilingual(refused.value, "You may not upload orthophotos to project GM-SC.")
    assert_nothing_written(imagery_dir)


def test_a_registry_admin_may_upload_to_any_project(geotiff, project, registry_admin):
    assert ingest(geotiff, project, registry_admin).uploaded_by == registry_admin


def test_deleting_an_orthophoto_removes_its_cog_once_committed(
    geotiff, project, surveyor, registry_admin, django_capture_on_commit_callbacks
):
    orthophoto = ingest(geotiff, project, surveyor)
    cog = imagery.cog_path(orthophoto)

    with pytest.raises(PermissionRefused):
        imagery.orthophoto_delete(orthophoto=orthophoto, actor=surveyor)
    with django_capture_on_commit_callbacks(execute=True):
        imagery.orthophoto_delete(orthophoto=orthophoto, actor=registry_admin)

    assert Orthophoto.objects.count() == 0
    assert not cog.exists()
