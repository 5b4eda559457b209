"""The composition root: the one place that builds engines, caches, clock and services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy.ext.asyncio import AsyncEngine

from keyport.config import Settings
from keyport.db.engine import create_engine, is_sqlite
from keyport.db.hot_reads import PostgresHotReader, SqliteHotReader
from keyport.db.invalidation_channels import Listener, PostgresListener
from keyport.db.invalidation_feed import InvalidationPoller
from keyport.db.leases import SqlLeaseStore
from keyport.db.migrate import upgrade_database
from keyport.db.secret_file import default_secret_path, load_or_create_secret
from keyport.db.sessions import SqlSessionStore
from keyport.db.uow import SqlUnitOfWorkFactory
from keyport.db.usage_queries import SqlUsageReader
from keyport.db.usage_store import SqlUsageStore
from keyport.domain.clock import Clock, SystemClock
from keyport.domain.rate_limits import Policy
from keyport.outbound.webhook_http import HttpWebhookSender, TargetGuard
from keyport.redis.buckets import RedisBuckets
from keyport.redis.invalidation_channel import RedisChannel
from keyport.redis.leases import RedisLeases
from keyport.redis.sessions import RedisSessionStore
from keyport.services.access.authentication import Authenticator
from keyport.services.access.cache import Caches
from keyport.services.access.failed_auth_limiter import FailedAuthLimiter
from keyport.services.access.invalidation import Invalidator
from keyport.services.access.lookup_limits import LookupLimiter
from keyport.services.access.rate_limits import (
    BucketStore,
    FailoverBuckets,
    KeyRateLimiter,
    MemoryBuckets,
    SharedStoreHealth,
)
from keyport.services.access.token_leases import LeasedBuckets
from keyport.services.accounts.account import AccountService
from keyport.services.accounts.companies import CompanyService
from keyport.services.accounts.invitations import InvitationService
from keyport.services.accounts.passwords import Passwords
from keyport.services.accounts.secret_box import SecretBox
from keyport.services.accounts.sessions import SessionService, SessionStore, SessionTimeouts
from keyport.services.accounts.sign_in_limiter import SignInLimiter, SignInLimits
from keyport.services.accounts.signin import SignInService
from keyport.services.accounts.team import TeamService
from keyport.services.accounts.two_factor import TwoFactorService
from keyport.services.accounts.users import UserService
from keyport.services.audit.company_log import AuditLog
from keyport.services.audit.trail import AuditTrail
from keyport.services.keys.dashboard import KeyManagement
from keyport.services.keys.expiry_reminders import ExpiryReminders
from keyport.services.keys.lifecycle import KeyService
from keyport.services.keys.personal_tokens import PersonalTokenService
from keyport.services.observability.metrics import Metrics
from keyport.services.observability.observers import Observability
from keyport.services.observability.request_log import STATIC_ASSET_PATHS, RequestLog
from keyport.services.observability.usage_flush import UsageFlusher
from keyport.services.observability.usage_recorder import UsageRecorder
from keyport.services.observability.usage_reports import UsageReports
from keyport.services.ports import HotPathReader
from keyport.services.runtime.singleton_loop import SingletonLoop
from keyport.services.webhooks.delivery import WebhookDeliverer
from keyport.services.webhooks.endpoints import WebhookService


@dataclass
class Container:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    hot_reader: HotPathReader
    caches: Caches
    invalidator: Invalidator
    poller: InvalidationPoller
    passwords: Passwords
    authenticator: Authenticator
    keys: KeyService
    tokens: PersonalTokenService
    users: UserService
    companies: CompanyService
    sessions: SessionService
    sign_in: SignInService
    team: TeamService
    invitations: InvitationService
    account: AccountService
    two_factor: TwoFactorService
    key_management: KeyManagement
    observability: Observability
    audit_log: AuditLog
    key_limits: KeyRateLimiter
    failed_auth: FailedAuthLimiter | None
    buckets: BucketStore
    webhooks: WebhookService
    deliverer: WebhookDeliverer
    expiry_reminders: ExpiryReminders
    background_loops: list[SingletonLoop]
    webhook_sender: HttpWebhookSender
    redis: Redis | None = None
    limits_redis: Redis | None = None  # its own connections: fails fast, never waits long
    listeners: list[Listener] = field(default_factory=list)

    async def migrate(self) -> None:
        await upgrade_database(self.engine)

    async def start_background(self) -> None:
        """What a serving process runs besides requests: cross-process cache eviction,
        writing usage and the request log."""
        await self.poller.start()
        for listener in self.listeners:
            await listener.start()
        await self.observability.start()
        for loop in self.background_loops:
            await loop.start()

    async def close(self) -> None:
        for loop in self.background_loops:
            await loop.stop()
        await self.webhook_sender.close()
        await self.observability.stop()  # first: it writes to the database
        for listener in self.listeners:
            await listener.stop()
        await self.poller.stop()
        for redis in (self.redis, self.limits_redis):
            if redis is not None:
                await redis.aclose()
        await self.hot_reader.close()
        await self.engine.dispose()


def build_container(settings: Settings, *, clock: Clock | None = None) -> Container:
    clock = clock or SystemClock()
    database = settings.database
    engine = create_engine(database)
    uow = SqlUnitOfWorkFactory(engine)
    hot_reader: HotPathReader = (
        SqliteHotReader(database) if is_sqlite(database) else PostgresHotReader(database)
    )
    caches = Caches(ttl=settings.cache_ttl, negative_ttl=settings.negative_cache_ttl)
    invalidator = Invalidator(caches)
    poller = InvalidationPoller(
        engine,
        invalidator.received,
        interval=settings.invalidation_poll_interval,
        now=clock.now,
    )
    passwords = Passwords(
        time_cost=settings.password_time_cost, memory_cost=settings.password_memory_cost
    )
    keys = KeyService(uow, clock, invalidator)
    redis = _redis(settings.redis_url, timeout=REDIS_TIMEOUT) if settings.redis_url else None
    limits_redis = (
        _redis(settings.redis_url, timeout=LIMITS_REDIS_TIMEOUT) if settings.redis_url else None
    )
    buckets, key_buckets, sign_in_buckets = _buckets(clock, limits_redis)
    sessions = SessionService(
        _session_store(engine, redis),
        uow,
        clock,
        SessionTimeouts(
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_max_hours),
        ),
    )
    limiter = SignInLimiter(
        sign_in_buckets,
        SignInLimits(
            max_failures=settings.sign_in_max_failures,
            ip_max_failures=settings.sign_in_ip_max_failures,
            account_max_failures=settings.sign_in_account_max_failures,
            window=settings.sign_in_window_minutes * 60,
        ),
        uow,
        clock,
    )
    observability = _observability(settings, engine, clock, caches)
    box = SecretBox(_server_secret(settings))
    two_factor = TwoFactorService(uow, clock, box, sessions, limiter)
    guard = TargetGuard(allow_private=settings.webhook_allow_private)
    sender = HttpWebhookSender(guard)
    deliverer = WebhookDeliverer(uow, sender, box, clock.now)
    reminders = ExpiryReminders(uow, clock)
    leases = SqlLeaseStore(engine)
    loops = [
        SingletonLoop(
            "webhook-delivery",
            _ignore_count(deliverer.deliver_due),
            leases,
            clock.now,
            interval=settings.webhook_poll_interval,
            ttl=settings.webhook_lease_seconds,
        ),
        SingletonLoop(
            "expiry-reminders",
            _ignore_count(reminders.check),
            leases,
            clock.now,
            interval=settings.expiry_check_interval,
            ttl=max(LEASE_TTL, 2 * settings.expiry_check_interval),
        ),
    ]
    return Container(
        settings=settings,
        clock=clock,
        engine=engine,
        hot_reader=hot_reader,
        caches=caches,
        invalidator=invalidator,
        poller=poller,
        passwords=passwords,
        authenticator=Authenticator(hot_reader, caches, clock),
        keys=keys,
        tokens=PersonalTokenService(uow, clock, invalidator),
        users=UserService(uow, clock, invalidator, passwords, sessions),
        companies=CompanyService(uow, clock, passwords),
        sessions=sessions,
        sign_in=SignInService(uow, clock, passwords, sessions, limiter, two_factor, box),
        team=TeamService(uow, clock, invalidator, sessions),
        invitations=InvitationService(
            uow,
            clock,
            passwords,
            sessions,
            settings.public_url,
            LookupLimiter(buckets, settings.user_write_limit),
        ),
        account=AccountService(uow, clock, passwords, sessions, limiter),
        two_factor=two_factor,
        key_management=KeyManagement(keys, AuditTrail(uow), observability.usage),
        observability=observability,
        audit_log=AuditLog(uow, AuditTrail(uow)),
        key_limits=KeyRateLimiter(key_buckets, _default_policy(settings)),
        failed_auth=(
            FailedAuthLimiter(buckets, settings.auth_failure_limit, clock.time)
            if settings.auth_failure_limit
            else None
        ),
        buckets=buckets,
        webhooks=WebhookService(uow, clock, guard, box),
        deliverer=deliverer,
        expiry_reminders=reminders,
        background_loops=loops,
        webhook_sender=sender,
        redis=redis,
        limits_redis=limits_redis,
        listeners=_invalidation_listeners(settings, redis, invalidator),
    )


# Seconds a background loop's lease lasts: a crashed holder hands over after this long.
# (The webhook worker's is KEYPORT_WEBHOOK_LEASE_SECONDS, 30 by default: a tick sends in
# parallel with a 5 s timeout, so it ends well inside.)
LEASE_TTL = 30.0


def _ignore_count(work: Callable[[], Awaitable[int]]) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await work()

    return run


# Seconds a Redis call may take. Rate limits sit on every request: they give up sooner and
# use this process's own buckets meanwhile (services/access/rate_limits.py).
REDIS_TIMEOUT = 2.0
LIMITS_REDIS_TIMEOUT = 0.5


def _server_secret(settings: Settings) -> str:
    if settings.secret_key is not None:
        return settings.secret_key
    path = settings.secret_key_file or default_secret_path(settings.database, settings.data_path)
    return load_or_create_secret(Path(path))


def _redis(url: str, *, timeout: float) -> Redis:
    # One immediate retry: after a Redis restart the first call meets a dead pooled
    # connection, the retry a fresh one. More retries would only stretch an outage per call.
    return Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
    )


def _buckets(clock: Clock, redis: Redis | None) -> tuple[BucketStore, BucketStore, BucketStore]:
    """(exact buckets, per-key budget buckets, sign-in buckets): with Redis, the exact ones ask
    it at every decision (failed authentications are rare), the per-key budget spends leases.
    Sign-in limits never fall back to this process's own buckets: that would give every
    process its own allowance of password guesses while Redis is away (the cluster run,
    tests/chaos/, counted them), so a sign-in answers 503 until Redis is back — as the rest of
    the dashboard does, whose sessions are there."""
    local = MemoryBuckets(clock.time)
    if redis is None:
        return local, local, local
    health = SharedStoreHealth()  # one outage, reported once
    shared = RedisBuckets(redis)
    return (
        FailoverBuckets(shared, local, health=health),
        FailoverBuckets(LeasedBuckets(RedisLeases(redis)), local, health=health),
        shared,
    )


def _default_policy(settings: Settings) -> Policy | None:
    if not settings.rate_limit:
        return None
    return Policy(settings.rate_limit, settings.rate_limit_burst)


def _invalidation_listeners(
    settings: Settings, redis: Redis | None, invalidator: Invalidator
) -> list[Listener]:
    """Push channels that evict faster than the log poll: Redis if set, else PostgreSQL."""
    if redis is not None:
        channel = RedisChannel(redis, invalidator.received)
        invalidator.add_broadcaster(channel.publish)
        return [channel]
    if not is_sqlite(settings.database):
        return [PostgresListener(settings.database, invalidator.received)]
    return []


def _session_store(engine: AsyncEngine, redis: Redis | None) -> SessionStore:
    return RedisSessionStore(redis) if redis is not None else SqlSessionStore(engine)


def _observability(
    settings: Settings, engine: AsyncEngine, clock: Clock, caches: Caches
) -> Observability:
    metrics = Metrics()
    metrics.watch_caches(caches)
    if settings.metrics_dir is not None:
        metrics.share_across_workers(Path(settings.metrics_dir))
    recorder = flusher = None
    if settings.usage_recording:
        recorder = UsageRecorder(clock.time)
        flusher = UsageFlusher(
            recorder,
            SqlUsageStore(engine, settings.database),
            interval=settings.usage_flush_interval,
            now=clock.time,
        )
        metrics.watch_usage(flusher, recorder)
    assets = () if settings.request_log_assets else STATIC_ASSET_PATHS
    request_log = RequestLog(leave_out=assets) if settings.request_log else None
    if request_log is not None:
        metrics.watch_request_log(request_log)
    return Observability(
        metrics=metrics,
        usage=UsageReports(SqlUsageReader(engine), clock),
        recorder=recorder,
        flusher=flusher,
        request_log=request_log,
    )
