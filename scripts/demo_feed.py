"""Write the demo post feed with its timestamps moved so that the recording ends now.

    python scripts/demo_feed.py data/demo_posts.jsonl var/demo_posts.jsonl
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


if __name__ == "__main__":
    main(*sys.argv[1:3])
