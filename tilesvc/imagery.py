"""Orthophotos in, raster tiles out: check an upload, convert it, read tiles from it.

Uploads are untrusted. Only GDAL's GTiff driver may open one (rasterio's
``driver``, i.e. GDAL's allowed drivers), after its first bytes have been checked
for a TIFF signature, and with georeferencing read from the file alone
(``GEOREF_SOURCES=INTERNAL``): GDAL is told the upload's directory is empty, so no
sidecar ``.ovr``, ``.aux.xml`` or world file from anywhere is consulted, and never
to write one. The header's size in pixels is checked against the limits before a
single pixel is decoded, which also bounds what a compression bomb can expand to.
Nothing is written until every check has passed; the COG is built in a scratch
directory and renamed into place, and only then is the row inserted.

The served copy is in EPSG:3857 (Web Mercator), at the source's own resolution.
Keeping EPSG:4547 and letting rio-tiler reproject every tile was measured at
≈ 115 ms per 256-pixel tile on the development machine, nearly all of it PROJ
building the CGCS2000 → Web Mercator transformation afresh for each dataset it
opens; from a Web Mercator COG the same tile reads in ≈ 5 ms. The one resampling
(bilinear) happens once, at ingest. The source's CRS, resolution and digest stay
on the row. The COG is not snapped to the tile grid (GDAL's ``GoogleMapsCompatible``
scheme) because that rounds the resolution to a zoom level, either throwing detail
away or inflating the file up to four times.

Conversion is synchronous and bounded by ``IMAGERY_LIMITS`` (see ``limits()``).
The default 64 megapixels (8,000 × 8,000) took 12-21 s on the two-core
development machine while it was busy with other work (3-5 megapixels a second),
inside gunicorn's default 30 s worker timeout. Larger deliveries (a 2.5 km
project at 10 cm is 625 megapixels) need a background job like the importer's.
"""

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import morecantile
import rasterio
import rasterio.shutil
from django.conf import settings
from django.contrib.gis.geos import Polygon
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _
from rasterio._err import CPLE_BaseError
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.warp import calculate_default_transform, transform_bounds
from rio_tiler.constants import WGS84_CRS
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader

from registry import access
from registry.errors import NotFound, PermissionRefused, RegistryError
from registry.models import Project
from spatial.crs import STORAGE_SRID, WEB_MERCATOR_SRID, WGS84_SRID
from tilesvc.models import Orthophoto

#: The tile grid of every XYZ client (OSM, MapLibre, Leaflet, OpenLayers).
TMS = morecantile.tms.get("WebMercatorQuad")
TILE_SIZE = 256
TILE_FORMATS = {"png": "image/png", "webp": "image/webp"}
#: Part of every tile's ETag: change it when tiles would render differently.
RENDERING = "1"

DEFAULT_LIMITS = {
    # What a surveyor may send in one request.
    "upload_bytes": 512 * 1024**2,
    # No side longer than this, whatever the pixel budget.
    "side_px": 40_000,
    # The synchronous conversion's budget: width × height (see the module's notes).
    "pixels": 64_000_000,
}

_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # + is BigTIFF
_BANDS = {1: "grey", 3: "RGB", 4: "RGBA"}
_CHUNK = 1 << 20
# What GDAL raises about a file: rasterio's own errors, and GDAL's errors passed
# through as they are (a damaged block surfaces only when it is read). rasterio
# exports the latter only from its private module.
_GDAL_ERRORS = (RasterioError, CPLE_BaseError)

# GDAL configuration for every open of an upload or a COG. Listing the directory
# would find sidecar files (and costs a scan of a directory of thousands of COGs
# on every tile); PAM would write .aux.xml files next to them. The block cache is
# bounded per process; beware that rasterio hands an int on as *bytes*: a bare
# 256 meant 256 bytes and made tiles read from overviews take 4-8 s instead of
# 15-50 ms.
_GDAL_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_PAM_ENABLED": "NO",
    "GDAL_CACHEMAX": 128 * 1024**2,
}

# The served copy: tiled 512 × 512, lossless (the registry keeps evidence, not
# just a picture; lossy WebP tiles are the client's choice), overviews averaged
# (photos, not categories), built afresh rather than trusting the upload's own.
COG_OPTIONS = {
    "TARGET_SRS": f"EPSG:{WEB_MERCATOR_SRID}",
    "WARP_RESAMPLING": "BILINEAR",
    "BLOCKSIZE": 512,
    "COMPRESS": "DEFLATE",
    "PREDICTOR": "YES",
    "LEVEL": 6,
    "OVERVIEWS": "IGNORE_EXISTING",
    "OVERVIEW_RESAMPLING": "AVERAGE",
    "NUM_THREADS": "ALL_CPUS",
    "BIGTIFF": "IF_SAFER",
}


class ImageryRefused(RegistryError):
    """The uploaded orthophoto cannot be taken; nothing was written."""


@dataclass(frozen=True)
class Limits:
    """How large an orthophoto may be, in bytes and in pixels."""

    upload_bytes: int
    side_px: int
    pixels: int


def limits() -> Limits:
    """Return the limits: ``settings.IMAGERY_LIMITS`` over ``DEFAULT_LIMITS``."""
    return Limits(**{**DEFAULT_LIMITS, **getattr(settings, "IMAGERY_LIMITS", {})})


def imagery_dir() -> Path:
    """Return the private directory holding the COGs (never served directly)."""
    default = Path(settings.BASE_DIR) / "var" / "imagery"
    return Path(getattr(settings, "IMAGERY_DIR", default))


def cog_path(orthophoto: Orthophoto) -> Path:
    """Return where the orthophoto's COG lies on disk."""
    return imagery_dir() / orthophoto.file


@dataclass(frozen=True)
class _Source:
    """What was learnt about an upload before converting it."""

    width: int
    height: int
    band_count: int
    crs: str
    footprint: Polygon
    resolution_m: float


def orthophoto_ingest(
    *,
    project: Project,
    upload_path: str | Path,
    title: str,
    actor,
    name: str | None = None,
    captured_on: date | None = None,
) -> Orthophoto:
    """Check an uploaded GeoTIFF, convert it to a COG and record it for ``project``.

    ``name`` is the surveyor's file name, used in messages and kept on the row
    (the path's own name by default). Raise ``PermissionRefused`` unless the actor
    may import into the project, and ``ImageryRefused`` when the file is not an
    8-bit GeoTIFF with a CRS, breaks a limit, lies outside the project or was
    uploaded before. On any refusal nothing is written: no row, no file.
    """
    if not access.can_import(actor, project):
        raise PermissionRefused(
            _("You may not upload orthophotos to project %(project)s."),
            project=project.code,
        )
    path = Path(upload_path)
    name = name or path.name
    title = title.strip()
    if not title:
        raise ImageryRefused(_("Give the orthophoto %(file)s a title."), file=name)
    bounds = limits()
    _check_file(path, name=name, limits=bounds)
    source_sha256 = _sha256(path)
    _refuse_duplicate(project, source_sha256, name)
    with rasterio.Env(**_GDAL_ENV), _open_upload(path, name) as source:
        facts = _inspect(source, name=name, project=project, limits=bounds)
        relative, sha256, size = _write_cog(source, name=name, project=project)
    try:
        with transaction.atomic():
            return Orthophoto.objects.create(
                project=project,
                title=title[:200],
                source_name=name[:255],
                uploaded_by=actor,
                captured_on=captured_on,
                file=relative,
                source_crs=facts.crs,
                footprint=facts.footprint,
                resolution_m=facts.resolution_m,
                width=facts.width,
                height=facts.height,
                band_count=facts.band_count,
                size_bytes=size,
                sha256=sha256,
                source_sha256=source_sha256,
            )
    except IntegrityError:
        (imagery_dir() / relative).unlink(missing_ok=True)
        # Two uploads of one file at once both pass the check above; the unique
        # constraint lets one in, and the other gets the answer a later one would.
        _refuse_duplicate(project, source_sha256, name)
        raise
    except BaseException:
        (imagery_dir() / relative).unlink(missing_ok=True)
        raise


def orthophoto_list(*, project: Project | None = None):
    """Return the orthophotos of ``project`` (or of all), newest first."""
    orthophotos = Orthophoto.objects.select_related("project", "uploaded_by")
    if project is not None:
        orthophotos = orthophotos.filter(project=project)
    return orthophotos.order_by("project__code", "-uploaded_at", "-pk")


def orthophoto_delete(*, orthophoto: Orthophoto, actor) -> None:
    """Delete an orthophoto and, once the deletion is committed, its COG."""
    if not access.is_registry_admin(actor):
        raise PermissionRefused(_("Only registry administrators delete orthophotos."))
    path = cog_path(orthophoto)
    with transaction.atomic():
        orthophoto.delete()
        transaction.on_commit(lambda: path.unlink(missing_ok=True))


@contextlib.contextmanager
def upload_on_disk(upload: UploadedFile) -> Iterator[Path]:
    """Yield a private copy of an uploaded file, removed afterwards.

    The copy sits alone in a fresh directory, under a name of this code's
    choosing; the surveyor's file name never becomes a path.
    """
    limit = limits().upload_bytes
    if upload.size is not None and upload.size > limit:
        raise _too_large(upload.name, upload.size, limit)
    scratch = Path(tempfile.mkdtemp(prefix="upload-", dir=_scratch_root()))
    try:
        path = scratch / "upload.tif"
        written = 0
        with open(path, "xb") as sink:
            for chunk in upload.chunks(_CHUNK):
                written += len(chunk)
                if written > limit:  # the declared size can lie
                    raise _too_large(upload.name, written, limit)
                sink.write(chunk)
        yield path
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def orthophoto_tile(
    orthophoto: Orthophoto, *, z: int, x: int, y: int, img_format: str
) -> bytes | None:
    """Return tile z/x/y of the orthophoto as PNG or WebP, or None where it is empty.

    Raise ``NotFound`` for a tile that does not exist in the grid.
    """
    if img_format not in TILE_FORMATS:
        raise ValueError(f"no tile format {img_format!r}")
    if not (TMS.minzoom <= z <= TMS.maxzoom and 0 <= x < 2**z and 0 <= y < 2**z):
        raise NotFound(
            _("There is no tile %(z)s/%(x)s/%(y)s in layer %(layer)s."),
            z=z,
            x=x,
            y=y,
            layer=f"imagery/{orthophoto.pk}",
        )
    with _open_cog(orthophoto) as cog:
        try:
            image = cog.tile(x, y, z, tilesize=TILE_SIZE)
        except TileOutsideBounds:
            return None
    if not image.mask.any():  # inside the bounding box, outside the photo
        return None
    return image.render(img_format=img_format.upper())


@dataclass(frozen=True)
class TileSetFacts:
    """What a TileJSON document says about an orthophoto, read from its COG."""

    bounds: tuple[float, float, float, float]
    minzoom: int
    maxzoom: int


def orthophoto_tileset(orthophoto: Orthophoto) -> TileSetFacts:
    """Return the WGS84 bounds and zoom range at which the COG has detail."""
    with _open_cog(orthophoto) as cog:
        west, south, east, north = cog.get_geographic_bounds(WGS84_CRS)
        return TileSetFacts(
            bounds=(west, south, east, north),
            minzoom=cog.minzoom,
            maxzoom=cog.maxzoom,
        )


@contextlib.contextmanager
def _open_cog(orthophoto: Orthophoto) -> Iterator[Reader]:
    # The COG is this code's own output, but it is opened as strictly as an
    # upload all the same: one driver, no directory listing.
    with (
        rasterio.Env(**_GDAL_ENV),
        rasterio.open(cog_path(orthophoto), driver="GTiff") as dataset,
        Reader(None, dataset=dataset, tms=TMS) as cog,
    ):
        yield cog


def _check_file(path: Path, *, name: str, limits: Limits) -> None:
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(4)
    except FileNotFoundError as error:
        raise ImageryRefused(
            _("The uploaded file %(file)s is no longer available; upload it again."),
            file=name,
        ) from error
    if size == 0:
        raise ImageryRefused(_("%(file)s is empty."), file=name)
    if size > limits.upload_bytes:
        raise _too_large(name, size, limits.upload_bytes)
    if head not in _TIFF_SIGNATURES:
        raise _not_geotiff(name)


@contextlib.contextmanager
def _open_upload(path: Path, name: str) -> Iterator[rasterio.DatasetReader]:
    try:
        with warnings.catch_warnings():
            # An image without a geotransform is refused below, in words.
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            dataset = rasterio.open(path, driver="GTiff", GEOREF_SOURCES="INTERNAL")
    except _GDAL_ERRORS as error:
        raise ImageryRefused(
            _("%(file)s cannot be read as a GeoTIFF: %(error)s"),
            file=name,
            error=_gdal_message(error, path, name),
        ) from error
    with dataset:
        yield dataset


def _inspect(
    source: rasterio.DatasetReader, *, name: str, project: Project, limits: Limits
) -> _Source:
    """Check the upload's header; return what the row needs to know about it."""
    if source.driver != "GTiff":  # cannot happen with driver="GTiff"; belt and braces
        raise _not_geotiff(name)
    if source.crs is None:
        raise ImageryRefused(
            _(
                "%(file)s has no coordinate reference system. Export it as a "
                "GeoTIFF with its CRS embedded (for example EPSG:4547)."
            ),
            file=name,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # refused next
        transform = source.transform
    if transform.is_identity or transform.b or transform.d:
        raise ImageryRefused(
            _(
                "%(file)s has no north-up georeferencing (no geotransform, or a "
                "rotated one). Export it rectified, north up."
            ),
            file=name,
        )
    width, height = source.width, source.height
    if max(width, height) > limits.side_px or width * height > limits.pixels:
        raise ImageryRefused(
            _(
                "%(file)s is %(width)s × %(height)s pixels; an orthophoto may be at "
                "most %(side)s pixels on a side and %(pixels)s pixels in all. "
                "Split it into tiles or lower its resolution."
            ),
            file=name,
            width=f"{width:,}",
            height=f"{height:,}",
            side=f"{limits.side_px:,}",
            pixels=f"{limits.pixels:,}",
        )
    if source.count not in _BANDS:
        raise ImageryRefused(
            _(
                "%(file)s has %(count)s bands; an orthophoto has 1 (grey), 3 (RGB) "
                "or 4 (RGBA)."
            ),
            file=name,
            count=source.count,
        )
    if set(source.dtypes) != {"uint8"}:
        raise ImageryRefused(
            _(
                "%(file)s holds %(dtype)s values; only 8-bit images (Byte) can be "
                "shown on the map. Export it as 8-bit."
            ),
            file=name,
            dtype=", ".join(sorted(set(source.dtypes))),
        )
    try:
        footprint = Polygon.from_bbox(
            _finite(transform_bounds(source.crs, f"EPSG:{WGS84_SRID}", *source.bounds))
        )
        local = Polygon.from_bbox(
            _finite(
                transform_bounds(source.crs, f"EPSG:{STORAGE_SRID}", *source.bounds)
            )
        )
        placed, _width, _height = calculate_default_transform(
            source.crs, f"EPSG:{STORAGE_SRID}", width, height, *source.bounds
        )
    except (*_GDAL_ERRORS, ValueError) as error:
        raise ImageryRefused(
            _(
                "%(file)s cannot be placed on the map: its coordinates do not "
                "transform to EPSG:4547 (%(error)s)."
            ),
            file=name,
            error=str(error)[:200],
        ) from error
    footprint.srid, local.srid = WGS84_SRID, STORAGE_SRID
    # Interiors must meet: an image that only touches the boundary shows nothing.
    if not project.boundary.relate_pattern(local, "T********"):
        west, south, east, north = footprint.extent
        raise ImageryRefused(
            _(
                "%(file)s lies at longitude %(west)s–%(east)s, latitude "
                "%(south)s–%(north)s, which does not overlap project %(project)s. "
                "Check its coordinate reference system."
            ),
            file=name,
            west=f"{west:.4f}",
            east=f"{east:.4f}",
            south=f"{south:.4f}",
            north=f"{north:.4f}",
            project=project.code,
        )
    return _Source(
        width=width,
        height=height,
        band_count=source.count,
        crs=source.crs.to_string(),
        footprint=footprint,
        resolution_m=(abs(placed.a) + abs(placed.e)) / 2,
    )


def _write_cog(
    source: rasterio.DatasetReader, *, name: str, project: Project
) -> tuple[str, str, int]:
    """Convert the upload to a COG in place; return its relative path, digest, size.

    The COG is written in a scratch directory on the same file system and renamed
    into place, so a reader never sees half a file and a failure leaves nothing.
    """
    root = imagery_dir()
    scratch = Path(tempfile.mkdtemp(prefix="cog-", dir=_scratch_root()))
    try:
        built = scratch / "cog.tif"
        try:
            rasterio.shutil.copy(source, built, driver="COG", **COG_OPTIONS)
        except _GDAL_ERRORS as error:
            raise ImageryRefused(
                _("%(file)s could not be converted: %(error)s"),
                file=name,
                error=_gdal_message(error, Path(source.name), name),
            ) from error
        with rasterio.open(built, driver="GTiff") as cog:
            layout = cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT")
            if layout != "COG" or cog.crs.to_epsg() != WEB_MERCATOR_SRID:
                raise RuntimeError(f"GDAL wrote no EPSG:3857 COG for {name}")
        sha256, size = _sha256(built), built.stat().st_size
        with open(built, "rb") as handle:
            os.fsync(handle.fileno())  # on disk before the row says it exists
        relative = f"{project.pk}/{uuid.uuid4().hex}.tif"
        target = root / relative
        target.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(built, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return relative, sha256, size


def _scratch_root() -> Path:
    # Under the imagery directory, so that the final rename stays on one file
    # system and large temporary files do not fill a small /tmp.
    scratch = imagery_dir() / "tmp"
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    return scratch


def _refuse_duplicate(project: Project, source_sha256: str, name: str) -> None:
    earlier = Orthophoto.objects.filter(
        project=project, source_sha256=source_sha256
    ).first()
    if earlier is not None:
        raise ImageryRefused(
            _(
                "%(file)s was already uploaded to project %(project)s, as "
                "“%(title)s” (no. %(id)s)."
            ),
            file=name,
            project=project.code,
            title=earlier.title,
            id=earlier.pk,
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _gdal_message(error: Exception, path: Path, name: str) -> str:
    # GDAL names the file it read; the surveyor should see their own file name,
    # not where the server keeps its copy.
    text = str(error).replace(str(path), name).replace(path.name, name)
    return text[:200]


def _finite(bounds: tuple[float, ...]) -> tuple[float, ...]:
    if not all(abs(value) < float("inf") for value in bounds):
        raise ValueError("infinite coordinates")
    return bounds


def _not_geotiff(name: str) -> ImageryRefused:
    return ImageryRefused(
        _("%(file)s is not a GeoTIFF. Upload the orthophoto as a GeoTIFF (.tif)."),
        file=name,
    )


def _too_large(name: str, size: int, limit: int) -> ImageryRefused:
    return ImageryRefused(
        _("%(file)s is %(size)s bytes; an orthophoto may be at most %(limit)s bytes."),
        file=name,
        size=f"{size:,}",
        limit=f"{limit:,}",
    )
