"""tocsin.heap: what start-up built is moved out of the collector's full passes, garbage first collected."""

import gc
import weakref

import pytest

from tocsin import heap


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture(autouse=True)
def _unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freeze_collects_cycles_first_and_takes_live_objects_out_of_the_passes():
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    dead = weakref.ref(a)
    del a, b
    kept = [_Node()]

    frozen = heap.freeze()

    assert dead() is None, "unreachable cycles were frozen instead of freed"
    assert frozen == gc.get_freeze_count() > 0
    assert not any(o is kept for o in gc.get_objects()), "a live object is still walked by full passes"


def test_the_api_freezes_its_heap_as_it_starts():
    from fastapi.testclient import TestClient

    from tocsin.app import create_app
    from tocsin.settings import Settings

    # Nothing listens on port 9: starting the app must not need the database.
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:9/none", mqtt_url="mqtt://127.0.0.1:9")
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(settings)):
        assert gc.get_freeze_count() > 0
