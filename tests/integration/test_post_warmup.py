"""ingest.posts.warmup against the real PostGIS: a server's first post batch finds the caches built."""

import pytest
import shapely

pytestmark = pytest.mark.integration


def test_warm_caches_the_zone_weights_of_detailed_outlines(session_factory, districts):
    import hashlib

    from db.session import transaction
    from geo import gazetteer_store
    from ingest.posts.state import PostState
    from ingest.posts.warmup import warm_post_caches
    from tests.integration.posts_support import GAZETTEER, entries

    with transaction(session_factory) as s:
        gazetteer_store.save_entries(s, entries=entries())
    state = PostState()
    assert warm_post_caches(session_factory, state) == 1  # Roundtown: the only outline of 1,000+ bytes of WKB
    with session_factory() as s:
        zs = state.zones.get(s)
        codes = {zid: zs.info[zid][1] for zid in zs.info}
    roundtown = dict((n, g) for n, _, g in GAZETTEER)["Roundtown"]
    digest = hashlib.blake2b(shapely.to_wkb(roundtown), digest_size=16).digest()
    weights = {codes[z]: round(w, 6) for z, w in zs.area_weights[digest]}
    assert weights == {"A": 0.5, "B": 0.5, "P1": 1.0}  # centred on the A/B border, inside P1
