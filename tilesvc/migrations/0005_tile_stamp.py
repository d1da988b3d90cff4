"""A tile's current stamp as a function, whose plan PostgreSQL keeps.

The stamp (the layer's epoch and the tile's generation, tilesvc/cache.py) is
read with every tile request, kept or not. Written inline, its two lookups were
planned again each time, which cost a kept tile more than the lookups
themselves; PL/pgSQL keeps the plans for the database session. STABLE: it sees
the snapshot of the statement that calls it, so the stamp and a tile drawn in
the same statement agree.
"""

from django.db import migrations

STAMP = """
CREATE FUNCTION tile_stamp(p_layer text, p_z integer, p_x integer, p_y integer)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_epoch text;
    v_generation text;
BEGIN
    SELECT epoch INTO v_epoch FROM tilesvc_layerepoch WHERE layer = p_layer;
    IF v_epoch IS NULL THEN
        RETURN NULL;  -- no epoch yet: nothing may be kept
    END IF;
    SELECT generation INTO v_generation FROM tilesvc_tilegeneration
     WHERE layer = p_layer AND z = p_z AND x = p_x AND y = p_y;
    RETURN v_epoch || ':' || coalesce(v_generation, '0');
END
$$;
COMMENT ON FUNCTION tile_stamp(text, integer, integer, integer) IS
    'The epoch and generation a tile of this layer is drawn under now '
    '(tilesvc/cache.py).';
"""


class Migration(migrations.Migration):
    dependencies = [("tilesvc", "0004_tile_generations_in_the_database")]

    operations = [
        migrations.RunSQL(
            STAMP, "DROP FUNCTION tile_stamp(text, integer, integer, integer);"
        ),
    ]
