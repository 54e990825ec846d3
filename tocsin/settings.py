"""Typed settings from TOCSIN_* environment variables; read only when Settings() is built."""

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]

DEV_AUTHOR_KEY = "dev-only-author-hash-key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOCSIN_", extra="ignore")

    database_url: str = "postgresql+psycopg://tocsin:tocsin@127.0.0.1:55439/tocsin"
    # Behind a transaction pooler (database_url ending in `?pooler=transaction`, README "Behind PgBouncer"),
    # the LISTEN connections (the relay's, the SMS planner's, the live map's) need a direct URL of the same
    # database: a pooled connection is not the one NOTIFY is delivered to. Unset: database_url.
    database_listen_url: str | None = None
    mqtt_url: str = "mqtt://127.0.0.1:18839"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = False
    mqtt_ca_file: Path | None = None
    mqtt_client_id: str = "tocsin-dispatcher"
    mqtt_topic_prefix: str = "tocsin/v1"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Requests one API process works on at once (its thread pool and its database connections). Requests
    # are mostly Python CPU: beyond a few per core, more only queue on the GIL (and database connections
    # opened for the overflow were closed again after each request); the rest wait, cheaply, in the
    # event loop.
    api_concurrency: int = Field(default=8, ge=1, le=200)
    # `tocsin serve` builds the post pipeline's caches (gazetteer outlines' zone weights) in the background
    # as it starts (ingest.posts.warmup); a deployment that takes no public posts can skip the CPU it costs.
    warm_post_caches: bool = True
    # Long-running processes (API, worker) move what start-up built out of the collector's full passes
    # (tocsin.heap). A process that starts many apps in turn (the test suite) would pay a full collection
    # of its whole heap for each, so the tests turn it off; tests/unit/test_heap.py covers it on.
    freeze_heap: bool = True
    public_base_url: str = "http://127.0.0.1:8000"
    # Operator sessions (accounts.sessions). Idle: an hour without a request or an open live map ends a
    # session (an open map counts as use, so a wall screen stays signed in); absolute: one 12 h shift,
    # whatever the activity. Browsers' cookie-authenticated writes and the websocket must come from
    # public_base_url's origin or one of allowed_origins (a JSON list, e.g. ["https://ops.example.org"]).
    session_idle_s: float = Field(default=3600.0, gt=0)
    session_max_s: float = Field(default=12 * 3600.0, gt=0)
    allowed_origins: list[str] = []
    # Live map basemap: an XYZ tile URL such as https://tile.openstreetmap.org/{z}/{x}/{y}.png; unset draws
    # land (from the borough or top zone layer) on a water-coloured background (works offline).
    basemap_url: str | None = None
    basemap_attribution: str = ""
    # CAP 1.2 <sender>: globally unique for this deployment, no spaces, commas, "<" or "&".
    cap_sender: str = Field(default="tocsin@localhost", pattern=r"^[^\s,<&]+$")
    max_body_bytes: int = 1_000_000
    # Utility report limits: vertices and area of a submitted footprint, requests per minute per API key
    # (an in-process token bucket per worker process; 0 disables it).
    max_vertices: int = Field(default=10_000, ge=4)
    max_area_km2: float = Field(default=2_000.0, gt=0)
    rate_limit_per_min: int = Field(default=6_000, ge=0)
    # Reports outside this lon/lat box are refused (west, south, east, north), unless a place is set up
    # (`tocsin place init`, geo.places): then the active place's boundary is the jurisdiction.
    jurisdiction_bbox: tuple[float, float, float, float] = (-74.30, 40.45, -73.65, 40.95)

    rules_file: Path = REPO_ROOT / "data" / "rules.yaml"
    author_hash_key: SecretStr = SecretStr(DEV_AUTHOR_KEY)
    # Public posts: the same text from the same author within this window counts once; stored posts
    # are purged after the retention period (`tocsin posts purge`); the largest POST /v1/posts:batch body.
    post_dedup_window_s: float = Field(default=3600.0, ge=0)
    post_retention_days: float = Field(default=30.0, gt=0)
    posts_batch_max_bytes: int = Field(default=32_000_000, ge=1)
    # Bounded lateness: a post observed longer ago than this is stored but feeds no rule (its windows are past).
    max_lateness_s: float = Field(default=3600.0, gt=0)
    # A post batch's classify/geotag stage runs in a forked worker process (ingest.posts.workers), on
    # the other core; false runs it in a thread of the serving process.
    post_worker_process: bool = True

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_base_url: str | None = None
    # SMS fan-out (dispatch.fanout): the Twilio account's messages per second, Twilio's queue ceiling
    # (it queues at most 4 hours of messages at that rate), attempts before a delivery fails,
    # concurrent sends, and the region for phone numbers written without a country code.
    sms_mps: float = Field(default=1.0, gt=0)
    sms_queue_ceiling_s: float = Field(default=4 * 3600, gt=0)
    sms_max_attempts: int = Field(default=8, ge=1)
    # A send claimed (`sending`) but not recorded this long is presumed lost with its worker: retried,
    # or `unknown` once out of attempts. Keep it above the Twilio request timeout (10 s).
    sms_sending_timeout_s: float = Field(default=120.0, gt=0)
    sms_concurrency: int = Field(default=4, ge=1, le=64)
    # The SMS planner waits this long after an outbox NOTIFY, so a burst of events is planned as one batch.
    sms_gather_s: float = Field(default=0.2, ge=0, le=10)
    phone_region: str = "US"

    relay_batch_size: int = Field(default=200, ge=1)
    relay_poll_s: float = Field(default=5.0, gt=0)
    relay_max_attempts: int = Field(default=12, ge=1)
    # The alert sweeper (hysteresis, expiry, repeats, escalation ticks) runs in the worker this often.
    sweep_interval_s: float = Field(default=5.0, gt=0)
    # A worker role whose freshest heartbeat (written every few seconds) is older than this is stalled
    # on /readyz and /metrics: its process is gone, wedged, or cannot reach the database.
    worker_stall_s: float = Field(default=60.0, gt=0)
    # The worker serves its own /metrics (relay ack and SMS send latency) on api_host at this port; 0: not served.
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    # Retention (`tocsin purge`, and the worker's purge role every purge_interval_s; 0 leaves it to cron). Posts
    # keep post_retention_days (above). Reports and resolved alerts stay a year, so last season's incidents
    # can be compared; deliveries (phone-linked SMS records, MQTT events) 90 days, enough to answer "who was
    # paged"; audit rows (ended silences, superseded feed imports) a year. Whatever an unresolved alert
    # points to is kept whatever its age.
    report_retention_days: float = Field(default=365.0, gt=0)
    alert_retention_days: float = Field(default=365.0, gt=0)
    delivery_retention_days: float = Field(default=90.0, gt=0)
    audit_retention_days: float = Field(default=365.0, gt=0)
    purge_interval_s: float = Field(default=86400.0, ge=0)

    shared_data_dir: Path = REPO_ROOT.parent / "shared" / "data"
    log_level: str = "INFO"

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        # An origin is scheme://host[:port] and nothing else; a trailing slash or path would never match.
        bad = [o for o in v if not re.fullmatch(r"https?://[^/\s?#]+", o)]
        if bad:
            raise ValueError(f"allowed_origins {bad} are not origins like 'https://ops.example.org:8443'")
        return [o.lower() for o in v]

    @field_validator("jurisdiction_bbox")
    @classmethod
    def _bbox_ordered(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        west, south, east, north = v
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise ValueError(f"jurisdiction_bbox {v} is not (west, south, east, north) in degrees")
        return v

    @model_validator(mode="after")
    def _listen_direct(self) -> "Settings":
        def pooled(url: str | None) -> bool:  # db.session.split_pooler reads the parameter (and checks it)
            return url is not None and "pooler" in parse_qs(urlsplit(url).query)

        if pooled(self.database_url) and (self.database_listen_url is None or pooled(self.database_listen_url)):
            raise ValueError("database_url goes through a transaction pooler (pooler=transaction), where LISTEN "
                             "hears nothing: set TOCSIN_DATABASE_LISTEN_URL to a direct URL of the same database")
        return self

    @property
    def listen_url(self) -> str:
        """The URL LISTEN connections use: direct to PostgreSQL, never through a transaction pooler."""
        return self.database_listen_url or self.database_url
