"""The composition root: the one place that builds engines, caches, clock and services."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from keyport.config import Settings
from keyport.db.engine import create_engine
from keyport.db.invalidation_feed import InvalidationPoller
from keyport.db.migrate import upgrade_database
from keyport.db.uow import SqlUnitOfWorkFactory
from keyport.domain.clock import Clock, SystemClock
from keyport.services.authentication import Authenticator
from keyport.services.cache import Caches
from keyport.services.companies import CompanyService
from keyport.services.invalidation import Invalidator
from keyport.services.keys import KeyService
from keyport.services.passwords import Passwords
from keyport.services.users import UserService


@dataclass
class Container:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    caches: Caches
    invalidator: Invalidator
    poller: InvalidationPoller
    passwords: Passwords
    authenticator: Authenticator
    keys: KeyService
    users: UserService
    companies: CompanyService

    async def migrate(self) -> None:
        await upgrade_database(self.engine)

    async def start_background(self) -> None:
        """What a serving process runs besides requests: cross-process cache eviction."""
        await self.poller.start()

    async def close(self) -> None:
        await self.poller.stop()
        await self.engine.dispose()


def build_container(settings: Settings, *, clock: Clock | None = None) -> Container:
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url)
    uow = SqlUnitOfWorkFactory(engine)
    caches = Caches(ttl=settings.cache_ttl, negative_ttl=settings.negative_cache_ttl)
    invalidator = Invalidator(caches)
    poller = InvalidationPoller(
        engine, invalidator.received, interval=settings.invalidation_poll_interval,
        now=clock.now,
    )
    passwords = Passwords(
        time_cost=settings.password_time_cost, memory_cost=settings.password_memory_cost
    )
    return Container(
        settings=settings,
        clock=clock,
        engine=engine,
        caches=caches,
        invalidator=invalidator,
        poller=poller,
        passwords=passwords,
        authenticator=Authenticator(uow, caches, clock),
        keys=KeyService(uow, clock, invalidator),
        users=UserService(uow, clock, invalidator, passwords),
        companies=CompanyService(uow, clock, passwords),
    )
