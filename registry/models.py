"""What the registry stores: projects, parcels, buildings, their history, and roles.

Invariants the database can enforce live here as constraints, so that no writer
(the ORM, a raw ``COPY``, a psql session) can break them: status and class values,
valid non-empty geometry, a banked parcel's bank reference. Rules about *how* rows
may change (the workflow, who may do what) live in ``registry/services.py``.
"""

from django.conf import settings
from django.contrib.gis.db import models
from django.contrib.postgres.indexes import GinIndex, GistIndex
from django.db.models import F, Func, Q
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registry.choices import (
    PROJECT_ROLES,
    BuildingStatus,
    LandClass,
    Legality,
    OwnerGroup,
    ProjectKind,
    Role,
    Street,
)
from registry.workflow import Move, Status
from spatial.crs import STORAGE_SRID


def _is_not_empty(field: str) -> Exact:
    """Return a boolean expression true when the geometry in ``field`` has area."""
    return Exact(
        Func(F(field), function="ST_IsEmpty", output_field=models.BooleanField()),
        False,
    )


def _geometry_constraints(prefix: str, field: str) -> list[models.CheckConstraint]:
    """Return the checks that keep ``field`` a valid, non-empty geometry."""
    return [
        models.CheckConstraint(
            condition=Q(**{f"{field}__isvalid": True}),
            name=f"{prefix}_{field}_valid",
            violation_error_message=_("The geometry is not valid."),
        ),
        models.CheckConstraint(
            condition=_is_not_empty(field),
            name=f"{prefix}_{field}_not_empty",
            violation_error_message=_("The geometry is empty."),
        ),
    ]


def _choice_constraint(prefix: str, field: str, choices) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__in": choices.values}),
        name=f"{prefix}_{field}_known",
    )


class Project(models.Model):
    """A consolidation project (整备项目), carried out by one street office."""

    code = models.CharField(_("code"), max_length=16, unique=True)
    name_zh = models.CharField(_("Chinese name"), max_length=100)
    name_en = models.CharField(_("English name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=24, choices=ProjectKind.choices)
    street = models.CharField(_("street"), max_length=16, choices=Street.choices)
    boundary = models.MultiPolygonField(_("boundary"), srid=STORAGE_SRID)
    planned_area_m2 = models.FloatField(_("published planned area (m²)"))
    start_date = models.DateField(_("start date"), null=True, blank=True)
    target_date = models.DateField(_("target date"), null=True, blank=True)
    synthetic = models.BooleanField(
        _("synthetic demo data"),
        default=False,
        help_text=_("Generated for demonstration; not real survey data."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("project")
        verbose_name_plural = _("projects")
        ordering = ["code"]
        constraints = [
            _choice_constraint("project", "kind", ProjectKind),
            _choice_constraint("project", "street", Street),
            *_geometry_constraints("project", "boundary"),
            models.CheckConstraint(
                condition=Q(planned_area_m2__gt=0), name="project_planned_area_positive"
            ),
            models.CheckConstraint(
                condition=Q(target_date__isnull=True)
                | Q(start_date__isnull=True)
                | Q(target_date__gte=F("start_date")),
                name="project_target_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name_zh}"


class Parcel(models.Model):
    """A parcel of land (地块) of one land class, moving through the workflow.

    ``area_m2`` is a generated column, ``ST_Area(geom)`` computed by PostgreSQL on
    every insert and update, so the figure every statistic sums can never drift
    from the geometry, whoever wrote the row. ``status`` is written only by
    ``registry.services``, which appends a ``ParcelStatusChange`` in the same
    transaction.
    """

    code = models.CharField(_("parcel code"), max_length=40)
    project = models.ForeignKey(
        Project,
        verbose_name=_("project"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="parcels",
        # parcel_project_status leads with the project: a second index of the
        # project alone would only cost every insert (an import's largest part).
        db_index=False,
    )
    land_class = models.CharField(
        _("land class"), max_length=24, choices=LandClass.choices
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.SURVEYED
    )
    street = models.CharField(
        _("street"), max_length=16, choices=Street.choices, blank=True
    )
    geom = models.MultiPolygonField(_("geometry"), srid=STORAGE_SRID)
    area_m2 = models.GeneratedField(
        expression=Func(
            F("geom"), function="ST_Area", output_field=models.FloatField()
        ),
        output_field=models.FloatField(),
        db_persist=True,
        verbose_name=_("area (m²)"),
    )
    declared_area_m2 = models.FloatField(_("declared area (m²)"), null=True, blank=True)
    banked_on = models.DateField(_("banked on"), null=True, blank=True)
    bank_ref = models.CharField(_("land bank reference"), max_length=40, blank=True)
    synthetic = models.BooleanField(_("synthetic demo data"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("parcel")
        verbose_name_plural = _("parcels")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["code"], name="parcel_code_unique"),
            _choice_constraint("parcel", "land_class", LandClass),
            _choice_constraint("parcel", "status", Status),
            models.CheckConstraint(
                condition=Q(street="") | Q(street__in=Street.values),
                name="parcel_street_known",
            ),
            *_geometry_constraints("parcel", "geom"),
            models.CheckConstraint(
                condition=Q(declared_area_m2__isnull=True) | Q(declared_area_m2__gt=0),
                name="parcel_declared_area_positive",
            ),
            models.CheckConstraint(
                condition=~Q(status=Status.BANKED)
                | (Q(banked_on__isnull=False) & ~Q(bank_ref="")),
                name="parcel_banked_has_reference",
                violation_error_message=_(
                    "A banked parcel needs a banking date and a land bank reference."
                ),
            ),
        ]
        indexes = [
            models.Index(fields=["project", "status"], name="parcel_project_status"),
            models.Index(fields=["land_class"], name="parcel_land_class"),
            models.Index(fields=["updated_at"], name="parcel_updated_at"),
            # Map tiles up to z14 draw only parcels large enough to be seen
            # (tilesvc.vector: 3 × 3 screen pixels, ≥ 700 m² at z14); this
            # index holds just those, so a district-wide tile reads thousands
            # of index entries instead of a million. (An expression, not
            # fields=["geom"]: the PostGIS schema editor drops the condition of a
            # plain spatial-field index.)
            GistIndex(
                F("geom"),
                name="parcel_geom_sizeable",
                condition=Q(area_m2__gte=600),
            ),
        ]

    def __str__(self) -> str:
        return self.code


class Building(models.Model):
    """A building standing on a parcel; clearing the parcel waits for all of them."""

    code = models.CharField(_("building code"), max_length=48)
    parcel = models.ForeignKey(
        Parcel,
        verbose_name=_("parcel"),
        on_delete=models.PROTECT,
        related_name="buildings",
    )
    footprint = models.MultiPolygonField(_("footprint"), srid=STORAGE_SRID)
    floors = models.PositiveSmallIntegerField(_("floors"))
    floor_area_m2 = models.FloatField(_("floor area (m²)"))
    legality = models.CharField(
        _("legality"), max_length=24, choices=Legality.choices, default=Legality.UNKNOWN
    )
    owner_group = models.CharField(
        _("owner group"), max_length=24, choices=OwnerGroup.choices
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=BuildingStatus.choices,
        default=BuildingStatus.UNSIGNED,
    )
    synthetic = models.BooleanField(_("synthetic demo data"), default=False)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("building")
        verbose_name_plural = _("buildings")
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["code"], name="building_code_unique"),
            _choice_constraint("building", "legality", Legality),
            _choice_constraint("building", "owner_group", OwnerGroup),
            _choice_constraint("building", "status", BuildingStatus),
            *_geometry_constraints("building", "footprint"),
            models.CheckConstraint(
                condition=Q(floors__gte=1), name="building_floors_positive"
            ),
            models.CheckConstraint(
                condition=Q(floor_area_m2__gt=0), name="building_floor_area_positive"
            ),
        ]
        indexes = [models.Index(fields=["parcel", "status"], name="building_parcel")]

    def __str__(self) -> str:
        return self.code


class ParcelStatusChange(models.Model):
    """One step of a parcel's history: append-only evidence of who moved it, when.

    Rows are written by ``registry.services`` in the same transaction as the change,
    with the parcel row locked, so the history and the parcel never disagree and two
    concurrent changes cannot both be recorded against the same starting status.
    A database trigger (migration 0002) refuses UPDATE and DELETE: the history is
    evidence in compensation disputes and no role may rewrite it.
    """

    parcel = models.ForeignKey(
        Parcel,
        verbose_name=_("parcel"),
        on_delete=models.PROTECT,
        related_name="history",
    )
    move = models.CharField(_("move"), max_length=8, choices=Move.choices)
    from_status = models.CharField(
        _("from status"), max_length=16, choices=Status.choices, blank=True
    )
    to_status = models.CharField(_("to status"), max_length=16, choices=Status.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField(_("at"))
    reason = models.TextField(_("reason"), blank=True)
    evidence_ref = models.CharField(_("evidence reference"), max_length=200, blank=True)
    # Kept on the banking row itself: the parcel loses them if it is ever reopened,
    # and "banked as of a date" is answered from the history alone.
    banked_on = models.DateField(_("banked on"), null=True, blank=True)
    bank_ref = models.CharField(_("land bank reference"), max_length=40, blank=True)

    class Meta:
        verbose_name = _("parcel status change")
        verbose_name_plural = _("parcel status changes")
        ordering = ["parcel_id", "at", "pk"]
        constraints = [
            _choice_constraint("parcelstatuschange", "move", Move),
            models.CheckConstraint(
                condition=Q(from_status="") | Q(from_status__in=Status.values),
                name="parcelstatuschange_from_known",
            ),
            _choice_constraint("parcelstatuschange", "to_status", Status),
            models.CheckConstraint(
                condition=~Q(move=Move.REOPEN) | ~Q(reason=""),
                name="parcelstatuschange_reopen_has_reason",
            ),
            models.CheckConstraint(
                condition=Q(move=Move.CREATE, from_status="")
                | (~Q(move=Move.CREATE) & ~Q(from_status="")),
                name="parcelstatuschange_from_matches_move",
            ),
            models.CheckConstraint(
                condition=(
                    Q(to_status=Status.BANKED, banked_on__isnull=False)
                    & ~Q(bank_ref="")
                )
                | (
                    ~Q(to_status=Status.BANKED) & Q(banked_on__isnull=True, bank_ref="")
                ),
                name="parcelstatuschange_banking_recorded",
            ),
        ]
        indexes = [
            models.Index(fields=["parcel", "at"], name="parcel_history_parcel_at"),
            models.Index(fields=["to_status", "at"], name="parcel_history_status_at"),
        ]

    def __str__(self) -> str:
        return f"{self.parcel_id}: {self.from_status or '∅'} → {self.to_status}"


class ParcelRevision(models.Model):
    """What a survey import did to a parcel, with the geometry it replaced.

    A re-survey replaces a parcel's geometry and attributes; the previous ones are
    kept here, so the registry can always say what a parcel looked like before
    and undo an import. ``import_batch_id`` names the ``importers.ImportBatch``
    (a plain number: the registry does not depend on the importers). An
    administrator's edit of the geometry in the admin is kept the same way (kind
    ``edited``, no batch), so as-of figures and undo see it too. Append-only,
    like the status history (migration 0005).
    """

    # Parcels an import created need no revision: their creation row in the
    # status history names the batch ("import:<id>").
    class Kind(models.TextChoices):
        UPDATED = "updated", _("Re-surveyed by import")
        UNDONE = "undone", _("Import undone")
        EDITED = "edited", _("Edited in the admin")

    parcel = models.ForeignKey(
        Parcel,
        verbose_name=_("parcel"),
        on_delete=models.PROTECT,
        related_name="revisions",
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind.choices)
    # None for an edit in the admin (kind "edited"), which no import made.
    import_batch_id = models.BigIntegerField(_("import batch"), null=True, blank=True)
    old_geom = models.MultiPolygonField(
        _("previous geometry"), srid=STORAGE_SRID, null=True, blank=True
    )
    old_land_class = models.CharField(
        _("previous land class"), max_length=24, choices=LandClass.choices, blank=True
    )
    old_declared_area_m2 = models.FloatField(
        _("previous declared area (m²)"), null=True, blank=True
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField(_("at"))

    class Meta:
        verbose_name = _("parcel revision")
        verbose_name_plural = _("parcel revisions")
        ordering = ["parcel_id", "at", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["updated", "undone", "edited"]),
                name="parcelrevision_kind_known",
            ),
            models.CheckConstraint(
                condition=Q(kind="edited") | Q(import_batch_id__isnull=False),
                name="parcelrevision_import_names_batch",
            ),
        ]
        indexes = [
            models.Index(fields=["import_batch_id"], name="parcelrevision_batch"),
            models.Index(fields=["parcel", "at"], name="parcelrevision_parcel_at"),
        ]

    def __str__(self) -> str:
        if self.import_batch_id is None:
            return f"{self.parcel_id}: {self.kind}"
        return f"{self.parcel_id}: {self.kind} (batch {self.import_batch_id})"


class BuildingStatusChange(models.Model):
    """One step of a building's progress, append-only like the parcel history."""

    building = models.ForeignKey(
        Building,
        verbose_name=_("building"),
        on_delete=models.PROTECT,
        related_name="history",
    )
    from_status = models.CharField(
        _("from status"), max_length=16, choices=BuildingStatus.choices
    )
    to_status = models.CharField(
        _("to status"), max_length=16, choices=BuildingStatus.choices
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField(_("at"))
    reason = models.TextField(_("reason"), blank=True)

    class Meta:
        verbose_name = _("building status change")
        verbose_name_plural = _("building status changes")
        ordering = ["building_id", "at", "pk"]

    def __str__(self) -> str:
        return f"{self.building_id}: {self.from_status} → {self.to_status}"


# Sorted: a set's order changes between runs, and migrations must not.
_PROJECT_ROLE_VALUES = sorted(role.value for role in PROJECT_ROLES)


class Membership(models.Model):
    """A user's role; surveyors and case officers hold it for one project each.

    District-wide roles (planner, analyst, registry admin) have no project; the
    database refuses a project-scoped role without a project and the reverse.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="memberships",
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    project = models.ForeignKey(
        Project,
        verbose_name=_("project"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="memberships",
    )

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            _choice_constraint("membership", "role", Role),
            models.UniqueConstraint(
                fields=["user", "role", "project"],
                nulls_distinct=False,
                name="membership_unique",
            ),
            models.CheckConstraint(
                condition=Q(role__in=_PROJECT_ROLE_VALUES, project__isnull=False)
                | (~Q(role__in=_PROJECT_ROLE_VALUES) & Q(project__isnull=True)),
                name="membership_project_matches_role",
                violation_error_message=_(
                    "Surveyors and case officers need a project; other roles have none."
                ),
            ),
        ]

    def __str__(self) -> str:
        scope = self.project.code if self.project_id else "*"
        return f"{self.user} · {self.get_role_display()} · {scope}"


class ExportLog(models.Model):
    """Who exported which selection of banked land, when, and what it held."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        related_name="+",
    )
    at = models.DateTimeField(_("at"), auto_now_add=True)
    format = models.CharField(_("format"), max_length=10)
    selection = models.JSONField(_("selection"))
    features = models.PositiveIntegerField(_("features"), default=0)
    total_area_m2 = models.FloatField(_("total area (m²)"), default=0)
    sha256 = models.CharField(_("SHA-256"), max_length=64, blank=True)
    channel = models.CharField(_("channel"), max_length=10)  # api, command

    class Meta:
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.user} {self.format} {self.at:%Y-%m-%d %H:%M}"


class ParcelTally(models.Model):
    """Running totals of parcels and area per project × land class × status × street.

    The statistics everyone reads "now" would otherwise be a GROUP BY over every
    parcel (600 ms at a million). Instead the database keeps this tally itself:
    statement-level triggers on ``registry_parcel`` (migration 0008) append, for
    each INSERT, UPDATE or DELETE, one row per cell it changed with the change
    in count and area, whoever writes (the ORM, ``COPY``, an import, psql). Rows
    are only ever appended, so concurrent writers never wait for each other here;
    the current figure of a cell is the sum of its rows, and
    ``registry.statistics.tally_compact`` folds them together now and then.
    Areas are ``numeric``: sums of deltas stay exact however long the history.
    """

    project = models.ForeignKey(
        Project,
        on_delete=models.DO_NOTHING,
        null=True,
        related_name="+",
        # Totals outlive nothing: no constraint to check on every append.
        db_constraint=False,
    )
    land_class = models.CharField(max_length=32)
    status = models.CharField(max_length=16)
    street = models.CharField(max_length=16)
    parcels = models.BigIntegerField()
    area_m2 = models.DecimalField(max_digits=24, decimal_places=4)

    class Meta:
        verbose_name = _("parcel tally")
        indexes = [
            models.Index(
                fields=["project", "land_class", "status", "street"],
                name="parceltally_cell",
            )
        ]

    def __str__(self) -> str:
        return f"{self.project_id} {self.land_class} {self.status} {self.street}"


class AuditAction(models.TextChoices):
    """What an audit record records."""

    PARCEL_CREATED = "parcel_created", _("Parcel registered")
    STATUS_MOVE = "status_move", _("Status moved")
    BULK_MOVE = "bulk_move", _("Status moved in bulk")
    BUILDING_STATUS = "building_status", _("Building status recorded")
    GEOMETRY_CHANGE = "geometry_change", _("Geometry changed")
    PARCEL_EDITED = "parcel_edited", _("Parcel edited")
    ROLE_GRANTED = "role_granted", _("Role granted")
    ROLE_CHANGED = "role_changed", _("Role changed")
    ROLE_REVOKED = "role_revoked", _("Role revoked")
    ACCOUNT_FLAGS = "account_flags", _("Account rights changed")
    IMPORT_COMMITTED = "import_committed", _("Import committed")
    IMPORT_UNDONE = "import_undone", _("Import undone")
    EXPORT = "export", _("Export")
    TOKEN_CREATED = "token_created", _("API token created")
    TOKEN_REVOKED = "token_revoked", _("API token revoked")


class AuditChannel(models.TextChoices):
    """How a change came in."""

    WEB = "web", _("Web page")
    API = "api", _("API")
    COMMAND = "command", _("Command")
    WORKER = "worker", _("Job worker")


class AuditRecord(models.Model):
    """One entry of the audit trail: who changed what, when, and from where.

    Every change of status, geometry or role, every import, undo and export
    writes one, in the same transaction as the change (``registry.audit``), so a
    change that rolls back leaves none and a committed one always has one.
    A database trigger (migration 0009) refuses UPDATE, DELETE and TRUNCATE:
    nobody rewrites the trail through the app, the admin shows it read-only.
    The one exception the trigger admits is Django's own ``SET NULL`` of
    ``actor`` when a user is deleted; the username stays, as text. The project
    is a plain reference (no constraint) with its code kept beside it, so that
    deleting a project (the demo loader does) never touches the trail.
    """

    Action = AuditAction
    Channel = AuditChannel

    at = models.DateTimeField(_("when"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_username = models.CharField(_("actor's username"), max_length=150)
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    object_kind = models.CharField(_("object kind"), max_length=20)
    object_id = models.BigIntegerField(_("object id"), null=True, blank=True)
    object_code = models.CharField(_("object code"), max_length=255, blank=True)
    project = models.ForeignKey(
        Project,
        verbose_name=_("project"),
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
    )
    project_code = models.CharField(_("project code"), max_length=16, blank=True)
    changes = models.JSONField(_("what changed"), default=dict, blank=True)
    remote_addr = models.GenericIPAddressField(
        _("remote address"), null=True, blank=True
    )
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    user_agent = models.CharField(_("user agent"), max_length=400, blank=True)
    host = models.CharField(_("host"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("audit record")
        verbose_name_plural = _("audit records")
        ordering = ["-at", "-pk"]
        constraints = [
            _choice_constraint("auditrecord", "action", AuditAction),
            _choice_constraint("auditrecord", "channel", AuditChannel),
        ]
        indexes = [
            models.Index(fields=["-at", "-id"], name="audit_at"),
            models.Index(fields=["project", "-at"], name="audit_project_at"),
            models.Index(fields=["actor_username", "-at"], name="audit_actor_at"),
            models.Index(fields=["object_code"], name="audit_object_code"),
            GinIndex(
                fields=["changes"], name="audit_changes", opclasses=["jsonb_path_ops"]
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_username} {self.action}"
