"""pygeoapi's PostgreSQL provider, fixed for a northing-first storage CRS.

Loaded by the pygeoapi server of ``bench/ogcapi_bench.py`` (its own venv, with
``bench/`` on ``PYTHONPATH``); never imported by the application.

EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E) declares its axes
northing, easting, and pygeoapi (0.21 to 0.24) transforms with pyproj's
authority axis order: the request bbox reaches the provider as
``[N, E, N, E]`` and becomes ``ST_MakeEnvelope(N, E, N, E, 4547)``, which PostGIS
(always x = easting) matches with nothing; the output transform likewise reads
the stored (E, N) coordinates as (N, E). This subclass swaps the bbox back and
transforms the output easting first. Everything else (the SQLAlchemy query, the
``COUNT`` for ``numberMatched``, the per-feature shapely/pyproj conversion) is
pygeoapi's own, so the benchmark times pygeoapi's work, not a rewrite of it.
"""

from functools import partial

import pyproj
from pygeoapi.provider.sql import PostgreSQLProvider
from shapely import ops


class EastingFirstPostgreSQLProvider(PostgreSQLProvider):
    """PostgreSQL provider whose storage CRS is used easting first."""

    def _get_bbox_filter(self, bbox):
        """Swap the northing-first bbox that pygeoapi hands over to x, y."""
        if bbox and len(bbox) == 4:
            bbox = [bbox[1], bbox[0], bbox[3], bbox[2]]
        return super()._get_bbox_filter(bbox)

    def _get_crs_transform(self, crs_transform_spec=None):
        """Transform output geometries from (E, N) to (lon, lat).

        Only pygeoapi 0.21-0.23 call this hook; 0.24 builds the transform itself
        and honours the provider's ``always_xy: true`` instead (set in the
        generated configuration).
        """
        if crs_transform_spec is None:
            return None
        transform = pyproj.Transformer.from_crs(
            pyproj.CRS.from_wkt(crs_transform_spec.source_crs_wkt),
            pyproj.CRS.from_wkt(crs_transform_spec.target_crs_wkt),
            always_xy=True,
        ).transform
        return partial(ops.transform, transform)
