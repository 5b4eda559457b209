"""Expiry reminders already sent, one row per key and notice (services.keys.expiry_reminders)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import exists, insert, select
from sqlalchemy.exc import IntegrityError

from keyport.db import rows
from keyport.db.repositories import _Repository
from keyport.db.tables import api_keys, key_expiry_notices
from keyport.domain.keys import ApiKey, KeyStatus


class SqlExpiryNotices(_Repository):
    async def keys_expiring_before(self, moment: datetime) -> Sequence[ApiKey]:
        result = await self._connection.execute(
            select(api_keys)
            .where(
                api_keys.c.expires_at <= moment,
                api_keys.c.status != KeyStatus.REVOKED.value,
                # Keys told they expired are done: the scan stays the size of what is due.
                ~exists().where(
                    key_expiry_notices.c.key_id == api_keys.c.id,
                    key_expiry_notices.c.notice == "expired",
                ),
            )
            .order_by(api_keys.c.expires_at, api_keys.c.id)
        )
        return [rows.to_api_key(r) for r in result]

    async def sent(self, key_id: str) -> set[str]:
        result = await self._connection.execute(
            select(key_expiry_notices.c.notice).where(key_expiry_notices.c.key_id == key_id)
        )
        return {str(r.notice) for r in result}

    async def mark(self, key_id: str, notice: str, now: datetime) -> bool:
        try:
            async with self._connection.begin_nested():
                await self._connection.execute(
                    insert(key_expiry_notices).values(key_id=key_id, notice=notice, sent_at=now)
                )
        except IntegrityError:
            return False
        return True
