"""Keeping freshly drawn tiles off the request's path: one writer per process.

A drawn tile is kept once its response has gone out (``views._TileResponse``),
but the server thread that sent it is not free until that write is done: about
1 ms for a 100 KB tile on the file cache, which the next tile asked for on the
same connection waits out. So the write is handed to a thread of its own and
the server thread goes back to serving at once.

Losing a write costs only a redraw, never a stale tile (a tile is kept with
the stamp it was drawn under, which a later change replaces: see
``tilesvc.cache``), nor does a late one, so the hand-over never
waits: when ``PENDING`` tiles are already waiting — the disk cannot keep up —
a new one is not kept, and a process that stops drops what is waiting.
``settings.TILE_KEEP_BEHIND = False`` keeps every tile in the request's own
thread instead (the tests do, to read a hit right after a miss).
"""

import logging
import os
import queue
import threading

from django.conf import settings

from tilesvc import cache

PENDING = 64  # tiles waiting to be written, at most (about 6 MB of z15 tiles)
log = logging.getLogger(__name__)


class _Writer:
    """A process's queue of tiles to keep and the thread that keeps them."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.pending: queue.Queue = queue.Queue(maxsize=PENDING)
        self.thread = threading.Thread(target=self._run, name="tile-keeper")
        self.thread.daemon = True
        self.thread.start()

    def _run(self) -> None:
        while True:
            key, stamp, data = self.pending.get()
            try:
                cache.keep(key, stamp, data)
            except Exception:
                log.exception("could not keep tile %s", key)
            finally:
                self.pending.task_done()


_writer: _Writer | None = None
_starting = threading.Lock()


def keep(key: str, stamp: str, data: bytes) -> bool:
    """Keep a drawn tile, behind the request; False if it was not taken."""
    if not getattr(settings, "TILE_KEEP_BEHIND", True):
        cache.keep(key, stamp, data)
        return True
    try:
        _current().pending.put_nowait((key, stamp, data))
    except queue.Full:
        log.warning("tile writer behind by %d tiles; %s not kept", PENDING, key)
        return False
    return True


def settle(timeout: float = 10.0) -> None:
    """Wait until every tile handed over has been written (for the tests)."""
    pending = _current().pending
    with pending.all_tasks_done:
        if not pending.all_tasks_done.wait_for(
            lambda: pending.unfinished_tasks == 0, timeout
        ):
            raise TimeoutError(f"tiles still waiting to be kept after {timeout} s")


def _current() -> _Writer:
    """Return this process's writer, started on first use.

    A forked server worker inherits its parent's queue, whose locks the
    parent's thread may have held at the fork, but not the thread: it starts
    a writer and a queue of its own (the pid tells them apart).
    """
    global _writer
    writer = _writer
    if writer is not None and writer.pid == os.getpid():
        return writer
    with _starting:
        if _writer is None or _writer.pid != os.getpid():
            _writer = _Writer()
        return _writer
