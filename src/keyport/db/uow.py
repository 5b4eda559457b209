"""The unit of work: one database transaction and the repositories that share it."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyport.db import integrity
from keyport.db.engine import WRITE_OPTION
from keyport.db.expiry_notices import SqlExpiryNotices
from keyport.db.repositories import (
    SqlAuditRepository,
    SqlCompanyRepository,
    SqlInvalidationLog,
    SqlKeyRepository,
    SqlUserRepository,
)
from keyport.db.team_repository import SqlTeamRepository
from keyport.db.token_repository import SqlTokenRepository
from keyport.db.webhooks import SqlWebhookRepository
from keyport.services.ports import (
    AuditRepository,
    CompanyRepository,
    ExpiryNotices,
    InvalidationLog,
    KeyRepository,
    TeamRepository,
    TokenRepository,
    UserRepository,
    WebhookRepository,
)


class SqlUnitOfWork:
    """`async with uow:` opens a transaction; `commit()` ends it, leaving without rolls back."""

    companies: CompanyRepository
    users: UserRepository
    keys: KeyRepository
    tokens: TokenRepository
    audit: AuditRepository
    invalidations: InvalidationLog
    team: TeamRepository
    webhooks: WebhookRepository
    expiry_notices: ExpiryNotices

    def __init__(self, engine: AsyncEngine, *, write: bool = False) -> None:
        self._engine = engine
        self._write = write
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> SqlUnitOfWork:
        connection = await self._engine.connect()
        if self._write:
            connection = await connection.execution_options(**{WRITE_OPTION: True})
        await connection.begin()
        self._connection = connection
        self.companies = SqlCompanyRepository(connection)
        self.users = SqlUserRepository(connection)
        self.keys = SqlKeyRepository(connection)
        self.tokens = SqlTokenRepository(connection)
        self.audit = SqlAuditRepository(connection)
        self.invalidations = SqlInvalidationLog(connection)
        self.team = SqlTeamRepository(connection)
        self.webhooks = SqlWebhookRepository(connection)
        self.expiry_notices = SqlExpiryNotices(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                if connection.in_transaction():
                    await connection.rollback()
            finally:
                await connection.close()
        refused = integrity.as_domain_error(exc) if exc is not None else None
        if refused is not None:  # a constraint said no: the caller's 409 or 400, not a 500
            raise refused from exc

    async def commit(self) -> None:
        assert self._connection is not None, "commit() outside `async with`"
        await self._connection.commit()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def __call__(self, *, write: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, write=write)
