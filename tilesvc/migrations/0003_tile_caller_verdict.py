"""The tile caller's check as a function, whose plans PostgreSQL keeps.

A map tile that has to be drawn checks its caller in the statement that draws
it (tilesvc/readers.py). Written inline, that check was planned again with
every tile: about 0.3 ms of a small tile's 1.5 ms. PL/pgSQL keeps the plans of
the statements inside a function for the whole database session, so the check
now costs its execution only. It is ``registry.access.can_read_registry`` in
SQL: an active user who is a superuser or holds any role; tests keep the two
in step.
"""

from django.db import migrations

VERDICT = """
CREATE FUNCTION tile_caller_verdict(p_token text, p_user bigint)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_id bigint;
    v_active boolean;
    v_superuser boolean;
BEGIN
    IF p_token IS NOT NULL THEN
        SELECT u.id, u.is_active, u.is_superuser
          INTO v_id, v_active, v_superuser
          FROM authtoken_token t JOIN auth_user u ON u.id = t.user_id
         WHERE t.key = p_token;
    ELSE
        SELECT u.id, u.is_active, u.is_superuser
          INTO v_id, v_active, v_superuser
          FROM auth_user u
         WHERE u.id = p_user;
    END IF;
    IF v_id IS NULL THEN
        RETURN 'unknown';
    ELSIF NOT v_active THEN
        RETURN 'inactive';
    ELSIF v_superuser OR EXISTS (
        SELECT 1 FROM registry_membership m WHERE m.user_id = v_id
    ) THEN
        RETURN 'reader';
    END IF;
    RETURN 'no_role';
END
$$;
COMMENT ON FUNCTION tile_caller_verdict(text, bigint) IS
    'May this API token (or else this user id) read map tiles? reader, no_role,'
    ' inactive or unknown (tilesvc/readers.py).';
"""


class Migration(migrations.Migration):
    dependencies = [
        ("tilesvc", "0002_orthophoto_conversion_job"),
        ("registry", "0010_parcel_project_index_once"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [
        migrations.RunSQL(
            VERDICT, "DROP FUNCTION tile_caller_verdict(text, bigint);"
        ),
    ]
