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

An upload is taken in two steps. ``orthophoto_accept`` runs in the request:
every check that reads only the header (and the file's digest), then the upload
is kept under ``IMAGERY_DIR/incoming`` and the row written, ``queued``.
``orthophoto_convert`` runs in the job ``tilesvc.convert_orthophoto`` (on
procrastinate's PostgreSQL queue, like the importer's): it reprojects the image
window by window into a scratch GeoTIFF, recording its progress on the row, then
lets GDAL's COG driver build the overviews and the final layout, and renames the
COG into place. Memory stays bounded whatever the image's size: a window of at
most ``WINDOW_PX`` square is read at a time, GDAL's block cache is bounded and the
COG driver works block by block. Conversion ran at 3-5 megapixels a second on the
busy two-core development machine, so the default limit of 1,000 megapixels (a
2.5 km project at 8 cm) takes a few minutes in the worker. Every scratch file is
removed when a conversion ends, however it ends; ``sweep`` removes what a killed
worker left behind and fails its row (run every 10 minutes, and before every
conversion).
"""

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path

import morecantile
import rasterio
import rasterio.shutil
from django.conf import settings
from django.contrib.gis.geos import Polygon
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rasterio._err import CPLE_BaseError
from rasterio.enums import ColorInterp, Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform, transform_bounds
from rasterio.windows import Window
from rio_tiler.constants import WGS84_CRS
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader

from registry import access
from registry.errors import NotFound, PermissionRefused, RegistryError
from registry.models import Project
from spatial.crs import STORAGE_SRID, WEB_MERCATOR_SRID, WGS84_SRID
from tilesvc.models import Orthophoto

log = logging.getLogger(__name__)

#: The tile grid of every XYZ client (OSM, MapLibre, Leaflet, OpenLayers).
TMS = morecantile.tms.get("WebMercatorQuad")
TILE_SIZE = 256
TILE_FORMATS = {"png": "image/png", "webp": "image/webp"}
#: Part of every tile's ETag: change it when tiles would render differently.
RENDERING = "1"

DEFAULT_LIMITS = {
    # What a surveyor may send in one request.
    "upload_bytes": 2 * 1024**3,
    # No side longer than this, whatever the pixel budget.
    "side_px": 40_000,
    # The conversion's budget: width × height (see the module's notes).
    "pixels": 1_000_000_000,
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
    "BLOCKSIZE": 512,
    "COMPRESS": "DEFLATE",
    "PREDICTOR": "YES",
    "LEVEL": 6,
    "OVERVIEWS": "IGNORE_EXISTING",
    "OVERVIEW_RESAMPLING": "AVERAGE",
    "NUM_THREADS": "ALL_CPUS",
    "BIGTIFF": "IF_SAFER",
}


#: The largest window reprojected at once (pixels a side): 2048² × 4 bands of 8
#: bits is 16 MB, and a window is a whole number of the scratch file's blocks.
WINDOW_PX = 2048
# The scratch copy in Web Mercator, read once by the COG driver: fast to write.
_SCRATCH_OPTIONS = {
    "tiled": True,
    "blockxsize": 512,
    "blockysize": 512,
    "compress": "ZSTD",
    "zstd_level": 1,
    "BIGTIFF": "IF_SAFER",
}
#: Where the conversion stands, as (percent, stage) milestones; reprojecting the
#: windows fills the range between the first two.
STAGES = {"reprojecting": 2, "compressing": 80, "checking": 97}
STAGE_LABELS = {
    "reprojecting": _("reprojecting to Web Mercator"),
    "compressing": _("building overviews and compressing"),
    "checking": _("checking the result"),
}
#: A scratch directory or kept upload this old belongs to no running request.
ORPHAN_AGE_S = 3600


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


def orthophoto_accept(
    *,
    project: Project,
    upload_path: str | Path,
    title: str,
    actor,
    name: str | None = None,
    captured_on: date | None = None,
    move: bool = False,
) -> Orthophoto:
    """Check an uploaded GeoTIFF's header and keep it for conversion, ``queued``.

    ``name`` is the surveyor's file name, used in messages and kept on the row
    (the path's own name by default). ``move`` lets the upload be moved instead
    of copied (a private copy, as ``upload_on_disk`` makes). Raise
    ``PermissionRefused`` unless the actor may import into the project, and
    ``ImageryRefused`` when the file is not an 8-bit GeoTIFF with a CRS, breaks
    a limit, lies outside the project or was uploaded before. On any refusal
    nothing is written: no row, no file. Call it in a transaction that also
    queues the conversion (``tilesvc.tasks.submit``), or convert it yourself.
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
    kept = _keep_upload(path, move=move)
    try:
        with transaction.atomic():
            return Orthophoto.objects.create(
                project=project,
                title=title[:200],
                source_name=name[:255],
                uploaded_by=actor,
                captured_on=captured_on,
                upload=kept,
                source_crs=facts.crs,
                footprint=facts.footprint,
                resolution_m=facts.resolution_m,
                width=facts.width,
                height=facts.height,
                band_count=facts.band_count,
                source_sha256=source_sha256,
            )
    except IntegrityError:
        (imagery_dir() / kept).unlink(missing_ok=True)
        # Two uploads of one file at once both pass the check above; the unique
        # constraint lets one in, and the other gets the answer a later one would.
        _refuse_duplicate(project, source_sha256, name)
        raise
    except BaseException:
        (imagery_dir() / kept).unlink(missing_ok=True)
        raise


Progress = Callable[[int, str], None]


def orthophoto_convert(orthophoto: Orthophoto) -> Orthophoto:
    """Convert the kept upload to the served COG; the row ends ready or failed.

    Progress is written to the row as it goes (the job's own updates, each
    committed at once, so the page sees them). On failure the row is ``failed``
    with the reason in both languages and the error is raised again; either way
    the kept upload and every scratch file are removed.
    """
    started = Orthophoto.objects.filter(
        pk=orthophoto.pk,
        # Converting too: a job retried after its worker stopped.
        state__in=[Orthophoto.State.QUEUED, Orthophoto.State.CONVERTING],
    ).update(state=Orthophoto.State.CONVERTING, progress=0, stage="reprojecting")
    if not started:  # done already, failed, or deleted: nothing to do twice
        with contextlib.suppress(Orthophoto.DoesNotExist):
            orthophoto.refresh_from_db()
        return orthophoto
    orthophoto.state = Orthophoto.State.CONVERTING
    record = _progress_recorder(orthophoto)
    upload = imagery_dir() / orthophoto.upload if orthophoto.upload else None
    name = orthophoto.source_name
    try:
        if upload is None or not upload.is_file():
            raise ImageryRefused(
                _(
                    "The upload of %(file)s is no longer on the server (the "
                    "conversion was interrupted); upload it again."
                ),
                file=name,
            )
        with rasterio.Env(**_GDAL_ENV), _open_upload(upload, name) as source:
            _write_cog(
                source,
                name=name,
                orthophoto=orthophoto,
                progress=record,
                place=partial(_place, orthophoto),
            )
    except BaseException as error:
        _fail(orthophoto, error)
        raise
    finally:
        if upload is not None:
            upload.unlink(missing_ok=True)
    return orthophoto


def _place(orthophoto: Orthophoto, built: Path, sha256: str, size: int) -> None:
    """Rename the built COG into place and make the row ready, both or neither.

    Only a row still converting becomes ready: one deleted (or failed by the
    sweep) meanwhile keeps no COG.
    """
    relative = f"{orthophoto.project_id}/{uuid.uuid4().hex}.tif"
    target = imagery_dir() / relative
    target.parent.mkdir(mode=0o700, exist_ok=True)
    done = {
        "state": Orthophoto.State.READY,
        "file": relative,
        "sha256": sha256,
        "size_bytes": size,
        "progress": 100,
        "stage": "",
        "upload": "",
        "converted_at": timezone.now(),
    }
    try:
        with transaction.atomic():
            ready = Orthophoto.objects.filter(
                pk=orthophoto.pk, state=Orthophoto.State.CONVERTING
            ).update(**done)
            if ready:
                os.replace(built, target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    if ready:
        for field, value in done.items():
            setattr(orthophoto, field, value)
    else:
        with contextlib.suppress(Orthophoto.DoesNotExist):
            orthophoto.refresh_from_db()


def orthophoto_ingest(**kwargs) -> Orthophoto:
    """Accept and convert an orthophoto now, in this process (``orthophoto_accept``).

    For scripts and tests that want the COG at once. A conversion that fails
    leaves nothing, as a refusal of the header does: the row goes with it.
    """
    orthophoto = orthophoto_accept(**kwargs)
    try:
        return orthophoto_convert(orthophoto)
    except BaseException:
        Orthophoto.objects.filter(pk=orthophoto.pk).delete()
        raise


def _progress_recorder(orthophoto: Orthophoto) -> Progress:
    """Return a writer of the conversion's progress that skips repeated values."""
    last = {}

    def record(percent: int, stage: str, **fields) -> None:
        if last.get("at") == (percent, stage) and not fields:
            return
        last["at"] = (percent, stage)
        Orthophoto.objects.filter(pk=orthophoto.pk).update(
            progress=percent, stage=stage, **fields
        )
        orthophoto.progress, orthophoto.stage = percent, stage
        for field, value in fields.items():
            setattr(orthophoto, field, value)

    return record


def _fail(orthophoto: Orthophoto, error: BaseException) -> None:
    """Record why the conversion failed, in Chinese and English."""
    if not isinstance(error, RegistryError):
        log.error("orthophoto %s: conversion failed", orthophoto.pk, exc_info=error)
        error = ImageryRefused(
            _(
                "%(file)s could not be converted: the server failed while "
                "converting it (%(error)s). Upload it again; if it fails again, "
                "tell an administrator."
            ),
            file=orthophoto.source_name,
            error=type(error).__name__,
        )
    orthophoto.state, orthophoto.failure = Orthophoto.State.FAILED, error.as_dict()
    Orthophoto.objects.filter(pk=orthophoto.pk).exclude(
        state=Orthophoto.State.READY
    ).update(state=orthophoto.state, failure=orthophoto.failure, upload="")


def _keep_upload(path: Path, *, move: bool) -> str:
    """Keep the upload under ``incoming/`` for the job; return its relative path."""
    _mark_owner()
    relative = f"incoming/{uuid.uuid4().hex}.tif"
    target = imagery_dir() / relative
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if move:
        os.replace(path, target)  # the scratch root is on the same file system
    else:
        shutil.copyfile(path, target)
    return relative


def orthophoto_list(*, project: Project | None = None, every_state: bool = False):
    """Return the ready orthophotos of ``project`` (or of all), newest first.

    ``every_state`` adds those still converting and those that failed.
    """
    orthophotos = Orthophoto.objects.select_related("project", "uploaded_by")
    if project is not None:
        orthophotos = orthophotos.filter(project=project)
    if not every_state:
        orthophotos = orthophotos.filter(state=Orthophoto.State.READY)
    return orthophotos.order_by("project__code", "-uploaded_at", "-pk")


def orthophoto_delete(*, orthophoto: Orthophoto, actor) -> None:
    """Delete an orthophoto and, once the deletion is committed, its COG."""
    if not access.is_registry_admin(actor):
        raise PermissionRefused(_("Only registry administrators delete orthophotos."))
    paths = [
        imagery_dir() / relative
        for relative in (orthophoto.file, orthophoto.upload)
        if relative
    ]
    with transaction.atomic():
        orthophoto.delete()
        transaction.on_commit(lambda: [path.unlink(missing_ok=True) for path in paths])


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


def sweep(*, interrupted: Iterable[int] = ()) -> dict[str, int]:
    """Remove what conversions left behind; fail the rows of interrupted ones.

    ``interrupted`` are orthophotos whose job is gone or whose worker died
    (``tilesvc.tasks.sweep_imagery`` asks the queue). Removed: the scratch
    directories of conversions that are not running, a request's scratch older
    than ``ORPHAN_AGE_S``, and kept uploads no waiting row names, once as old.
    Nothing is touched in an imagery directory that another database's rows
    describe (see ``_owned``). Return how many of each were removed or failed.
    """
    done = {"interrupted": 0, "scratch": 0, "uploads": 0}
    if not _owned():
        return done
    for orthophoto in Orthophoto.objects.filter(
        pk__in=list(interrupted),
        state__in=[Orthophoto.State.QUEUED, Orthophoto.State.CONVERTING],
    ):
        upload = orthophoto.upload
        _fail(
            orthophoto,
            ImageryRefused(
                _(
                    "The conversion of %(file)s was interrupted (the worker "
                    "stopped); upload it again."
                ),
                file=orthophoto.source_name,
            ),
        )
        if upload:
            (imagery_dir() / upload).unlink(missing_ok=True)
        done["interrupted"] += 1
    waiting = Orthophoto.objects.filter(
        state__in=[Orthophoto.State.QUEUED, Orthophoto.State.CONVERTING]
    )
    converting = set(
        waiting.filter(state=Orthophoto.State.CONVERTING).values_list("pk", flat=True)
    )
    kept = set(waiting.values_list("upload", flat=True))
    stale = time.time() - ORPHAN_AGE_S
    for scratch in _scratch_root().iterdir():
        kind, _sep, rest = scratch.name.partition("-")
        if kind == "convert":  # convert-<orthophoto>-…, made once it converts
            pk = rest.split("-")[0]
            orphaned = not (pk.isdigit() and int(pk) in converting)
        else:  # a request's upload-…, gone when the request ends
            orphaned = _last_written(scratch) < stale
        if orphaned:
            shutil.rmtree(scratch, ignore_errors=True)
            done["scratch"] += 1
    incoming = imagery_dir() / "incoming"
    for upload in incoming.iterdir() if incoming.is_dir() else ():
        if f"incoming/{upload.name}" not in kept and _last_written(upload) < stale:
            upload.unlink(missing_ok=True)
            done["uploads"] += 1
    return done


def _last_written(path: Path) -> float:
    """Return when anything in ``path`` (a file or a folder's files) last changed."""
    try:
        times = [path.stat().st_mtime]
        if path.is_dir():
            times += [child.stat().st_mtime for child in path.rglob("*")]
    except FileNotFoundError:
        return time.time()  # going away already
    return max(times)


def _owner_mark() -> tuple[Path, str]:
    database = connection.settings_dict
    owner = f"{database['HOST']}:{database['PORT']}/{database['NAME']}\n"
    return imagery_dir() / ".database", owner


def _mark_owner() -> None:
    """Mark the imagery directory with this database, unless it is marked."""
    mark, owner = _owner_mark()
    mark.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError), open(mark, "x") as handle:
        handle.write(owner)


def _owned() -> bool:
    """Return whether this database's rows describe the imagery directory.

    The first upload kept there marks the directory with its database. A sweep
    run against another one (a test run's worker, say) would take every upload
    in it for an orphan, so it leaves a directory it did not mark alone.
    """
    mark, owner = _owner_mark()
    try:
        return mark.read_text() == owner
    except FileNotFoundError:
        return False


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
    source: rasterio.DatasetReader,
    *,
    name: str,
    orthophoto: Orthophoto,
    progress: Progress,
    place: Callable[[Path, str, int], None],
) -> None:
    """Convert the upload to a COG and ``place`` it (the file, its digest, size).

    Reprojected window by window into a scratch GeoTIFF (the progress), then
    copied by GDAL's COG driver, which builds the overviews. Both are written in
    a scratch directory on the same file system and the COG renamed into place,
    so a reader never sees half a file and a failure leaves nothing.
    """
    scratch = Path(
        tempfile.mkdtemp(prefix=f"convert-{orthophoto.pk}-", dir=_scratch_root())
    )
    try:
        warped, built = scratch / "warped.tif", scratch / "cog.tif"
        try:
            _reproject(source, warped, progress)
            progress(STAGES["compressing"], "compressing")
            rasterio.shutil.copy(warped, built, driver="COG", **COG_OPTIONS)
        except _GDAL_ERRORS as error:
            raise ImageryRefused(
                _("%(file)s could not be converted: %(error)s"),
                file=name,
                # Nor where the server keeps its scratch files.
                error=_gdal_message(error, Path(source.name), name).replace(
                    f"{scratch}/", ""
                ),
            ) from error
        progress(STAGES["checking"], "checking")
        warped.unlink()
        with rasterio.open(built, driver="GTiff") as cog:
            layout = cog.tags(ns="IMAGE_STRUCTURE").get("LAYOUT")
            if layout != "COG" or cog.crs.to_epsg() != WEB_MERCATOR_SRID:
                raise RuntimeError(f"GDAL wrote no EPSG:3857 COG for {name}")
        sha256, size = _sha256(built), built.stat().st_size
        with open(built, "rb") as handle:
            os.fsync(handle.fileno())  # on disk before the row says it exists
        place(built, sha256, size)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _reproject(source: rasterio.DatasetReader, path: Path, progress: Progress):
    """Write the source in Web Mercator at its own resolution, a window at a time.

    Bilinear, as the COG driver's own reprojection would; where the photo has no
    pixels an alpha band says so (or the source's nodata value, if it has one;
    or its own alpha band, carried over).
    """
    crs = f"EPSG:{WEB_MERCATOR_SRID}"
    transform, width, height = calculate_default_transform(
        source.crs, crs, source.width, source.height, *source.bounds
    )
    options = {"crs": crs, "transform": transform, "width": width, "height": height}
    has_alpha = source.colorinterp[-1] == ColorInterp.alpha
    if has_alpha:
        options.update(src_alpha=source.count, dst_alpha=source.count)
    elif source.nodata is None:
        options["add_alpha"] = True
    with WarpedVRT(
        source, resampling=Resampling.bilinear, warp_mem_limit=64, **options
    ) as vrt:
        alpha = vrt.count if (has_alpha or options.get("add_alpha")) else None
        profile = {
            "driver": "GTiff",
            "width": width,
            "height": height,
            "count": vrt.count,
            "dtype": "uint8",
            "crs": crs,
            "transform": transform,
            "nodata": None if alpha else source.nodata,
            "photometric": "RGB" if vrt.count - bool(alpha) == 3 else "MINISBLACK",
            **_SCRATCH_OPTIONS,
        }
        if alpha:
            profile["alpha"] = "YES"  # the TIFF says it is alpha: a mask to GDAL
        windows = [
            Window(col, row, min(WINDOW_PX, width - col), min(WINDOW_PX, height - row))
            for row in range(0, height, WINDOW_PX)
            for col in range(0, width, WINDOW_PX)
        ]
        start, end = STAGES["reprojecting"], STAGES["compressing"]
        progress(start, "reprojecting")
        with rasterio.open(path, "w", **profile) as out:
            for done, window in enumerate(windows, 1):
                out.write(vrt.read(window=window), window=window)
                progress(start + (end - start) * done // len(windows), "reprojecting")


def _scratch_root() -> Path:
    # Under the imagery directory, so that the final rename stays on one file
    # system and large temporary files do not fill a small /tmp.
    scratch = imagery_dir() / "tmp"
    scratch.mkdir(mode=0o700, parents=True, exist_ok=True)
    return scratch


def _refuse_duplicate(project: Project, source_sha256: str, name: str) -> None:
    earlier = (
        Orthophoto.objects.filter(project=project, source_sha256=source_sha256)
        .exclude(state=Orthophoto.State.FAILED)
        .first()
    )
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
