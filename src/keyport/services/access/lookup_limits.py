"""A budget of its own, per API key, for the writes that reveal whether an email or a slug
is taken anywhere in Keyport.

Emails are global (they are the dashboard's sign-in ids and the CLI's handles) and slugs are
unique, so `POST /v4/user` answers 409 for an email used in another company and `PATCH` for
such a slug. A key can therefore ask "does this address have an account here?" — an
existence oracle across tenants. It cannot be closed without giving up global emails, so it
is bounded: every user creation and every slug change by a key takes a token from that key's
bucket, `limit` an hour with bursts of as many, beside (not instead of) its request budget.
The dashboard's invitation form asks the same question with a 409, so each invitation takes a
token from the inviting user's own bucket of the same size.
"""

from __future__ import annotations

from keyport.domain.errors import RateLimited
from keyport.domain.rate_limits import Policy, whole_seconds
from keyport.services.access.rate_limits import BucketStore

HOUR = 3600.0


class LookupLimiter:
    def __init__(self, store: BucketStore, per_hour: int) -> None:
        self._store = store
        self._policy = Policy.per_window(per_hour, HOUR) if per_hour > 0 else None

    async def spend(self, key_id: str) -> None:
        """One creation or slug change by this key; RateLimited when its hour is spent."""
        await self._take("lookups:" + key_id)

    async def spend_by_user(self, user_id: str) -> None:
        """One invitation by this dashboard user; RateLimited when their hour is spent."""
        await self._take("lookups-user:" + user_id)

    async def _take(self, bucket: str) -> None:
        if self._policy is None:
            return
        decision = await self._store.take(bucket, self._policy)
        if not decision.allowed:
            raise RateLimited(whole_seconds(decision.retry_after))
