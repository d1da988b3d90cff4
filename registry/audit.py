"""The audit trail's writers: one ``AuditRecord`` per change, in its transaction.

Services call ``record`` beside the change they make (status moves, geometry
edits, building steps), so the record commits or rolls back with it. Changes
that can be made from many places (roles in the admin, a shell or a fixture;
account rights; API tokens; exports) are recorded by the receivers at the end
of this module, connected when the registry app is ready; they run inside the
saving transaction whenever there is one (the admin's always is). Imports are
recorded by ``importers.audit``.

Who acted is passed explicitly by the services; receivers take the logged-in
user of the request being served (``registry.audit_origin``), or nobody, for a
command. From where comes from ``registry.audit_origin.current_origin``.
"""

import json

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver
from rest_framework.authtoken.models import Token

from registry.audit_origin import Origin, current_origin
from registry.models import AuditAction, AuditRecord, ExportLog, Membership, Project

# What an account may do besides its memberships.
ACCOUNT_FLAGS = ("is_superuser", "is_staff", "is_active")


def record(
    action: str,
    *,
    kind: str,
    object_id: int | None = None,
    code: str = "",
    project: Project | int | None = None,
    changes: dict | None = None,
    actor=None,
    origin: Origin | None = None,
) -> AuditRecord:
    """Append one audit record; call it inside the change's own transaction.

    ``actor`` defaults to the logged-in user of the current request; ``origin``
    to the current one.
    """
    origin = origin or current_origin()
    if actor is None:
        actor = origin.user()
    project_id, project_code = _project(project)
    return AuditRecord.objects.create(
        actor=actor if actor is not None and actor.pk else None,
        actor_username=actor.get_username() if actor is not None else "",
        action=action,
        object_kind=kind,
        object_id=object_id,
        object_code=code,
        project_id=project_id,
        project_code=project_code,
        changes=_json(changes or {}),
        remote_addr=origin.remote_addr,
        channel=origin.channel,
        user_agent=origin.user_agent,
        host=origin.host,
    )


def _project(project: Project | int | None) -> tuple[int | None, str]:
    if project is None:
        return None, ""
    if isinstance(project, Project):
        return project.pk, project.code
    code = Project.objects.filter(pk=project).values_list("code", flat=True).first()
    return project, code or ""


def _json(changes: dict) -> dict:
    """Return ``changes`` with dates, decimals and lazy strings as JSON values."""
    return json.loads(json.dumps(changes, cls=DjangoJSONEncoder, ensure_ascii=False))


# Roles: every Membership created, changed or deleted, wherever it happens.


def _role(membership: Membership) -> dict:
    project = membership.project if membership.project_id else None
    return {"role": membership.role, "project": project.code if project else None}


@receiver(pre_save, sender=Membership, dispatch_uid="audit_membership_before")
def _membership_before(sender, instance: Membership, **kwargs) -> None:
    before = None
    if instance.pk:
        before = Membership.objects.filter(pk=instance.pk).first()
    instance._audit_before = _role(before) if before else None


@receiver(post_save, sender=Membership, dispatch_uid="audit_membership_saved")
def _membership_saved(sender, instance: Membership, created: bool, **kwargs) -> None:
    before, after = getattr(instance, "_audit_before", None), _role(instance)
    if before == after:
        return
    _record_role(
        instance,
        AuditAction.ROLE_GRANTED if before is None else AuditAction.ROLE_CHANGED,
        after if before is None else {"from": before, "to": after},
    )


@receiver(post_delete, sender=Membership, dispatch_uid="audit_membership_deleted")
def _membership_deleted(sender, instance: Membership, **kwargs) -> None:
    _record_role(instance, AuditAction.ROLE_REVOKED, _role(instance))


def _record_role(membership: Membership, action: str, changes: dict) -> None:
    user = get_user_model().objects.filter(pk=membership.user_id).first()
    record(
        action,
        kind="user",
        object_id=membership.user_id,
        code=user.get_username() if user else "",
        project=membership.project_id,
        changes=changes,
    )


# Account rights: superuser, staff and active, which count like roles.


@receiver(pre_save, sender=get_user_model(), dispatch_uid="audit_account_before")
def _account_before(sender, instance, update_fields=None, **kwargs) -> None:
    instance._audit_flags = None
    if update_fields is not None and not set(update_fields) & set(ACCOUNT_FLAGS):
        return  # a login's last_login, a password change: no rights change
    if instance.pk:
        instance._audit_flags = (
            sender.objects.filter(pk=instance.pk).values(*ACCOUNT_FLAGS).first()
        )


@receiver(post_save, sender=get_user_model(), dispatch_uid="audit_account_saved")
def _account_saved(sender, instance, created: bool, **kwargs) -> None:
    before = getattr(instance, "_audit_flags", None)
    after = {flag: getattr(instance, flag) for flag in ACCOUNT_FLAGS}
    if created:
        # A new account is recorded only when it starts with rights.
        before = {"is_superuser": False, "is_staff": False, "is_active": True}
    if before is None or before == after:
        return
    record(
        AuditAction.ACCOUNT_FLAGS,
        kind="user",
        object_id=instance.pk,
        code=instance.get_username(),
        changes={
            flag: {"from": before[flag], "to": after[flag]}
            for flag in ACCOUNT_FLAGS
            if before[flag] != after[flag]
        },
    )


# API tokens: created and revoked (the key itself is never recorded).


@receiver(post_save, sender=Token, dispatch_uid="audit_token_created")
def _token_created(sender, instance: Token, created: bool, **kwargs) -> None:
    if created:
        _record_token(instance, AuditAction.TOKEN_CREATED)


@receiver(post_delete, sender=Token, dispatch_uid="audit_token_revoked")
def _token_revoked(sender, instance: Token, **kwargs) -> None:
    _record_token(instance, AuditAction.TOKEN_REVOKED)


def _record_token(token: Token, action: str) -> None:
    user = get_user_model().objects.filter(pk=token.user_id).first()
    record(
        action,
        kind="user",
        object_id=token.user_id,
        code=user.get_username() if user else "",
    )


# Exports: every ExportLog row is an export (the API's and the command's).


@receiver(post_save, sender=ExportLog, dispatch_uid="audit_export")
def _exported(sender, instance: ExportLog, created: bool, **kwargs) -> None:
    if not created:
        return
    selection = dict(instance.selection)
    within = selection.pop("within", None)
    if within:
        # A drawn area can hold 10,000 vertices; the export log keeps it whole.
        selection["within"] = within[:200] + ("…" if len(within) > 200 else "")
    record(
        AuditAction.EXPORT,
        kind="export",
        object_id=instance.pk,
        code=f"{instance.format}",
        project=Project.objects.filter(code=selection.get("project")).first()
        if selection.get("project")
        else None,
        actor=instance.user,
        changes={
            "format": instance.format,
            "selection": selection,
            # Streamed GeoJSON is counted as it goes: its export log says how
            # many features it held once it finished.
            "features": instance.features if instance.sha256 else None,
            "total_area_m2": instance.total_area_m2 if instance.sha256 else None,
            "sha256": instance.sha256,
            "export_log": instance.pk,
        },
    )
