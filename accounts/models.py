"""Tables for who calls: utilities and their API keys, control-room operators, their browser sessions and
agencies."""

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, ForeignKey, String, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class Utility(Base):
    __tablename__ = "utilities"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    territory: Mapped[Any | None] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ApiKey(Base):
    """A hashed bearer key; the clear key is shown once, at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    utility_id: Mapped[int | None] = mapped_column(ForeignKey("utilities.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # utility | partner
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    revoked_at: Mapped[datetime | None]


class Operator(Base):
    """A control-room account (migration 0005); the bearer token is stored only as its SHA-256."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # viewer | operator | admin
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    disabled_at: Mapped[datetime | None]


class OperatorSession(Base):
    """A signed-in browser (migration 0013; alerts.sessions): the cookie holds a random id, stored only
    as its SHA-256. Ends when idle too long, at expires_at, or when revoked (sign-out, account change)."""

    __tablename__ = "operator_sessions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"), index=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    ip: Mapped[str | None] = mapped_column(String(64))


class Agency(Base):
    """An agency sharing the control room (migration 0022; accounts.agencies): the categories it covers (empty:
    all) in the zones it covers (a JSON array of {"layer", "code"}; empty: all)."""

    __tablename__ = "agencies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    categories: Mapped[list[str]] = mapped_column(ARRAY(String), server_default=text("'{}'"), default=list)
    zones: Mapped[list[dict[str, str]]] = mapped_column(JSONB, server_default=text("'[]'"), default=list)
    created_at: Mapped[datetime]


class OperatorAgency(Base):
    __tablename__ = "operator_agencies"

    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id", ondelete="CASCADE"), primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id", ondelete="CASCADE"), primary_key=True,
                                           index=True)
