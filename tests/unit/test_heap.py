"""tocsin.heap: what start-up built is moved out of the collector's full passes, garbage first collected."""

import subprocess
import sys
import textwrap

from tocsin import heap

# In a fresh interpreter: a full collection of this test process's heap would take seconds.
_CHECK = textwrap.dedent("""
    import gc, weakref
    from tocsin import heap

    class Node:
        other = None

    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    dead = weakref.ref(a)
    del a, b
    kept = [Node()]
    frozen = heap.freeze()
    walked = [o for g in range(3) for o in gc.get_objects(generation=g)]
    print(dead() is None, frozen == gc.get_freeze_count() > 0, not any(o is kept for o in walked))
""")


def test_freeze_collects_cycles_first_and_takes_live_objects_out_of_the_passes():
    out = subprocess.run([sys.executable, "-c", _CHECK], capture_output=True, text=True, timeout=60, check=True)
    cycle_freed, counted, out_of_passes = out.stdout.split()
    assert cycle_freed == "True", "unreachable cycles were frozen instead of freed"
    assert counted == "True"
    assert out_of_passes == "True", "a live object is still walked by the collector's passes"


# Requests build and drop many small objects: after freeze() such churn must not set off collections.
_CHURN = textwrap.dedent("""
    import gc
    from tocsin import heap

    def churn():
        for _ in range(200):
            rows = [{"id": i, "tags": [str(i)]} for i in range(300)]  # about 600 tracked objects at a time
            del rows

    def collections():
        runs = []
        gc.callbacks.append(lambda phase, info: phase == "start" and runs.append(info["generation"]))
        churn()
        gc.callbacks.clear()
        return len(runs)

    gc.set_threshold(300, 10, 10)  # CPython's default is 700: this churn crosses either
    before = collections()
    heap.freeze()
    print(before, collections())
""")


def test_after_freeze_short_lived_objects_set_off_no_collection():
    out = subprocess.run([sys.executable, "-c", _CHURN], capture_output=True, text=True, timeout=60, check=True)
    before, after = map(int, out.stdout.split())
    assert before >= 100, "the churn should cross a small young threshold (the test is not testing anything)"
    assert after == 0


def test_the_api_freezes_its_heap_as_it_starts(monkeypatch):
    from fastapi.testclient import TestClient

    from tocsin.app import create_app
    from tocsin.settings import Settings

    calls = []
    monkeypatch.setattr(heap, "freeze", lambda: calls.append("freeze") or 0)
    # Nothing listens on port 9: starting the app must not need the database.
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:9/none", mqtt_url="mqtt://127.0.0.1:9")
    app = create_app(settings)
    assert calls == []
    with TestClient(app):
        assert calls == ["freeze"]


def test_an_app_told_not_to_freeze_leaves_the_heap_alone(monkeypatch):
    from fastapi.testclient import TestClient

    from tocsin.app import create_app
    from tocsin.settings import Settings

    calls = []
    monkeypatch.setattr(heap, "freeze", lambda: calls.append("freeze") or 0)
    settings = Settings(database_url="postgresql+psycopg://nobody@127.0.0.1:9/none", mqtt_url="mqtt://127.0.0.1:9",
                        freeze_heap=False)
    with TestClient(create_app(settings)):
        assert calls == []
