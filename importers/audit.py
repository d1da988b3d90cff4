"""Audit records of imports: one when a batch is committed, one when it is undone.

Recorded by receivers of the batch's own saves, which the import core makes in
the commit's (and the undo's) transaction, so the record commits or rolls back
with the import. A batch remembers the state it was loaded or last saved with;
a save that moves it into ``committed`` or ``undone`` is the event. Which
parcels a commit re-surveyed, with the geometry each had, are its
``ParcelRevision`` rows (``import_batch_id``); the record carries the counts.
"""

from django.db.models.signals import post_init, post_save
from django.dispatch import receiver

from importers.models import ImportBatch
from registry import audit
from registry.models import AuditAction

EVENTS = {
    ImportBatch.State.COMMITTED: AuditAction.IMPORT_COMMITTED,
    ImportBatch.State.UNDONE: AuditAction.IMPORT_UNDONE,
}


@receiver(post_init, sender=ImportBatch, dispatch_uid="audit_batch_loaded")
def _loaded(sender, instance: ImportBatch, **kwargs) -> None:
    instance._audit_state = instance.state if instance.pk else None


@receiver(post_save, sender=ImportBatch, dispatch_uid="audit_batch_saved")
def _saved(sender, instance: ImportBatch, update_fields=None, **kwargs) -> None:
    if update_fields is not None and "state" not in update_fields:
        return
    before, instance._audit_state = (
        getattr(instance, "_audit_state", None),
        (instance.state),
    )
    action = EVENTS.get(instance.state)
    if action is None or before == instance.state:
        return
    committed = action == AuditAction.IMPORT_COMMITTED
    audit.record(
        action,
        kind="import_batch",
        object_id=instance.pk,
        code=instance.file_name,
        project=instance.project,
        actor=instance.committed_by if committed else instance.undone_by,
        changes={
            "batch": instance.pk,
            "layer": instance.layer,
            "file_name": instance.file_name,
            "sha256": instance.sha256,
            "format": instance.source_format,
            "features": instance.features,
            "created": instance.created,
            "updated": instance.updated,
            "unchanged": instance.unchanged,
            "rejected": instance.rejected,
        },
    )
