"""Zone weights as kept on a post's observation (ingest.posts.zones.pack_weights / unpack_weights)."""

import numpy as np

from ingest.posts import zones as post_zones


def test_pack_weights_round_trips_per_position():
    pos = np.array([0, 0, 0, 2, 4, 4])
    zone = np.array([7, 3, 2_000_000_000, 5, 1, 9])
    weight = np.array([0.5, 1.0, 1 / 3, 1.0, 0.25, 0.75])
    packed = post_zones.pack_weights(pos, zone, weight, 6)
    assert [p is None for p in packed] == [False, True, False, True, False, True]
    for p in (0, 2, 4):
        z, w = post_zones.unpack_weights(packed[p])
        assert z.tolist() == zone[pos == p].tolist()
        assert w.tolist() == weight[pos == p].tolist()  # float8: exactly the weights the signals get


def test_pack_weights_of_nothing():
    empty = np.empty(0, np.int64)
    assert post_zones.pack_weights(empty, empty, np.empty(0), 3) == [None, None, None]
    z, w = post_zones.unpack_weights(b"")
    assert len(z) == len(w) == 0
