"""The tile writer: drawn tiles are kept by a thread of their own, never waited on."""

import logging
import os
import threading

import pytest

from tilesvc import cache, keeper


@pytest.fixture
def behind(settings):
    """Keep tiles behind the request, as a server does; all written at the end."""
    settings.TILE_KEEP_BEHIND = True
    yield
    keeper.settle()


@pytest.fixture
def writes(monkeypatch):
    """Record which thread keeps each tile."""
    threads = []
    original = cache.keep

    def keep(key, data, etag):
        threads.append(threading.current_thread().name)
        original(key, data, etag)

    monkeypatch.setattr(cache, "keep", keep)
    return threads


def test_a_drawn_tile_is_kept_by_the_writer_thread(
    behind, writes, login, planner, parcel_tile_url
):
    client = login(planner)

    first = client.get(parcel_tile_url)
    keeper.settle()
    second = client.get(parcel_tile_url)

    assert writes == ["tile-keeper"]
    assert (first["X-Tile-Cache"], second["X-Tile-Cache"]) == ("miss", "hit")
    assert second.content == first.content


def test_without_the_writer_the_request_keeps_its_tile(
    writes, login, planner, parcel_tile_url
):
    login(planner).get(parcel_tile_url)

    assert writes == [threading.current_thread().name]


def test_a_writer_that_cannot_keep_up_drops_tiles_instead_of_waiting(
    behind, monkeypatch, caplog
):
    released = threading.Event()
    monkeypatch.setattr(cache, "keep", lambda *tile: released.wait(10))

    taken = [keeper.keep(f"k{i}", b"tile", "etag") for i in range(keeper.PENDING + 2)]
    released.set()

    # The writer holds one, the queue the next PENDING; the last is dropped.
    assert taken.count(False) >= 1
    assert taken[: keeper.PENDING] == [True] * keeper.PENDING
    assert "not kept" in caplog.text


def test_a_failed_write_is_logged_and_the_writer_goes_on(behind, monkeypatch, caplog):
    kept = []

    def keep(key, data, etag):
        if key == "broken":
            raise OSError("disk gone")
        kept.append(key)

    monkeypatch.setattr(cache, "keep", keep)
    with caplog.at_level(logging.ERROR, logger="tilesvc.keeper"):
        keeper.keep("broken", b"tile", "etag")
        keeper.keep("fine", b"tile", "etag")
        keeper.settle()

    assert kept == ["fine"]
    assert "could not keep tile broken" in caplog.text


def test_a_forked_worker_starts_a_writer_of_its_own(behind):
    parent = keeper._current()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a server worker forked from a master
        try:
            child = keeper._current()
            ok = child is not parent and child.pid == os.getpid()
            os.write(write, b"ok" if ok and child.thread.is_alive() else b"no")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 2)
    os.waitpid(pid, 0)

    assert answer == b"ok"
