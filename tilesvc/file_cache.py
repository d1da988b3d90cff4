"""Django's file cache, culled now and then instead of on every write.

``FileBasedCache`` lists its whole directory on every ``set`` to decide whether
to cull; with tens of thousands of tiles that listing costs more than rendering
a tile. Culling every few hundred writes keeps the bound (approximately) and
takes the listing off the rendering path.
"""

import itertools

from django.core.cache.backends.filebased import FileBasedCache

CULL_EVERY = 500


class TileFileCache(FileBasedCache):
    """A file cache whose size check runs once every ``CULL_EVERY`` writes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._writes = itertools.count()

    def _cull(self):
        if next(self._writes) % CULL_EVERY == 0:
            super()._cull()
