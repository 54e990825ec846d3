"""Backtest evaluation: the shipped rules (data/rules.yaml) over the labelled scenario stream
(tests/data/scenario_stream.jsonl: bursts of several categories in New York neighbourhoods, with figurative
posts, single posts and chatter as noise), in a database of its own with the NYC demo zones and gazetteer
(bench/db.py; needs only the services, not ../shared/data).

    python -m bench.eval_backtest [STREAM.jsonl]

Prints the backtest report (timeline, per-rule counts, missed incidents, alerts on noise, duplicates),
its last line `bursts_alerted=X/Y noise_alerts=N duplicate_alerts=N`. The run is rolled back, as
`tocsin rules backtest` does, so the database keeps only its zones and gazetteer.
"""

from __future__ import annotations

import sys
from pathlib import Path

DB_NAME = "tocsin_bench_backtest"
STREAM = Path(__file__).resolve().parents[2] / "tests" / "data" / "scenario_stream.jsonl"


def main(argv: list[str]) -> int:
    from alerts.rules import load_rules
    from bench.db import bench_database
    from bench.pipeline.__main__ import _setup
    from db.session import make_engine, make_sessionmaker
    from ingest.posts import pipeline
    from ingest.posts.classify import load_lexicon
    from ingest.posts.state import PostState
    from tocsin import backtest, models_registry
    from tocsin.settings import Settings

    stream_path = Path(argv[0]) if argv else STREAM
    settings = Settings()
    models_registry.load()
    engine = make_engine(bench_database(settings.database_url, DB_NAME))
    factory = make_sessionmaker(engine)
    _setup(factory)  # the five NYC demo layers and the demo gazetteer, once per database
    stream = backtest.read_stream(stream_path)
    for error in stream.errors:
        print(f"{stream_path}: {error}", file=sys.stderr)
    with factory() as session:
        state = PostState()
        try:
            result = backtest.run(session, stream=stream, rules=load_rules(settings.rules_file),
                                  index=state.gazetteer.get(session), lexicon=load_lexicon(),
                                  config=pipeline.PipelineConfig.from_settings(settings), state=state)
        finally:
            session.rollback()
            state.close()
    engine.dispose()
    for line in backtest.report(result):
        print(line)
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    del sys.argv[1:]  # bench.pipeline, imported for its setup, reads its own arguments from sys.argv
    sys.exit(main(args))
