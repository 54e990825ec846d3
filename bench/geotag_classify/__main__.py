"""Geotag + classify throughput on one core, over a synthetic corpus of NYC-ish posts.

The corpus is generated from templates (no research texts): most posts are everyday chatter, some name a
neighbourhood, borough or ZIP, some report an incident, some do both, a few carry coordinates or are
figurative ("this pizza is fire"). Place names come from the demo gazetteer itself. One process, one
thread, geotagging in chunks of 2,000 as the pipeline does (geo.geotag_batch). Time is this process's
CPU time (`time.process_time`), so other work on a shared machine does not count against it;
wall-clock rates are printed alongside. The best of five passes is reported.
Last line: `geotag_classify_posts_per_s=<x>`.
"""

from __future__ import annotations

import random
import sys
import time

CHUNK = 2_000

CHATTER = [
    "Can't believe it's already {day}, where did the week go",
    "Best coffee I've had in ages, highly recommend the oat latte",
    "Anyone else watching the game tonight? Let's go!!",
    "My cat knocked my plant off the shelf again lol",
    "Running late again, the {line} train is crawling",
    "This pizza is straight fire, no cap",
    "Just finished a 10k, legs are dead but worth it",
    "Big sale at the shoe store this weekend, prices are killing it",
    "Reading a great book about the history of the subway",
    "Who's going to the concert on {day}? Need a ticket",
    "Brunch with the crew, mimosas were flowing",
    "The new season of that show is so good, binged it all",
    "Rain again tomorrow, bring an umbrella",
    "Got flooded with emails after vacation, send help",
    "Fire drill at the office this morning, everyone out for 10 minutes",
]
PLACED_CHATTER = [
    "Beautiful sunset over {place} tonight",
    "Walking around {place} looking for a good taco spot",
    "Moving to {place} next month, any tips?",
    "Street fair in {place} this weekend, lots of food",
    "Traffic is terrible near {place} today",
]
INCIDENTS = [
    "Huge fire in {place}, smoke everywhere and trucks on scene",
    "Water main break on the corner in {place}, street is flooding",
    "Strong smell of gas in our building in {place}, Con Ed on the way",
    "Power outage across {place}, whole block is dark",
    "Bad car crash in {place}, ambulance just arrived",
    "Shots fired near {place}, police everywhere",
    "Scaffolding collapsed on a building in {place}",
    "Basement flooded again in {place} after the storm",
    "Transformer exploded in {place}, no power since noon",
    "Chemical spill reported near {place}, stay inside",
    "Man collapsed on the sidewalk in {place}, EMS on scene",
    "Flooding in {zip}, the drains can't keep up",
    "Gas leak reported in {zip}, people evacuated",
]
STREET_PLACES = ["Broadway and W 96th St", "5th Ave & E 42nd St", "Barclays Center", "the Brooklyn Bridge",
                 "Flatbush Ave", "Atlantic Ave and Flatbush Ave", "Queens Blvd near Roosevelt Ave"]
DAYS = ["Monday", "Tuesday", "Friday", "Saturday"]
LINES = ["A", "F", "7", "L", "Q", "2"]


def make_corpus(names: list[str], zips: list[str], n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    posts = []
    for _ in range(n):
        r = rng.random()
        if r < 0.55:
            text = rng.choice(CHATTER).format(day=rng.choice(DAYS), line=rng.choice(LINES))
        elif r < 0.7:
            text = rng.choice(PLACED_CHATTER).format(place=rng.choice(names))
        else:
            text = rng.choice(INCIDENTS).format(place=rng.choice(names), zip=rng.choice(zips))
        post = {"text": text, "coordinates": None}
        if rng.random() < 0.05:
            post["coordinates"] = (rng.uniform(-74.05, -73.75), rng.uniform(40.55, 40.9))
        posts.append(post)
    return posts


def main() -> int:
    from geo import gazetteer
    from geo import gazetteer_builders
    from geo.geotag_batch import geotag_many
    from ingest.posts.classify import classify, load_lexicon

    from bench.eval_all import nyc
    from tocsin.settings import Settings

    entries = gazetteer_builders.build_demo_entries()
    names = sorted({e.name for e in entries if e.kind in ("neighbourhood", "borough")})
    # Street parsing on: the shared street centerlines and landmarks when they are there (as make demo
    # loads them), and some posts that name a corner, a street or a landmark.
    index, note = nyc.build_index(Settings().shared_data_dir)
    streets = note != "none"
    if streets:
        names += STREET_PLACES
    else:
        index = gazetteer.GazetteerIndex(entries)
    print(f"gazetteer: {note}; street parsing {'on' if streets else 'off (no street data)'}")
    lexicon = load_lexicon()
    zips = sorted({e.code for e in entries if e.kind == "zip" and e.code})
    posts = make_corpus(names, zips, 20_000)
    bounds = gazetteer_builders.NYC_BBOX

    def one_pass() -> tuple[float, float, int, int]:
        located = incidents = 0
        wall, cpu = time.perf_counter(), time.process_time()
        for k in range(0, len(posts), CHUNK):  # as the pipeline does (ingest/posts/chunks.py)
            chunk = posts[k:k + CHUNK]
            tags = geotag_many([(p["text"], p["coordinates"], None) for p in chunk], index, bounds=bounds)
            for p, tag in zip(chunk, tags):
                c = classify(p["text"], lexicon)
                located += tag is not None
                incidents += c.category != "none"
        return time.process_time() - cpu, time.perf_counter() - wall, located, incidents

    one_pass()  # warm caches (crossings, regex) so passes compare like with like
    runs = [one_pass() for _ in range(5)]
    best, _wall, located, incidents = min(runs)
    print(f"{len(posts)} posts, {located} located, {incidents} incidents")
    print("passes (cpu):  " + ", ".join(f"{len(posts) / r[0]:,.0f}/s" for r in runs))
    print("passes (wall): " + ", ".join(f"{len(posts) / r[1]:,.0f}/s" for r in runs))
    print(f"geotag_classify_posts_per_s={len(posts) / best:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
