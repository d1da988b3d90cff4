"""Tests for the WGS84 <-> GCJ-02 conversion; no database needed."""

import numpy as np
import pytest
from pyproj import Geod

from spatial.gcj02 import gcj02_to_wgs84, out_of_china, wgs84_to_gcj02

GEOD = Geod(ellps="WGS84")

# Guangming district and its surroundings.
LON_RANGE = (113.8, 114.05)
LAT_RANGE = (22.65, 22.85)


def guangming_grid(n_lon=26, n_lat=21):
    lon, lat = np.meshgrid(
        np.linspace(*LON_RANGE, n_lon), np.linspace(*LAT_RANGE, n_lat)
    )
    return lon, lat


def guangming_random(n=2000, seed=440311):
    rng = np.random.default_rng(seed)
    return rng.uniform(*LON_RANGE, n), rng.uniform(*LAT_RANGE, n)


# WGS84 -> GCJ-02 reference values computed with the independent,
# public-domain ``prcoords`` 1.0.2 implementation (a = 6378245, same ee).
REFERENCE = [
    ((113.93, 22.75), (113.93487738117382, 22.74700465105297)),
    ((113.8, 22.65), (113.8050924001586, 22.64710214474298)),
    ((116.4, 39.9), (116.40624278491117, 39.901403529849404)),
]


@pytest.mark.parametrize(("wgs", "gcj"), REFERENCE)
def test_forward_matches_reference_implementation(wgs, gcj):
    lon, lat = wgs84_to_gcj02(*wgs)
    assert lon == pytest.approx(gcj[0], abs=1e-12)
    assert lat == pytest.approx(gcj[1], abs=1e-12)


@pytest.mark.parametrize("points", [guangming_grid(), guangming_random()])
def test_round_trip_wgs_gcj_wgs(points):
    lon, lat = points
    back_lon, back_lat = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert np.max(np.abs(back_lon - lon)) < 1e-8
    assert np.max(np.abs(back_lat - lat)) < 1e-8


def test_round_trip_gcj_wgs_gcj():
    lon, lat = guangming_random(seed=7)
    again_lon, again_lat = wgs84_to_gcj02(*gcj02_to_wgs84(lon, lat))
    assert np.max(np.abs(again_lon - lon)) < 1e-8
    assert np.max(np.abs(again_lat - lat)) < 1e-8


def test_inverse_beats_one_step_approximation():
    lon, lat = guangming_grid()
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    # One-step approximation: subtract the offset measured at the GCJ point.
    fwd_lon, fwd_lat = wgs84_to_gcj02(gcj_lon, gcj_lat)
    naive_lon = 2 * gcj_lon - fwd_lon
    naive_lat = 2 * gcj_lat - fwd_lat
    exact_lon, exact_lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    naive_err = GEOD.inv(lon, lat, naive_lon, naive_lat)[2]
    exact_err = GEOD.inv(lon, lat, exact_lon, exact_lat)[2]
    assert naive_err.max() > 0.5  # metres: the approximation is visibly off
    assert exact_err.max() < 1e-3


@pytest.mark.parametrize("points", [guangming_grid(), guangming_random()])
def test_offset_magnitude_in_guangming(points):
    lon, lat = points
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    azimuth, _, dist = GEOD.inv(lon, lat, gcj_lon, gcj_lat)
    assert dist.min() > 400.0
    assert dist.max() < 700.0
    # The shift points east-south-east throughout the district.
    assert np.all((azimuth > 100.0) & (azimuth < 140.0))


@pytest.mark.parametrize(
    ("lon", "lat"),
    [
        (-0.1276, 51.5072),  # London
        (-74.006, 40.7128),  # New York
        (151.2093, -33.8688),  # Sydney
        (139.6917, 35.6895),  # Tokyo, east of the box
        (100.5018, 0.5),  # just south of the box
    ],
)
def test_outside_china_unchanged(lon, lat):
    assert out_of_china(lon, lat)
    assert wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert gcj02_to_wgs84(lon, lat) == (lon, lat)


def test_outside_china_unchanged_in_mixed_array():
    lon = np.array([-0.1276, 113.93, 151.2093])
    lat = np.array([51.5072, 22.75, -33.8688])
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    assert gcj_lon[[0, 2]].tolist() == lon[[0, 2]].tolist()
    assert gcj_lat[[0, 2]].tolist() == lat[[0, 2]].tolist()
    assert gcj_lon[1] != lon[1]
    wgs_lon, wgs_lat = gcj02_to_wgs84(lon, lat)
    assert wgs_lon[[0, 2]].tolist() == lon[[0, 2]].tolist()
    assert wgs_lat[[0, 2]].tolist() == lat[[0, 2]].tolist()
    np.testing.assert_array_equal(out_of_china(lon, lat), [True, False, True])


@pytest.mark.parametrize("func", [wgs84_to_gcj02, gcj02_to_wgs84])
def test_scalar_in_scalar_out(func):
    lon, lat = func(113.93, 22.75)
    assert type(lon) is float
    assert type(lat) is float
    lon32, lat32 = func(np.float32(113.93), np.float32(22.75))
    assert type(lon32) is float
    assert type(lat32) is float


@pytest.mark.parametrize("func", [wgs84_to_gcj02, gcj02_to_wgs84])
def test_array_shape_preserved_and_matches_scalars(func):
    lon, lat = guangming_grid(n_lon=5, n_lat=3)
    out_lon, out_lat = func(lon, lat)
    assert isinstance(out_lon, np.ndarray)
    assert out_lon.shape == lon.shape == (3, 5)
    assert out_lat.shape == lat.shape
    for idx in np.ndindex(lon.shape):
        s_lon, s_lat = func(float(lon[idx]), float(lat[idx]))
        assert out_lon[idx] == pytest.approx(s_lon, abs=1e-12)
        assert out_lat[idx] == pytest.approx(s_lat, abs=1e-12)


@pytest.mark.parametrize("func", [wgs84_to_gcj02, gcj02_to_wgs84])
def test_lists_and_broadcasting(func):
    out_lon, out_lat = func([113.9, 113.95, 114.0], 22.75)
    assert out_lon.shape == out_lat.shape == (3,)
    assert np.allclose(out_lat[0], func(113.9, 22.75)[1], atol=1e-12)
    empty_lon, empty_lat = func(np.array([]), np.array([]))
    assert empty_lon.shape == empty_lat.shape == (0,)


@pytest.mark.parametrize("func", [wgs84_to_gcj02, gcj02_to_wgs84])
def test_inputs_not_modified(func):
    lon, lat = guangming_random(n=10)
    lon_copy, lat_copy = lon.copy(), lat.copy()
    func(lon, lat)
    np.testing.assert_array_equal(lon, lon_copy)
    np.testing.assert_array_equal(lat, lat_copy)


def test_non_finite_input_terminates():
    lon, lat = gcj02_to_wgs84(np.array([np.nan, 113.93]), np.array([22.75, 22.75]))
    assert np.isnan(lon[0])
    assert np.isfinite(lon[1])
    assert np.isfinite(lat[1])
