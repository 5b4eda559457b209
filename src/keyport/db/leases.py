"""Named leases in the database (services/runtime/singleton_loop.py): taken with one conditional
UPDATE."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from keyport.db.engine import WRITE_OPTION
from keyport.db.tables import background_leases as leases


class SqlLeaseStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def acquire(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        # A read first, so that most ticks write nothing (on SQLite a write takes the lock of
        # the whole database): another's live lease is left alone, our own is renewed only
        # once half of it is gone.
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(leases.c.holder, leases.c.expires_at).where(leases.c.name == name)
                )
            ).first()
        if row is not None and row.expires_at > now:
            if row.holder != holder:
                return False
            if row.expires_at - now > (until - now) / 2:
                return True
        # Renew our own lease or take one that ran out; the database decides between
        # processes racing for it, since only one UPDATE can match the old row.
        take = (
            update(leases)
            .where(
                and_(
                    leases.c.name == name,
                    or_(leases.c.holder == holder, leases.c.expires_at <= now),
                )
            )
            .values(holder=holder, expires_at=until)
        )
        async with self._engine.connect() as connection:
            connection = await connection.execution_options(**{WRITE_OPTION: True})
            async with connection.begin():
                if (await connection.execute(take)).rowcount == 1:
                    return True
            try:
                async with connection.begin():
                    await connection.execute(
                        insert(leases).values(name=name, holder=holder, expires_at=until)
                    )
            except IntegrityError:
                return False  # someone else holds it
            return True

    async def release(self, name: str, holder: str) -> None:
        """Hand the lease back at a clean stop, so another process takes over at once."""
        async with self._engine.connect() as connection:
            connection = await connection.execution_options(**{WRITE_OPTION: True})
            async with connection.begin():
                await connection.execute(
                    delete(leases).where(and_(leases.c.name == name, leases.c.holder == holder))
                )
