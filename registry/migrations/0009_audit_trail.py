"""The audit trail, append-only in the database; admin edits of geometry as revisions.

The trigger refuses every UPDATE, DELETE and TRUNCATE of ``registry_auditrecord``
with two exceptions: the UPDATE Django makes when a user is deleted (``actor`` set
to NULL, nothing else changed: the username stays as text), and TRUNCATE when
the session has set ``registry.allow_audit_truncate`` to ``on``, which only the
test suite does, to empty its own test database between tests. The application
never sets it.
"""

import django.contrib.postgres.indexes
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


FUNCTION = """
CREATE OR REPLACE FUNCTION registry_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        IF current_setting('registry.allow_audit_truncate', true) = 'on' THEN
            RETURN NULL;
        END IF;
    ELSIF TG_OP = 'UPDATE'
          AND OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
          AND to_jsonb(NEW) - 'actor_id' = to_jsonb(OLD) - 'actor_id' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

TRIGGERS = """
CREATE TRIGGER registry_auditrecord_append_only
BEFORE UPDATE OR DELETE ON registry_auditrecord
FOR EACH ROW EXECUTE FUNCTION registry_audit_append_only();
CREATE TRIGGER registry_auditrecord_no_truncate
BEFORE TRUNCATE ON registry_auditrecord
FOR EACH STATEMENT EXECUTE FUNCTION registry_audit_append_only();
"""

DROP = """
DROP TRIGGER registry_auditrecord_no_truncate ON registry_auditrecord;
DROP TRIGGER registry_auditrecord_append_only ON registry_auditrecord;
DROP FUNCTION registry_audit_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0008_parcel_tally"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditRecord",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "at",
                    models.DateTimeField(
                        default=django.utils.timezone.now, verbose_name="when"
                    ),
                ),
                (
                    "actor_username",
                    models.CharField(max_length=150, verbose_name="actor's username"),
                ),
                (
                    "action",
                    models.CharField(
                        choices=[
                            ("parcel_created", "Parcel registered"),
                            ("status_move", "Status moved"),
                            ("bulk_move", "Status moved in bulk"),
                            ("building_status", "Building status recorded"),
                            ("geometry_change", "Geometry changed"),
                            ("parcel_edited", "Parcel edited"),
                            ("role_granted", "Role granted"),
                            ("role_changed", "Role changed"),
                            ("role_revoked", "Role revoked"),
                            ("account_flags", "Account rights changed"),
                            ("import_committed", "Import committed"),
                            ("import_undone", "Import undone"),
                            ("export", "Export"),
                            ("token_created", "API token created"),
                            ("token_revoked", "API token revoked"),
                        ],
                        max_length=20,
                        verbose_name="action",
                    ),
                ),
                (
                    "object_kind",
                    models.CharField(max_length=20, verbose_name="object kind"),
                ),
                (
                    "object_id",
                    models.BigIntegerField(
                        blank=True, null=True, verbose_name="object id"
                    ),
                ),
                (
                    "object_code",
                    models.CharField(
                        blank=True, max_length=255, verbose_name="object code"
                    ),
                ),
                (
                    "project_code",
                    models.CharField(
                        blank=True, max_length=16, verbose_name="project code"
                    ),
                ),
                (
                    "changes",
                    models.JSONField(
                        blank=True, default=dict, verbose_name="what changed"
                    ),
                ),
                (
                    "remote_addr",
                    models.GenericIPAddressField(
                        blank=True, null=True, verbose_name="remote address"
                    ),
                ),
                (
                    "channel",
                    models.CharField(
                        choices=[
                            ("web", "Web page"),
                            ("api", "API"),
                            ("command", "Command"),
                            ("worker", "Job worker"),
                        ],
                        max_length=8,
                        verbose_name="channel",
                    ),
                ),
                (
                    "user_agent",
                    models.CharField(
                        blank=True, max_length=400, verbose_name="user agent"
                    ),
                ),
                (
                    "host",
                    models.CharField(blank=True, max_length=255, verbose_name="host"),
                ),
            ],
            options={
                "verbose_name": "audit record",
                "verbose_name_plural": "audit records",
                "ordering": ["-at", "-pk"],
            },
        ),
        migrations.RemoveConstraint(
            model_name="parcelrevision",
            name="parcelrevision_kind_known",
        ),
        migrations.AlterField(
            model_name="parcelrevision",
            name="import_batch_id",
            field=models.BigIntegerField(
                blank=True, null=True, verbose_name="import batch"
            ),
        ),
        migrations.AlterField(
            model_name="parcelrevision",
            name="kind",
            field=models.CharField(
                choices=[
                    ("updated", "Re-surveyed by import"),
                    ("undone", "Import undone"),
                    ("edited", "Edited in the admin"),
                ],
                max_length=8,
                verbose_name="kind",
            ),
        ),
        migrations.AddConstraint(
            model_name="parcelrevision",
            constraint=models.CheckConstraint(
                condition=models.Q(("kind__in", ["updated", "undone", "edited"])),
                name="parcelrevision_kind_known",
            ),
        ),
        migrations.AddConstraint(
            model_name="parcelrevision",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("kind", "edited"),
                    ("import_batch_id__isnull", False),
                    _connector="OR",
                ),
                name="parcelrevision_import_names_batch",
            ),
        ),
        migrations.AddField(
            model_name="auditrecord",
            name="actor",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
                verbose_name="actor",
            ),
        ),
        migrations.AddField(
            model_name="auditrecord",
            name="project",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="registry.project",
                verbose_name="project",
            ),
        ),
        migrations.AddIndex(
            model_name="auditrecord",
            index=models.Index(fields=["-at", "-id"], name="audit_at"),
        ),
        migrations.AddIndex(
            model_name="auditrecord",
            index=models.Index(fields=["project", "-at"], name="audit_project_at"),
        ),
        migrations.AddIndex(
            model_name="auditrecord",
            index=models.Index(fields=["actor_username", "-at"], name="audit_actor_at"),
        ),
        migrations.AddIndex(
            model_name="auditrecord",
            index=models.Index(fields=["object_code"], name="audit_object_code"),
        ),
        migrations.AddIndex(
            model_name="auditrecord",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["changes"], name="audit_changes", opclasses=["jsonb_path_ops"]
            ),
        ),
        migrations.AddConstraint(
            model_name="auditrecord",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    (
                        "action__in",
                        [
                            "parcel_created",
                            "status_move",
                            "bulk_move",
                            "building_status",
                            "geometry_change",
                            "parcel_edited",
                            "role_granted",
                            "role_changed",
                            "role_revoked",
                            "account_flags",
                            "import_committed",
                            "import_undone",
                            "export",
                            "token_created",
                            "token_revoked",
                        ],
                    )
                ),
                name="auditrecord_action_known",
            ),
        ),
        migrations.AddConstraint(
            model_name="auditrecord",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("channel__in", ["web", "api", "command", "worker"])
                ),
                name="auditrecord_channel_known",
            ),
        ),
        migrations.RunSQL(FUNCTION + TRIGGERS, DROP),
    ]
