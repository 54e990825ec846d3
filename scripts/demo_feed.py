"""Write the demo post feed with its timestamps moved so that the recording ends now; and, before a
demo run, end the cooldowns an earlier demo run left.

    python scripts/demo_feed.py data/demo_posts.jsonl var/demo_posts.jsonl
    python scripts/demo_feed.py --end-cooldowns     # the configured database (TOCSIN_DATABASE_URL)
"""

import json
import sys
from datetime import UTC, datetime


def main(src: str, dst: str) -> None:
    posts = [json.loads(line) for line in open(src, encoding="utf-8") if line.strip()]
    times = [datetime.fromisoformat(p["created_at"]) for p in posts]
    shift = datetime.now(UTC) - max(times)
    run = int(datetime.now(UTC).timestamp())
    with open(dst, "w", encoding="utf-8") as out:
        for post, t in zip(posts, times):
            post["created_at"] = (t + shift).isoformat()
            post["external_id"] = f"{post['external_id']}-{run}"
            # Each run is a new recording: without this, a second `make demo` within the repost window
            # (TOCSIN_POST_DEDUP_WINDOW_S) counted every post as a repost of the first run's, and showed
            # no new alert.
            post["author"] = f"{post['author']}-{run}"
            out.write(json.dumps(post) + "\n")


def end_cooldowns(session, now: datetime) -> int:
    """End every rule cooldown still running at `now`; returns how many. A second `make demo` within an
    hour replays the same incidents: the first run's alerts, resolved by then, held each rule's cooldown
    (30 minutes for flood posts) in their zones, and the second run opened none of them. A demo is a
    rehearsal; in production a cooldown keeps one incident from flapping, and nothing else calls this."""
    from sqlalchemy import text

    n = session.execute(text("UPDATE alert_rules SET cooldown_until = :now WHERE cooldown_until > :now"),
                        {"now": now}).rowcount or 0
    return n + (session.execute(text("UPDATE alerts SET cooldown_until = :now WHERE state = 'resolved' "
                                     "AND cooldown_until > :now"), {"now": now}).rowcount or 0)


def _end_cooldowns_here() -> None:
    from db.session import make_engine, make_sessionmaker, transaction
    from tocsin.settings import Settings

    engine = make_engine(Settings().database_url)
    with transaction(make_sessionmaker(engine)) as session:
        n = end_cooldowns(session, datetime.now(UTC))
    engine.dispose()
    print(f"ended {n} cooldowns left by an earlier run")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--end-cooldowns"]:
        _end_cooldowns_here()
    else:
        main(*sys.argv[1:3])
