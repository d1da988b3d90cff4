"""Make the status histories append-only in the database itself.

UPDATE is always refused. DELETE is refused unless the transaction has set
``registry.allow_history_delete`` to ``on`` (``SET LOCAL``): only the demo loader
does that, to replace synthetic data it generated itself.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION registry_history_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('registry.allow_history_delete', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'history table % is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
"""

TRIGGER = """
CREATE TRIGGER {table}_append_only
BEFORE UPDATE OR DELETE ON {table}
FOR EACH ROW EXECUTE FUNCTION registry_history_append_only();
"""

TABLES = ["registry_parcelstatuschange", "registry_buildingstatuschange"]


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION registry_history_append_only();"),
        *[
            migrations.RunSQL(
                TRIGGER.format(table=table),
                f"DROP TRIGGER {table}_append_only ON {table};",
            )
            for table in TABLES
        ],
    ]
