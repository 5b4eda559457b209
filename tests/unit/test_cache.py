"""The process-local caches: TTL, negative entries, eviction and the fill race."""

from __future__ import annotations

from keyport.domain.keys import KeyStatus
from keyport.domain.principal import Principal
from keyport.services.access.cache import Caches, PrincipalCache, TtlCache
from tests.support.stepping import Ticking


def principal(key_id: str = "k1", company_id: str = "c1") -> Principal:
    return Principal(key_id, company_id, "owner", KeyStatus.ACTIVE, 2e9)


def test_entries_expire_after_their_ttl() -> None:
    tick = Ticking()
    cache: TtlCache[str] = TtlCache(5.0, monotonic=tick)
    cache.store("a", "value", cache.generation)
    assert cache.lookup("a") == (True, "value")
    tick.now += 5.01
    assert cache.lookup("a") == (False, None)


def test_negative_results_live_only_for_the_negative_ttl() -> None:
    tick = Ticking()
    cache: TtlCache[str] = TtlCache(10.0, negative_ttl=1.0, monotonic=tick)
    cache.store("missing", None, cache.generation)
    assert cache.lookup("missing") == (True, None)
    tick.now += 1.5
    assert cache.lookup("missing") == (False, None)


def test_a_fill_that_started_before_an_eviction_is_dropped() -> None:
    cache = PrincipalCache(10.0, negative_ttl=1.0)
    generation_at_start = cache.generation
    cache.evict_key("k1")  # a revoke lands while the database read is in flight
    cache.store("digest", principal(), generation_at_start)
    assert cache.lookup("digest") == (False, None)


def test_evicting_a_key_id_removes_its_digest() -> None:
    cache = PrincipalCache(10.0, negative_ttl=1.0)
    cache.store("digest", principal("k1"), cache.generation)
    cache.evict_key("k1")
    assert cache.lookup("digest") == (False, None)


def test_company_invalidation_drops_its_principals_and_users_only() -> None:
    caches = Caches()
    caches.principals.store("d1", principal("k1", "c1"), caches.principals.generation)
    caches.principals.store("d2", principal("k2", "c2"), caches.principals.generation)
    caches.invalidate("company", "c1")
    assert caches.principals.lookup("d1") == (False, None)
    assert caches.principals.lookup("d2")[0] is True


def test_the_cache_stays_bounded() -> None:
    cache: TtlCache[int] = TtlCache(10.0, max_entries=100)
    for number in range(1000):
        cache.store(str(number), number, cache.generation)
    assert len(cache) <= 100


def test_a_value_read_again_unchanged_keeps_the_cached_one_and_lives_a_new_ttl() -> None:
    tick = Ticking()
    cache = PrincipalCache(10.0, negative_ttl=1.0, monotonic=tick)
    first = principal("k1")
    cache.store("digest", first, cache.generation)
    tick.now += 9.0
    cache.store("digest", principal("k1"), cache.generation)  # a refresh: equal, not the same
    tick.now += 9.0  # past the first read's TTL, within the second's
    found, value = cache.lookup("digest")
    assert found and value is first
    changed = principal("k1")._replace(status=KeyStatus.INACTIVE)
    cache.store("digest", changed, cache.generation)
    assert cache.lookup("digest") == (True, changed)
    cache.evict_key("k1")
    assert cache.lookup("digest") == (False, None)
