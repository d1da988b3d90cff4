"""The area imported data must fall in: the district outline grown by a margin."""

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from spatial.crs import STORAGE_SRID, WGS84_SRID, transformer


@lru_cache(maxsize=4)
def service_area(path: Path, margin_m: float) -> BaseGeometry:
    """Return the WGS84 GeoJSON outline in ``path`` in EPSG:4547, plus a margin."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    features = document.get("features", [document])
    outline = shapely.union_all([shape(feature["geometry"]) for feature in features])
    forward = transformer(WGS84_SRID, STORAGE_SRID)
    projected = shapely.transform(
        outline, lambda xy: np.column_stack(forward.transform(xy[:, 0], xy[:, 1]))
    )
    grown = projected.buffer(margin_m)
    shapely.prepare(grown)
    return grown
