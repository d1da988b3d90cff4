"""Make parcel revisions append-only, like the status histories (see 0002)."""

from django.db import migrations

TABLE = "registry_parcelrevision"


class Migration(migrations.Migration):
    dependencies = [("registry", "0004_parcel_revisions")]

    operations = [
        migrations.RunSQL(
            f"CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION registry_history_append_only();",
            f"DROP TRIGGER {TABLE}_append_only ON {TABLE};",
        ),
    ]
