"""Orthophotos: surveyors' aerial images of a project, served as raster map tiles.

A row describes two files. The *source* is what the surveyor uploaded (a GeoTIFF,
usually in EPSG:4547): its name, CRS, ground resolution, size in pixels, band count
and SHA-256 are kept so that the registry can say exactly which delivery a map
shows, and refuse the same delivery twice. The *served copy* is a Cloud-Optimized
GeoTIFF in EPSG:3857 under ``IMAGERY_DIR``, named by ``file``; its own size and
SHA-256 are kept too (the digest is the tiles' ETag). The upload itself is not
kept.

A row is written by ``tilesvc.imagery.orthophoto_accept`` once the upload's
header has passed every check (state ``queued``, the upload kept under
``IMAGERY_DIR/incoming``); the job ``tilesvc.convert_orthophoto`` converts it,
recording its progress, and names the COG in ``file`` only after renaming it into
place, in the same update that makes the row ``ready``: a row never names a
missing or half-written file, and only ready rows are served. A conversion that
fails leaves the row ``failed`` with the reason in Chinese and English, and no
file. A file without a row (a crash in between) is never served and is swept
away (``tilesvc.imagery.sweep``).
"""

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registry.models import Project
from spatial.crs import WGS84_SRID

_STATES = ["queued", "converting", "ready", "failed"]


class Orthophoto(models.Model):
    """An orthophoto (正射影像) of a project, converted to a Cloud-Optimized GeoTIFF."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        CONVERTING = "converting", _("Converting")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    project = models.ForeignKey(
        Project,
        verbose_name=_("project"),
        on_delete=models.PROTECT,
        related_name="orthophotos",
    )
    title = models.CharField(_("title"), max_length=200)
    source_name = models.CharField(_("file name"), max_length=255)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    uploaded_at = models.DateTimeField(_("uploaded at"), default=timezone.now)
    captured_on = models.DateField(_("captured on"), null=True, blank=True)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.QUEUED
    )
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    stage = models.CharField(_("stage"), max_length=20, blank=True)
    failure = models.JSONField(
        _("why it failed"),
        default=dict,
        blank=True,
        help_text=_("The reason, in Chinese (zh) and English (en)."),
    )
    upload = models.CharField(
        _("kept upload"),
        max_length=255,
        blank=True,
        help_text=_("The upload waiting for conversion, relative to IMAGERY_DIR."),
    )
    converted_at = models.DateTimeField(_("converted at"), null=True, blank=True)
    file = models.CharField(
        _("COG file"),
        max_length=255,
        unique=True,
        null=True,
        blank=True,
        help_text=_("Path of the Cloud-Optimized GeoTIFF, relative to IMAGERY_DIR."),
    )
    source_crs = models.TextField(
        _("source CRS"), help_text=_("“EPSG:4547”, or WKT when it has no EPSG code.")
    )
    footprint = models.PolygonField(
        _("bounds (WGS84)"),
        srid=WGS84_SRID,
        help_text=_("The image's bounding box in longitude and latitude."),
    )
    resolution_m = models.FloatField(_("resolution (m)"))
    width = models.PositiveIntegerField(_("width (pixels)"))
    height = models.PositiveIntegerField(_("height (pixels)"))
    band_count = models.PositiveSmallIntegerField(_("bands"))
    size_bytes = models.BigIntegerField(_("size (bytes)"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    source_sha256 = models.CharField(_("SHA-256 of the upload"), max_length=64)

    class Meta:
        verbose_name = _("orthophoto")
        verbose_name_plural = _("orthophotos")
        ordering = ["project", "-uploaded_at", "-pk"]
        constraints = [
            # The same delivery uploaded twice would only duplicate a layer; one
            # whose conversion failed may be sent again.
            models.UniqueConstraint(
                fields=["project", "source_sha256"],
                condition=~Q(state="failed"),
                name="orthophoto_upload_once",
            ),
            models.CheckConstraint(
                condition=Q(state__in=_STATES), name="orthophoto_state_known"
            ),
            models.CheckConstraint(
                condition=Q(progress__lte=100), name="orthophoto_progress_percent"
            ),
            # Served only when its COG is in place, and then it is complete.
            models.CheckConstraint(
                condition=~Q(state="ready")
                | (
                    Q(file__isnull=False, size_bytes__isnull=False, progress=100)
                    & ~Q(sha256="")
                ),
                name="orthophoto_ready_has_cog",
            ),
            models.CheckConstraint(
                condition=Q(state="ready") | Q(file__isnull=True),
                name="orthophoto_cog_only_when_ready",
            ),
            models.CheckConstraint(
                condition=~Q(state="failed") | Q(failure__has_keys=["zh", "en"]),
                name="orthophoto_failure_explained",
            ),
            models.CheckConstraint(
                condition=Q(resolution_m__gt=0), name="orthophoto_resolution_positive"
            ),
            models.CheckConstraint(
                condition=Q(width__gt=0, height__gt=0, size_bytes__gt=0),
                name="orthophoto_size_positive",
            ),
            models.CheckConstraint(
                condition=Q(band_count__in=[1, 3, 4]), name="orthophoto_bands_known"
            ),
            models.CheckConstraint(
                condition=(Q(sha256__regex=r"^[0-9a-f]{64}$") | Q(sha256=""))
                & Q(source_sha256__regex=r"^[0-9a-f]{64}$"),
                name="orthophoto_sha256_hex",
            ),
            models.CheckConstraint(
                condition=Q(footprint__isvalid=True), name="orthophoto_footprint_valid"
            ),
            models.CheckConstraint(
                condition=Q(title__regex=r"\S"), name="orthophoto_title_not_blank"
            ),
            models.CheckConstraint(
                condition=~Q(file__startswith="/") & ~Q(file__contains=".."),
                name="orthophoto_file_relative",
            ),
            models.CheckConstraint(
                condition=~Q(upload__startswith="/") & ~Q(upload__contains=".."),
                name="orthophoto_upload_relative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.code} {self.title}"

    @property
    def running(self) -> bool:
        """Return whether the conversion is still to finish."""
        return self.state in (self.State.QUEUED, self.State.CONVERTING)


class LayerEpoch(models.Model):
    """The current epoch of a vector-tile layer: renewed by a change everywhere.

    A random token, never a constant (``tilesvc.cache``): a database restored
    elsewhere, or one emptied and loaded again, must never make a tile kept
    before it current, nor its ETag.
    """

    layer = models.CharField(max_length=20, primary_key=True)
    epoch = models.CharField(max_length=12)


class TileGeneration(models.Model):
    """Which drawing of one tile is current: renewed when what lies under it changes.

    A tile without a row is in its layer's first generation, "0". Written by
    ``tilesvc.cache.invalidate`` once a change has committed; read by the
    statement that checks a kept tile and draws it again only when stale.
    """

    pk = models.CompositePrimaryKey("layer", "z", "x", "y")
    layer = models.CharField(max_length=20)
    z = models.PositiveSmallIntegerField()
    x = models.PositiveIntegerField()
    y = models.PositiveIntegerField()
    generation = models.CharField(max_length=12)
