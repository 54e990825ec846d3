"""bench.cpu_ratio's interleaved method: who is charged what, on hand-made slices with known answers."""

import pytest

from bench.cpu_ratio.interleaved import FLOOR, PRODUCT, SHARED, blocks, charge, order, shared_pg

ZERO = dict.fromkeys(PRODUCT + FLOOR + SHARED, 0.0)


def used(**seconds: float) -> dict[str, float]:
    return {**ZERO, **seconds}


def test_slices_go_floor_product_product_floor():
    assert order(8) == ["floor", "product", "product", "floor"] * 2


def test_postgres_own_processes_are_what_the_two_databases_backends_leave():
    out = shared_pg({"postgres": 1.0, "pg_p": 0.6, "pg_f": 0.3, "load": 0.1})
    assert out == {"pg_p": 0.6, "pg_f": 0.3, "load": 0.1, "pg_shared": pytest.approx(0.1)}


def test_each_stack_has_its_own_groups_throughout_and_the_shared_ones_in_its_slices_and_the_product_the_tail():
    slices = [("floor", used(api_f=1.0, api_p=0.25, load=0.5, mosquitto=0.125)),  # the product idles beside
              ("product", used(api_p=2.0, relay_f=0.125, load=0.75, pg_shared=0.25))]
    tail = used(sms_p=0.5, api_f=0.0625, load=1.0)
    total = charge(slices, tail)
    assert total["product"]["api_p"] == 2.25
    assert total["product"]["sms_p"] == 0.5
    assert total["product"]["load"] == 1.75  # its slice and the tail, not the floor's slice
    assert total["product"]["pg_shared"] == 0.25
    assert total["product"]["mosquitto"] == 0.0
    assert total["floor"]["api_f"] == 1.0625  # its API's CPU in the tail is still its own
    assert total["floor"]["relay_f"] == 0.125  # while the product was loaded
    assert total["floor"]["load"] == 0.5
    assert total["floor"]["mosquitto"] == 0.125


def test_a_block_is_four_slices_and_each_side_is_per_report_of_its_two():
    floor = used(api_f=0.2, load=0.1)
    product = used(api_p=0.4, pg_p=0.2, load=0.1)
    slices = [("floor", floor), ("product", product), ("product", product), ("floor", floor)] * 2 \
        + [("floor", floor)]  # an unfinished block is left out
    each = blocks(slices, 100)
    assert len(each) == 2
    product_ms, floor_ms = each[0]
    assert product_ms == pytest.approx((0.7 * 2) * 1000 / 200)  # 7 ms per report
    assert floor_ms == pytest.approx((0.3 * 2) * 1000 / 200)  # 3 ms per report
