"""Typed settings from TOCSIN_* environment variables; read only when Settings() is built."""

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]

DEV_AUTHOR_KEY = "dev-only-author-hash-key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOCSIN_", extra="ignore")

    database_url: str = "postgresql+psycopg://tocsin:tocsin@127.0.0.1:55439/tocsin"
    mqtt_url: str = "mqtt://127.0.0.1:18839"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = False
    mqtt_ca_file: Path | None = None
    mqtt_client_id: str = "tocsin-dispatcher"
    mqtt_topic_prefix: str = "tocsin/v1"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    public_base_url: str = "http://127.0.0.1:8000"
    max_body_bytes: int = 1_000_000
    # Reports outside this lon/lat box are refused (west, south, east, north).
    jurisdiction_bbox: tuple[float, float, float, float] = (-74.30, 40.45, -73.65, 40.95)

    rules_file: Path = REPO_ROOT / "data" / "rules.yaml"
    author_hash_key: SecretStr = SecretStr(DEV_AUTHOR_KEY)

    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_base_url: str | None = None

    relay_batch_size: int = Field(default=200, ge=1)
    relay_poll_s: float = Field(default=5.0, gt=0)
    relay_max_attempts: int = Field(default=12, ge=1)

    shared_data_dir: Path = REPO_ROOT.parent / "shared" / "data"
    log_level: str = "INFO"

    @field_validator("jurisdiction_bbox")
    @classmethod
    def _bbox_ordered(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        west, south, east, north = v
        if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
            raise ValueError(f"jurisdiction_bbox {v} is not (west, south, east, north) in degrees")
        return v
