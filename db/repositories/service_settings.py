"""Service settings changed at runtime (e.g. the posting schedule): one row per key."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.orm import Session

from db.base import utcnow
from db.cleaning import check_id, clean_text
from db.models import ServiceSetting
from db.repositories._common import dialect_insert


def get_service_setting(session: Session, *, key: str) -> ServiceSetting | None:
    return session.get(ServiceSetting, key)


def set_service_setting(session: Session, *, key: str, value: str, changed_by: int | None = None) -> ServiceSetting:
    """Insert or replace, in one statement (two admins at once: the later write wins, nothing fails)."""
    values = {"value": clean_text(value, field="value"), "changed_at": utcnow(),
              "changed_by": None if changed_by is None else check_id(changed_by, field="user id")}
    stmt = (dialect_insert(session, ServiceSetting).values(key=key, **values)
            .on_conflict_do_update(index_elements=[ServiceSetting.key], set_=values))
    session.execute(stmt)
    return session.get(ServiceSetting, key, populate_existing=True)


def delete_service_setting(session: Session, *, key: str) -> bool:
    """Back to the configured default; False when there was nothing to delete."""
    return session.execute(delete(ServiceSetting).where(ServiceSetting.key == key)).rowcount == 1
