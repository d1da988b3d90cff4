"""Django's file cache, tuned for tiles: no deflating, culled now and then.

Two costs of ``FileBasedCache`` that a tile server cannot afford on the path of
a request that renders a tile:

- every value is deflated with zlib at the default level: about 6 ms for a
  160 KB tile that MVT's own encoding already made compact. Level 0 still
  writes a valid zlib stream, which the base class reads back unchanged;
- every ``set`` lists the whole directory to decide whether to cull; with tens
  of thousands of tiles that listing costs more than the rendering. Culling
  every few hundred writes keeps the bound (approximately).
"""

import itertools
import pickle
import zlib

from django.core.cache.backends.filebased import FileBasedCache

CULL_EVERY = 500


class TileFileCache(FileBasedCache):
    """A file cache that stores values undeflated and culls every few writes."""

    def __init__(self, location, params):
        super().__init__(location, params)
        self._writes = itertools.count()

    def _write_content(self, file, timeout, value):
        file.write(
            pickle.dumps(self.get_backend_timeout(timeout), self.pickle_protocol)
        )
        file.write(zlib.compress(pickle.dumps(value, self.pickle_protocol), 0))

    def _cull(self):
        if next(self._writes) % CULL_EVERY == 0:
            super()._cull()
