"""Coordinate reference systems the registry speaks, and transforms between them.

Geometry is stored in EPSG:4547, CGCS2000 / 3-degree Gauss-Kruger CM 114E: metres,
and Guangming lies within 25 km of the central meridian, so planar areas there differ
from ellipsoidal ones by under 0.001%. APIs speak EPSG:4326 (RFC 7946) unless a client
asks otherwise; web map tiles are EPSG:3857.
"""

from functools import lru_cache

from pyproj import CRS, Transformer

STORAGE_SRID = 4547
CGCS2000_SRID = 4490
WGS84_SRID = 4326
WEB_MERCATOR_SRID = 3857


@lru_cache(maxsize=64)
def transformer(source: int | str, target: int | str) -> Transformer:
    """Return a cached transformer between two CRSs, always in x/y (lon/lat) order.

    ``always_xy`` matters: EPSG:4326 and EPSG:4490 are latitude-first by definition,
    and every caller here thinks in easting/northing or longitude/latitude.
    """
    return Transformer.from_crs(
        CRS.from_user_input(source), CRS.from_user_input(target), always_xy=True
    )
