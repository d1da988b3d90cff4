"""CRSs the query APIs accept by reference, and rectangles given in them.

OGC API – Features Part 2 names a CRS by URI and says coordinates follow that CRS's
own axis order: CRS84 is longitude, latitude; EPSG:4326 and EPSG:4490 are latitude,
longitude; EPSG:4547 (the storage CRS) is northing, easting (its X axis points
north). Only CRS84 is the RFC 7946 default, so only CRS84 is longitude first among
the geographic ones. Getting this wrong puts Guangming in the Indian Ocean for
every client that follows the standard (GDAL and QGIS do).
"""

import itertools
import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import shapely
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from spatial.crs import CGCS2000_SRID, STORAGE_SRID, WGS84_SRID, transformer

EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{code}"
CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

# A straight edge in degrees is a curve in metres (a parallel bulges by about
# 2.6 m over 0.05° in Guangming). Edges are cut into as many pieces as keep each
# piece within TOLERANCE_M of the true curve: the bulge falls with the square of
# the piece's length, so n pieces of an edge bulging s leave s / n².
TOLERANCE_M = 0.001
MAX_PIECES = 1024
GRID_POINTS = 64


@dataclass(frozen=True)
class ApiCrs:
    """A CRS a client may name: its URI, its SRID, and its axis order."""

    uri: str
    srid: int
    swapped: bool
    """Whether the first coordinate is northing/latitude (authority order)."""

    @property
    def geographic(self) -> bool:
        """Return whether coordinates are degrees."""
        return self.srid != STORAGE_SRID

    @property
    def decimals(self) -> int:
        """Return the coordinate precision that fits: ~1 cm in degrees, 1 mm in m."""
        return 7 if self.geographic else 3


CRS84 = ApiCrs(CRS84_URI, WGS84_SRID, swapped=False)
SUPPORTED: tuple[ApiCrs, ...] = (
    CRS84,
    ApiCrs(EPSG_URI.format(code=WGS84_SRID), WGS84_SRID, swapped=True),
    ApiCrs(EPSG_URI.format(code=CGCS2000_SRID), CGCS2000_SRID, swapped=True),
    ApiCrs(EPSG_URI.format(code=STORAGE_SRID), STORAGE_SRID, swapped=True),
)
STORAGE = SUPPORTED[-1]

_SHORT = re.compile(r"^\[?(?P<authority>EPSG|OGC):(?:0:|1\.3:)?(?P<code>\w+)\]?$", re.I)


def lookup(reference: str) -> ApiCrs | None:
    """Return the supported CRS named by a URI (or ``EPSG:N``, ``[EPSG:N]``)."""
    reference = reference.strip()
    if reference.startswith("https://"):
        reference = "http://" + reference.removeprefix("https://")
    for crs in SUPPORTED:
        if reference == crs.uri:
            return crs
    match = _SHORT.match(reference)
    if match is None:
        return None
    authority, code = match["authority"].upper(), match["code"].upper()
    if authority == "OGC":
        return CRS84 if code == "CRS84" else None
    return next((c for c in SUPPORTED[1:] if str(c.srid) == code), None)


@lru_cache(maxsize=8)
def domain(crs: ApiCrs) -> tuple[float, float, float, float]:
    """Return the storage CRS's area of use in ``crs``, as (x, y) bounds.

    Outside it there can be no parcel, and Gauss-Kruger formulas stop meaning
    anything far from their meridian, so rectangles are clipped to it first.
    """
    west, south, east, north = CRS.from_epsg(STORAGE_SRID).area_of_use.bounds
    if crs.geographic:
        return west, south, east, north
    lon = np.linspace(west, east, GRID_POINTS)
    lat = np.linspace(south, north, GRID_POINTS)
    lons, lats = np.meshgrid(lon, lat)
    x, y = transformer(WGS84_SRID, STORAGE_SRID).transform(lons.ravel(), lats.ravel())
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def rectangle(
    bounds: tuple[float, float, float, float], crs: ApiCrs
) -> BaseGeometry | None:
    """Return a rectangle given in ``crs`` as a geometry in storage coordinates.

    ``bounds`` are (minx, miny, maxx, maxy) in the CRS's axis order. The
    rectangle is first clipped to the storage CRS's area of use; None when
    nothing is left (no parcel can lie there). A rectangle of zero width or
    height (a bbox around a point or a line) stays a point or a line.
    """
    a0, a1, b0, b1 = bounds
    x0, y0, x1, y1 = (a1, a0, b1, b0) if crs.swapped else (a0, a1, b0, b1)
    dx0, dy0, dx1, dy1 = domain(crs)
    x0, y0, x1, y1 = max(x0, dx0), max(y0, dy0), min(x1, dx1), min(y1, dy1)
    if x0 > x1 or y0 > y1:
        return None
    if crs.srid == STORAGE_SRID:
        ring = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        return _closed(ring, degenerate=x0 == x1 or y0 == y1)
    forward = transformer(crs.srid, STORAGE_SRID)
    corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
    ring: list[tuple[float, float]] = []
    for (ax, ay), (bx, by) in itertools.pairwise(corners):
        t = np.linspace(0.0, 1.0, _pieces(forward, ax, ay, bx, by), endpoint=False)
        ex, ny = forward.transform(ax + (bx - ax) * t, ay + (by - ay) * t)
        ring += zip(ex.tolist(), ny.tolist(), strict=True)
    return _closed(ring, degenerate=x0 == x1 or y0 == y1)


def _pieces(forward, ax: float, ay: float, bx: float, by: float) -> int:
    """Return how many pieces keep the edge a→b within TOLERANCE_M of its curve."""
    (pax, pbx, pmx), (pay, pby, pmy) = forward.transform(
        [ax, bx, (ax + bx) / 2], [ay, by, (ay + by) / 2]
    )
    bulge = math.hypot(pmx - (pax + pbx) / 2, pmy - (pay + pby) / 2)
    return min(MAX_PIECES, max(1, math.ceil(math.sqrt(bulge / TOLERANCE_M))))


def _closed(ring: list[tuple[float, float]], *, degenerate: bool) -> BaseGeometry:
    if not degenerate:
        return shapely.Polygon(ring)
    points = shapely.MultiPoint(ring).normalize()
    unique = shapely.get_coordinates(points)
    if len(np.unique(unique, axis=0)) == 1:
        return shapely.Point(unique[0])
    return shapely.LineString(ring).simplify(0)
