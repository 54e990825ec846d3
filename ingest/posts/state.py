"""What the post pipeline keeps between batches in one process, owned by whoever runs it.

`create_app` builds one for the server (on `app.state.posts`) and closes it at shutdown; the CLI's replay,
the Jetstream connector and the benchmarks build their own. Nothing is cached at module level: two apps
in one process (tests do it) never share zones, gazetteer or worker process.
"""

from dataclasses import dataclass, field

from geo.gazetteer_store import IndexCache
from geo.places import JurisdictionCache
from geo.match_memory import ZoneSets
from ingest.posts.workers import WorkerPool


@dataclass(eq=False)
class PostState:
    zones: ZoneSets = field(default_factory=ZoneSets)  # the zones as matched in memory
    gazetteer: IndexCache = field(default_factory=IndexCache)  # the gazetteer's name index
    pool: WorkerPool = field(default_factory=WorkerPool)  # the worker process of the Python stage
    # The active place's boundary (geo.places); the API's report routes read it from here too.
    jurisdiction: JurisdictionCache = field(default_factory=JurisdictionCache)

    def close(self) -> None:
        self.pool.shutdown()
