"""Users of the API and the bearer tokens they hold."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from exchangis.db import Base, utcnow


class User(Base):
    """A user: a name, a password hash (argon2id) and whether they are an admin."""

    __tablename__ = "exg_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    update_time: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiToken(Base):
    """A bearer token (the session of a login); only its SHA-256 is stored."""

    __tablename__ = "exg_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("exg_user.id", ondelete="CASCADE"), index=True)
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    expire_time: Mapped[datetime] = mapped_column(index=True)
