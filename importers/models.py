"""Import batches and saved field mappings."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from registry.models import Project

_STATES = [
    "queued",
    "checking",
    "checked",
    "refused",
    "committing",
    "committed",
    "failed",
    "undone",
]


class ImportBatch(models.Model):
    """One upload of one layer into one project, from first check to commit or undo.

    The batch records everything needed to trust (or dispute) an import: who
    uploaded which exact file (SHA-256), how it was read (encoding, CRS, field
    mapping), what the checks found (``report``: every problem with its row, code
    and field) and what the commit did (counts). A dry run is a batch too, in
    state ``checked`` or ``refused``.
    """

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        CHECKING = "checking", _("Checking")
        CHECKED = "checked", _("Checked, ready to commit")
        REFUSED = "refused", _("Refused")
        COMMITTING = "committing", _("Committing")
        COMMITTED = "committed", _("Committed")
        FAILED = "failed", _("Failed")
        UNDONE = "undone", _("Undone")

    class Layer(models.TextChoices):
        PARCELS = "parcels", _("Parcels")
        BUILDINGS = "buildings", _("Buildings")

    project = models.ForeignKey(
        Project, verbose_name=_("project"), on_delete=models.PROTECT, related_name="+"
    )
    layer = models.CharField(_("layer"), max_length=10, choices=Layer.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    file_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    size_bytes = models.BigIntegerField(_("size (bytes)"))
    source_format = models.CharField(_("format"), max_length=16, blank=True)
    source_layer = models.CharField(_("source layer"), max_length=255, blank=True)
    encoding = models.CharField(_("encoding"), max_length=32, blank=True)
    encoding_source = models.CharField(
        _("encoding chosen from"), max_length=32, blank=True
    )
    crs = models.CharField(_("coordinate system"), max_length=255, blank=True)
    mapping = models.JSONField(_("field mapping"), default=dict, blank=True)
    options = models.JSONField(_("options"), default=dict, blank=True)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.QUEUED
    )
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    stage = models.CharField(_("stage"), max_length=100, blank=True)
    features = models.PositiveIntegerField(_("features"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    rejected = models.PositiveIntegerField(_("rejected"), default=0)
    report = models.JSONField(_("report"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    upload_path = models.CharField(_("stored upload"), max_length=500, blank=True)
    committed_at = models.DateTimeField(_("committed at"), null=True, blank=True)
    committed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("committed by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("undone by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("import batch")
        verbose_name_plural = _("import batches")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=_STATES),
                name="importbatch_state_known",
            ),
            models.CheckConstraint(
                condition=Q(layer__in=["parcels", "buildings"]),
                name="importbatch_layer_known",
            ),
            models.CheckConstraint(
                condition=Q(progress__lte=100), name="importbatch_progress_percent"
            ),
        ]
        indexes = [models.Index(fields=["project", "state"], name="importbatch_state")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.file_name} ({self.get_state_display()})"


class SavedMapping(models.Model):
    """A field mapping saved for reuse with later deliveries to one project.

    Scoped to the project: a surveyor of one project can neither overwrite nor
    silently apply another project's mapping.
    """

    project = models.ForeignKey(
        Project, verbose_name=_("project"), on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(_("name"), max_length=100)
    layer = models.CharField(
        _("layer"), max_length=10, choices=ImportBatch.Layer.choices
    )
    source_key = models.CharField(_("source fields"), max_length=1000, db_index=True)
    mapping = models.JSONField(_("field mapping"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("saved field mapping")
        verbose_name_plural = _("saved field mappings")
        constraints = [
            models.UniqueConstraint(
                fields=["project", "name", "layer"], name="savedmapping_name"
            )
        ]

    def __str__(self) -> str:
        return self.name
