"""The gazetteer table: save, read back, and the per-process index that follows the table."""

import pytest

from tests.integration.posts_support import GAZETTEER, entries

pytestmark = pytest.mark.integration


def test_round_trip_and_replace_by_source(session_factory):
    from db.session import transaction
    from geo import gazetteer_store
    from geo.gazetteer import GazetteerEntry

    with transaction(session_factory) as s:
        gazetteer_store.save_entries(s, entries=entries("a.csv"))
        gazetteer_store.save_entries(s, entries=[GazetteerEntry(
            name="O'Hara \"Corner\"", kind="landmark", geometry=GAZETTEER[2][2], alternates=("Hara's, Corner", "OHC"),
            source="b.csv", code="X1", region="US-NY", radius_m=80.0)])
        gazetteer_store.save_entries(s, entries=entries("a.csv"))  # again: replaces, does not add
    with session_factory() as s:
        loaded = gazetteer_store.load_entries(s)
        assert gazetteer_store.count_by_source(s) == {"a.csv": len(GAZETTEER), "b.csv": 1}
    odd = next(e for e in loaded if e.source == "b.csv")
    assert (odd.name, odd.alternates, odd.code, odd.radius_m) == ('O\'Hara "Corner"', ("Hara's, Corner", "OHC"),
                                                                  "X1", 80.0)
    by_name = {e.name: e for e in loaded}
    for name, kind, geom in GAZETTEER:
        assert by_name[name].kind == kind and by_name[name].geometry.equals(geom)


def test_the_index_cache_follows_the_table(session_factory):
    from db.session import transaction
    from geo import gazetteer_store
    from geo.gazetteer import GazetteerEntry

    cache = gazetteer_store.IndexCache()
    with transaction(session_factory) as s:
        gazetteer_store.save_entries(s, entries=entries())
    with session_factory() as s:
        first = cache.get(s)
        assert cache.get(s) is first  # unchanged table: the same index
        assert len(first) == len(GAZETTEER)
    with transaction(session_factory) as s:
        gazetteer_store.save_entries(s, entries=[GazetteerEntry(name="Newplace", kind="landmark",
                                                                geometry=GAZETTEER[3][2], source="new")])
    with session_factory() as s:
        second = cache.get(s)
        assert second is not first and len(second) == len(GAZETTEER) + 1
        assert cache.reload(s) is not second
