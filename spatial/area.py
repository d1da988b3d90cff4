"""Areas of parcels, computed independently of the database.

The database keeps ``Parcel.area_m2`` itself (planar ``ST_Area`` in the storage CRS);
the functions here let checks and tests recompute it another way: geodesically on
the CGCS2000 ellipsoid from longitude/latitude.
"""

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry.base import BaseGeometry

from spatial.crs import STORAGE_SRID, WGS84_SRID, transformer

# CGCS2000's ellipsoid differs from GRS80's only in the flattening's 11th digit.
_GEOD = Geod(ellps="GRS80")


def planar_area_m2(geom: BaseGeometry) -> float:
    """Return the planar area of a geometry given in a metric CRS."""
    return float(shapely.area(geom))


def geodesic_area_m2(geom: BaseGeometry, srid: int = STORAGE_SRID) -> float:
    """Return the area of ``geom`` on the ellipsoid, whatever CRS it is given in."""
    if srid != WGS84_SRID:
        geom = to_lonlat(geom, srid)
    area, _perimeter = _GEOD.geometry_area_perimeter(geom)
    return abs(area)


def to_lonlat(geom: BaseGeometry, srid: int = STORAGE_SRID) -> BaseGeometry:
    """Transform a shapely geometry from ``srid`` to longitude/latitude (WGS84)."""
    forward = transformer(srid, WGS84_SRID)
    return shapely.transform(
        geom, lambda xy: np.column_stack(forward.transform(xy[:, 0], xy[:, 1]))
    )
