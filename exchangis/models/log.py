"""The log archive: a completed execution's job and task logs, line by line."""

from __future__ import annotations

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exchangis.db import Base


class LogLine(Base):
    """One archived log line; ``owner`` is ``exec:<eid>`` or ``task:<tid>``."""

    __tablename__ = "exg_log_line"

    owner: Mapped[str] = mapped_column(String(64), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    text: Mapped[str] = mapped_column(Text)
