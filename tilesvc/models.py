"""Orthophotos: surveyors' aerial images of a project, served as raster map tiles.

A row describes two files. The *source* is what the surveyor uploaded (a GeoTIFF,
usually in EPSG:4547): its name, CRS, ground resolution, size in pixels, band count
and SHA-256 are kept so that the registry can say exactly which delivery a map
shows, and refuse the same delivery twice. The *served copy* is a Cloud-Optimized
GeoTIFF in EPSG:3857 under ``IMAGERY_DIR``, named by ``file``; its own size and
SHA-256 are kept too (the digest is the tiles' ETag). The upload itself is not
kept.

Rows are written only by ``tilesvc.imagery.orthophoto_ingest``, and only after the
COG has been renamed into place, so a row never names a missing or half-written
file. A file without a row (a crash between the two) is never served.
"""

from django.conf import settings
from django.contrib.gis.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registry.models import Project
from spatial.crs import WGS84_SRID


class Orthophoto(models.Model):
    """An orthophoto (正射影像) of a project, converted to a Cloud-Optimized GeoTIFF."""

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
    file = models.CharField(
        _("COG file"),
        max_length=255,
        unique=True,
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
    size_bytes = models.BigIntegerField(_("size (bytes)"))
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    source_sha256 = models.CharField(_("SHA-256 of the upload"), max_length=64)

    class Meta:
        verbose_name = _("orthophoto")
        verbose_name_plural = _("orthophotos")
        ordering = ["project", "-uploaded_at", "-pk"]
        constraints = [
            # The same delivery uploaded twice would only duplicate a layer.
            models.UniqueConstraint(
                fields=["project", "source_sha256"], name="orthophoto_upload_once"
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
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$")
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
        ]

    def __str__(self) -> str:
        return f"{self.project.code} {self.title}"
