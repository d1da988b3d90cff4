"""Every write to the registry that spans rows or leaves history.

Views, the admin, importers and commands all call these functions; none of them
writes ``status`` or history rows itself. Each function checks the actor's role and
project, runs in one transaction, re-reads the rows it changes with
``SELECT ... FOR UPDATE`` and writes the history row in that same transaction (the
pattern healthchecks uses for its flips): two officers acting on one parcel at once
are serialised by the row lock, and the second sees the first's result.
"""

from collections.abc import Iterable
from datetime import date, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.gis.geos import GEOSGeometry, MultiPolygon
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from registry import access, audit, changes
from registry.choices import BUILDING_DONE_STATUSES, BuildingStatus, LandClass
from registry.errors import (
    BulkTransitionRefused,
    PermissionRefused,
    RegistryError,
    TransitionRefused,
)
from registry.models import (
    AuditAction,
    Building,
    BuildingStatusChange,
    Parcel,
    ParcelRevision,
    ParcelStatusChange,
    Project,
)
from registry.workflow import Move, Status, move_between
from spatial.crs import STORAGE_SRID

# Buildings advance one step at a time too; they never go back by themselves.
BUILDING_NEXT = {
    BuildingStatus.UNSIGNED: BuildingStatus.SIGNED,
    BuildingStatus.SIGNED: BuildingStatus.VACATED,
    BuildingStatus.VACATED: BuildingStatus.DEMOLISHED,
}


def parcel_create(
    *,
    code: str,
    land_class: str,
    geom: GEOSGeometry,
    actor: AbstractBaseUser,
    project: Project | None = None,
    street: str = "",
    declared_area_m2: float | None = None,
    reason: str = "",
) -> Parcel:
    """Register a new parcel in ``surveyed`` and record its creation in the history."""
    if not access.can_import(actor, project):
        raise PermissionRefused(
            _("You may not register parcels in project %(project)s."),
            project=project.code if project else "—",
        )
    if land_class not in LandClass.values:
        raise TransitionRefused(_("Unknown land class “%(value)s”."), value=land_class)
    with transaction.atomic():
        parcel = Parcel.objects.create(
            code=code,
            project=project,
            land_class=land_class,
            street=street or (project.street if project else ""),
            geom=_as_storage_multipolygon(geom),
            declared_area_m2=declared_area_m2,
        )
        ParcelStatusChange.objects.create(
            parcel=parcel,
            move=Move.CREATE,
            from_status="",
            to_status=Status.SURVEYED,
            actor=actor,
            at=timezone.now(),
            reason=reason,
        )
        audit.record(
            AuditAction.PARCEL_CREATED,
            kind="parcel",
            object_id=parcel.pk,
            code=parcel.code,
            project=project,
            actor=actor,
            changes={
                "to_status": Status.SURVEYED,
                "land_class": land_class,
                "reason": reason,
            },
        )
        changes.announce_parcels([parcel.pk])
    parcel.refresh_from_db(fields=["area_m2"])
    return parcel


def parcel_transition(
    *,
    parcel: Parcel,
    to_status: str,
    actor: AbstractBaseUser,
    reason: str = "",
    evidence_ref: str = "",
    banked_on: date | None = None,
    bank_ref: str = "",
) -> ParcelStatusChange:
    """Move one parcel to ``to_status`` and append the change to its history.

    Raise ``PermissionRefused`` or ``TransitionRefused`` (nothing changed) when the
    actor may not make the move or the workflow does not allow it.
    """
    with transaction.atomic():
        locked = Parcel.objects.select_for_update().get(pk=parcel.pk)
        refusal = transition_refusal(
            parcel=locked,
            to_status=to_status,
            actor=actor,
            reason=reason,
            banked_on=banked_on,
            bank_ref=bank_ref,
        )
        if refusal is not None:
            raise refusal
        change = _apply(
            locked,
            to_status=to_status,
            actor=actor,
            at=timezone.now(),
            reason=reason,
            evidence_ref=evidence_ref,
            banked_on=banked_on,
            bank_ref=bank_ref,
        )
        locked.save(update_fields=["status", "banked_on", "bank_ref", "updated_at"])
        change.save()
        audit.record(
            AuditAction.STATUS_MOVE,
            kind="parcel",
            object_id=locked.pk,
            code=locked.code,
            project=locked.project_id,
            actor=actor,
            changes=_move_changes(change),
        )
        changes.announce_parcels([locked.pk])
    _copy_status(locked, into=parcel)
    return change


def parcel_transition_bulk(
    *,
    parcels: Iterable[Parcel | int],
    to_status: str,
    actor: AbstractBaseUser,
    reason: str = "",
    evidence_ref: str = "",
    banked_on: date | None = None,
    bank_ref: str = "",
) -> list[ParcelStatusChange]:
    """Move many parcels to ``to_status`` at once: all of them, or none.

    Every parcel is checked as ``parcel_transition`` would; if any is refused,
    ``BulkTransitionRefused`` lists each refused parcel with its reason and nothing
    is written. One history row is appended per parcel.
    """
    ids = sorted({p.pk if isinstance(p, Parcel) else int(p) for p in parcels})
    with transaction.atomic():
        # Lock in primary-key order so that two bulk changes over overlapping sets
        # wait for each other instead of deadlocking.
        locked = list(
            Parcel.objects.select_for_update().filter(pk__in=ids).order_by("pk")
        )
        grants = access.grants_of(actor)
        open_buildings = _open_buildings(locked) if to_status == Status.CLEARED else {}
        missing = set(ids) - {p.pk for p in locked}
        if missing:
            raise TransitionRefused(
                _("No parcel with id %(ids)s."),
                ids=", ".join(map(str, sorted(missing))),
            )
        refusals = [
            (p.code, refusal)
            for p in locked
            if (
                refusal := transition_refusal(
                    parcel=p,
                    to_status=to_status,
                    actor=grants,
                    reason=reason,
                    banked_on=banked_on,
                    bank_ref=bank_ref,
                    open_buildings=open_buildings.get(p.pk, []),
                )
            )
            is not None
        ]
        if refusals:
            raise BulkTransitionRefused(
                _(
                    "%(refused)s of %(total)s parcels were refused; "
                    "nothing was changed."
                ),
                refusals=refusals,
                refused=len(refusals),
                total=len(locked),
            )
        now = timezone.now()
        moves = [
            _apply(
                p,
                to_status=to_status,
                actor=actor,
                at=now,
                reason=reason,
                evidence_ref=evidence_ref,
                banked_on=banked_on,
                bank_ref=bank_ref,
            )
            for p in locked
        ]
        for p in locked:
            p.updated_at = now
        Parcel.objects.bulk_update(
            locked, ["status", "banked_on", "bank_ref", "updated_at"], batch_size=2000
        )
        ParcelStatusChange.objects.bulk_create(moves, batch_size=2000)
        _record_bulk(locked, moves, actor=actor)
        changes.announce_parcels(ids)
    return moves


def transition_refusal(
    *,
    parcel: Parcel,
    to_status: str,
    actor: AbstractBaseUser | access.Grants,
    reason: str = "",
    banked_on: date | None = None,
    bank_ref: str = "",
    open_buildings: list[str] | None = None,
) -> RegistryError | None:
    """Return why ``actor`` may not move ``parcel`` to ``to_status``, or None.

    Read-only; forms call it to explain a refusal before anything is submitted,
    the writers above call it again under the row lock. ``open_buildings`` (codes
    of the parcel's buildings neither vacated nor demolished) is read here unless
    the caller already has it.
    """
    if to_status not in Status.values:
        return TransitionRefused(_("Unknown status “%(value)s”."), value=to_status)
    current, target = Status(parcel.status), Status(to_status)
    labels = {"code": parcel.code, "current": current.label, "target": target.label}
    if current == target:
        return TransitionRefused(
            _("Parcel %(code)s is already “%(current)s”."), **labels
        )
    move = move_between(current, target)
    if move is None:
        return TransitionRefused(
            _(
                "Parcel %(code)s cannot go from “%(current)s” to “%(target)s”: "
                "the workflow advances one stage at a time."
            ),
            **labels,
        )
    if not access.can_change_status(actor, parcel.project_id, current, target):
        return PermissionRefused(
            _("You may not move parcel %(code)s from “%(current)s” to “%(target)s”."),
            **labels,
        )
    if move == Move.REOPEN and not reason.strip():
        return TransitionRefused(
            _("Reopening parcel %(code)s to “%(target)s” needs a reason."), **labels
        )
    if target == Status.CLEARED:
        if open_buildings is None:
            open_buildings = _open_buildings([parcel]).get(parcel.pk, [])
        if open_buildings:
            return TransitionRefused(
                _(
                    "Parcel %(code)s cannot be cleared: %(count)s building(s) are "
                    "neither vacated nor demolished (%(buildings)s)."
                ),
                count=len(open_buildings),
                buildings=", ".join(open_buildings[:10])
                + ("…" if len(open_buildings) > 10 else ""),
                **labels,
            )
    if target == Status.BANKED and (banked_on is None or not bank_ref.strip()):
        return TransitionRefused(
            _(
                "Parcel %(code)s needs a banking date and a land bank reference "
                "to enter the land bank."
            ),
            **labels,
        )
    return None


def _open_buildings(parcels: list[Parcel]) -> dict[int, list[str]]:
    """Return, per parcel id, the codes of buildings neither vacated nor demolished."""
    open_by_parcel: dict[int, list[str]] = {}
    rows = (
        Building.objects.filter(parcel__in=parcels)
        .exclude(status__in=BUILDING_DONE_STATUSES)
        .order_by("parcel_id", "code")
        .values_list("parcel_id", "code")
    )
    for parcel_id, code in rows:
        open_by_parcel.setdefault(parcel_id, []).append(code)
    return open_by_parcel


def building_set_status(
    *,
    building: Building,
    to_status: str,
    actor: AbstractBaseUser,
    reason: str = "",
) -> BuildingStatusChange:
    """Record that a building was signed, vacated or demolished (one step forward)."""
    with transaction.atomic():
        locked = (
            Building.objects.select_for_update()
            .select_related("parcel")
            .get(pk=building.pk)
        )
        if not access.can_change_buildings(actor, locked.parcel.project_id):
            raise PermissionRefused(
                _("You may not change building %(code)s."), code=locked.code
            )
        current = BuildingStatus(locked.status)
        if BUILDING_NEXT.get(current) != to_status:
            raise TransitionRefused(
                _("Building %(code)s cannot go from “%(current)s” to “%(target)s”."),
                code=locked.code,
                current=current.label,
                target=BuildingStatus(to_status).label
                if to_status in BuildingStatus.values
                else to_status,
            )
        change = BuildingStatusChange.objects.create(
            building=locked,
            from_status=current,
            to_status=to_status,
            actor=actor,
            at=timezone.now(),
            reason=reason,
        )
        locked.status = to_status
        locked.save(update_fields=["status", "updated_at"])
        audit.record(
            AuditAction.BUILDING_STATUS,
            kind="building",
            object_id=locked.pk,
            code=locked.code,
            project=locked.parcel.project_id,
            actor=actor,
            changes={
                "parcel": locked.parcel.code,
                "from_status": current,
                "to_status": to_status,
                "reason": reason,
            },
        )
        changes.announce_buildings([locked.pk])
    building.status = locked.status
    return change


# The fields of a parcel an administrator may edit in the admin.
EDITABLE_FIELDS = (
    "code",
    "project",
    "land_class",
    "street",
    "geom",
    "declared_area_m2",
)


def parcel_edit(*, parcel: Parcel, actor: AbstractBaseUser) -> list[str]:
    """Save an administrator's edit of ``parcel``'s code, project, class or shape.

    ``parcel`` carries the new values in memory. The previous geometry, land
    class and declared area are kept as a ``ParcelRevision`` (kind ``edited``)
    when any of them changes, so as-of figures, exports and the undo of an
    earlier import see the edit; an audit record names every changed field.
    Return the names of the fields that changed. Status is never written here.
    """
    if not access.is_registry_admin(actor):
        raise PermissionRefused(
            _("Only registry administrators may edit parcel %(code)s."),
            code=parcel.code,
        )
    with transaction.atomic():
        before = Parcel.objects.select_for_update().get(pk=parcel.pk)
        parcel.geom = _as_storage_multipolygon(parcel.geom)
        changed = [name for name in EDITABLE_FIELDS if not _same(before, parcel, name)]
        if not changed:
            return []
        now = timezone.now()
        revision = None
        if {"geom", "land_class", "declared_area_m2"} & set(changed):
            revision = ParcelRevision.objects.create(
                parcel=before,
                kind=ParcelRevision.Kind.EDITED,
                old_geom=before.geom,
                old_land_class=before.land_class,
                old_declared_area_m2=before.declared_area_m2,
                actor=actor,
                at=now,
            )
        parcel.updated_at = now
        parcel.save(update_fields=[*EDITABLE_FIELDS, "updated_at"])
        parcel.refresh_from_db(fields=["area_m2"])
        edits = {
            name: {
                "from": _field_value(before, name),
                "to": _field_value(parcel, name),
            }
            for name in changed
            if name != "geom"
        }
        if "geom" in changed:
            edits["area_m2"] = {
                "from": round(before.area_m2, 2),
                "to": round(parcel.area_m2, 2),
            }
        if revision is not None:
            edits["revision"] = revision.pk
        audit.record(
            AuditAction.GEOMETRY_CHANGE
            if "geom" in changed
            else AuditAction.PARCEL_EDITED,
            kind="parcel",
            object_id=parcel.pk,
            code=parcel.code,
            project=parcel.project_id,
            actor=actor,
            changes=edits,
        )
        changes.announce_parcels([parcel.pk])
    return changed


def _same(before: Parcel, after: Parcel, name: str) -> bool:
    """Return whether field ``name`` is unchanged from ``before`` to ``after``."""
    if name == "geom":
        # A geometry sent back by the map widget unedited may differ in the
        # last digits; a tenth of a millimetre is no re-survey.
        return before.geom.equals_exact(after.geom, 1e-4)
    if name == "project":
        return before.project_id == after.project_id
    return getattr(before, name) == getattr(after, name)


def _field_value(parcel: Parcel, name: str):
    """Return the readable value of a parcel field, for the audit record."""
    if name == "project":
        return (
            Project.objects.filter(pk=parcel.project_id)
            .values_list("code", flat=True)
            .first()
        )
    return getattr(parcel, name)


def _move_changes(change: ParcelStatusChange) -> dict:
    """Return what a status move changed, for its audit record."""
    moved = {
        "move": change.move,
        "from_status": change.from_status,
        "to_status": change.to_status,
        "reason": change.reason,
        "evidence_ref": change.evidence_ref,
    }
    if change.banked_on:
        moved.update(banked_on=change.banked_on, bank_ref=change.bank_ref)
    return moved


def _record_bulk(
    parcels: list[Parcel], moves: list[ParcelStatusChange], *, actor
) -> None:
    """Record a bulk move: one audit record per project it touched."""
    by_project: dict[int | None, list[tuple[Parcel, ParcelStatusChange]]] = {}
    for parcel, move in zip(parcels, moves, strict=True):
        by_project.setdefault(parcel.project_id, []).append((parcel, move))
    for project_id, pairs in sorted(by_project.items(), key=lambda kv: kv[0] or 0):
        first = pairs[0][1]
        from_statuses: dict[str, int] = {}
        for _parcel, move in pairs:
            from_statuses[move.from_status] = from_statuses.get(move.from_status, 0) + 1
        summary = _move_changes(first)
        del summary["from_status"], summary["move"]
        audit.record(
            AuditAction.BULK_MOVE,
            kind="parcel",
            project=project_id,
            actor=actor,
            changes={
                **summary,
                "count": len(pairs),
                "from_statuses": from_statuses,
                "parcels": [parcel.code for parcel, _move in pairs],
            },
        )


def _apply(
    parcel: Parcel,
    *,
    to_status: str,
    actor: AbstractBaseUser,
    at: datetime,
    reason: str,
    evidence_ref: str,
    banked_on: date | None,
    bank_ref: str,
) -> ParcelStatusChange:
    """Change ``parcel`` in memory and return its (unsaved) history row."""
    change = ParcelStatusChange(
        parcel=parcel,
        move=move_between(parcel.status, to_status),
        from_status=parcel.status,
        to_status=to_status,
        actor=actor,
        at=at,
        reason=reason.strip(),
        evidence_ref=evidence_ref.strip(),
    )
    parcel.status = to_status
    if to_status == Status.BANKED:
        parcel.banked_on, parcel.bank_ref = banked_on, bank_ref.strip()
        change.banked_on, change.bank_ref = parcel.banked_on, parcel.bank_ref
    else:
        # Reopening a banked parcel takes it out of the bank: the reference stays
        # on the banking row of the history, not on the parcel.
        parcel.banked_on, parcel.bank_ref = None, ""
    return change


def _copy_status(source: Parcel, *, into: Parcel) -> None:
    for field in ("status", "banked_on", "bank_ref", "updated_at"):
        setattr(into, field, getattr(source, field))


def _as_storage_multipolygon(geom: GEOSGeometry) -> MultiPolygon:
    """Return ``geom`` as a MultiPolygon in the storage SRID."""
    if geom.srid and geom.srid != STORAGE_SRID:
        geom = geom.transform(STORAGE_SRID, clone=True)
    if geom.geom_type == "Polygon":
        geom = MultiPolygon(geom, srid=STORAGE_SRID)
    geom.srid = STORAGE_SRID
    return geom
