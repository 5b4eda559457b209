"""Mixed traffic through the load balancer, each answer remembered: verifications with many
keys, a rate-limited key pushed past its limit, key changes through `/v1/keys`, dashboard
sign-ins (the owner's, and an attacker's wrong passwords on another account).
"""

from __future__ import annotations

import http.client
import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

TIMEOUT = 5.0  # an answer later than this counts as none (the availability rule)
ATTACKER_ADDRESS = "127.0.0.2"  # loopback addresses of their own: nginx tells them apart
OWNER_ADDRESS = "127.0.0.3"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass(frozen=True)
class Exchange:
    label: str
    key_id: str | None
    started: float  # time.monotonic()
    ended: float
    status: int  # 0: no answer within TIMEOUT (refused, reset, timed out)


@dataclass
class Change:
    """A change `/v1/keys` acknowledged (2xx): what must be there, audited and announced."""

    verb: str  # create, deactivate, revoke, rotate
    key_id: str
    acknowledged: float
    new_key_id: str | None = None  # rotate: the successor


@dataclass
class ChurnKey:
    """A key or a personal access token that verification uses while it lives, and for 5 s
    after its refusal returned."""

    id: str
    secret: str
    token: bool = False  # a personal access token (revoked through /v1/tokens)
    refused_since: float | None = None  # when its deactivation, revocation or rotation returned
    deactivated: bool = False


class Connection:
    """One keep-alive HTTP connection to the balancer that reconnects after any failure."""

    def __init__(self, port: int, source: str = "127.0.0.1") -> None:
        self._port, self._source = port, source
        self._http: http.client.HTTPConnection | None = None

    def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> tuple[int, dict[str, list[str]], bytes]:
        if self._http is None:
            self._http = http.client.HTTPConnection(
                "127.0.0.1", self._port, timeout=TIMEOUT, source_address=(self._source, 0)
            )
        try:
            self._http.request(method, path, body=body, headers=headers)
            answer = self._http.getresponse()
            raw = answer.read()
        except (OSError, http.client.HTTPException):
            self._http.close()
            self._http = None
            return 0, {}, b""
        seen: dict[str, list[str]] = {}
        for name, value in answer.getheaders():
            seen.setdefault(name.lower(), []).append(value)
        if answer.will_close:
            self._http.close()
            self._http = None
        return answer.status, seen, raw


@dataclass
class Workload:
    port: int
    stable_keys: list[str]
    limited_key: tuple[str, str]  # (id, key)
    manager_key: str
    owner: tuple[str, str]  # (email, password)
    victim_email: str
    seed: int
    tokens: list[tuple[str, str]] = field(default_factory=list)  # (id, rgo-…) of the owner
    started: float = 0.0  # time.monotonic() when the traffic began
    exchanges: list[Exchange] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    # Changes that got no 2xx (a 502/504, no answer): they may or may not have been applied.
    unacknowledged: list[Change] = field(default_factory=list)
    churn: list[ChurnKey] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.churn.extend(ChurnKey(token_id, token, token=True) for token_id, token in self.tokens)
        self.started = time.monotonic()
        loops = [
            *(self._verify_stable for _ in range(3)),
            self._verify_churn,
            self._verify_churn,
            self._hammer_limited,
            self._manage,
            self._attack_sign_in,
            self._owner_sign_in,
        ]
        for number, loop in enumerate(loops):
            thread = threading.Thread(target=loop, args=(number,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _record(self, label: str, key_id: str | None, started: float, status: int) -> None:
        self.exchanges.append(Exchange(label, key_id, started, time.monotonic(), status))

    def _paced(self, pause: float) -> bool:
        """Waits `pause`; false once the run is over."""
        return not self._stop.wait(pause)

    def _verify_stable(self, number: int) -> None:
        rng, connection = random.Random(self.seed * 100 + number), Connection(self.port)
        while self._paced(0.01):
            key = rng.choice(self.stable_keys)
            started = time.monotonic()
            status, _, _ = connection.send("GET", "/v4/user/me", _bearer(key))
            self._record("verify", None, started, status)

    def _verify_churn(self, number: int) -> None:
        rng, connection = random.Random(self.seed * 100 + number), Connection(self.port)
        while self._paced(0.01):
            now = time.monotonic()
            # Live keys, and refused ones for 5 s after their refusal returned.
            candidates = [
                k for k in self.churn if k.refused_since is None or now - k.refused_since < 5
            ]
            if not candidates:
                continue
            key = rng.choice(candidates)
            started = time.monotonic()
            status, _, _ = connection.send("GET", "/v4/user/me", _bearer(key.secret))
            self._record("churn", key.id, started, status)

    def _hammer_limited(self, _number: int) -> None:
        key_id, key = self.limited_key
        connection = Connection(self.port)
        while self._paced(0.2):
            started = time.monotonic()
            status, _, _ = connection.send("GET", "/v4/user/me", _bearer(key))
            self._record("limited", key_id, started, status)

    def _manage(self, number: int) -> None:
        rng, connection = random.Random(self.seed * 100 + number), Connection(self.port)
        while self._paced(0.7):
            live = [k for k in self.churn if k.refused_since is None]
            live_keys = [k for k in live if not k.token]
            live_tokens = [k for k in live if k.token]
            if live_tokens and rng.random() < 0.1:
                self._revoke_token(connection, rng.choice(live_tokens))
            elif len(live_keys) < 6 or rng.random() < 0.4:
                self._create(connection)
            else:
                self._change(connection, rng.choice(live_keys), rng)

    def _call(
        self, connection: Connection, path: str, body: dict[str, Any]
    ) -> tuple[int, Any, float]:
        headers = {**_bearer(self.manager_key), "content-type": "application/json"}
        started = time.monotonic()
        status, _, raw = connection.send("POST", path, headers, json.dumps(body).encode())
        self._record("manage", None, started, status)
        return status, json.loads(raw) if raw and status < 500 else None, time.monotonic()

    def _create(self, connection: Connection) -> None:
        status, body, at = self._call(connection, "/v1/keys", {"expiresInDays": 30})
        if status == 201:
            self.churn.append(ChurnKey(body["id"], body["key"]))
            self.changes.append(Change("create", body["id"], at))

    def _change(self, connection: Connection, key: ChurnKey, rng: random.Random) -> None:
        verbs = ["revoke", "rotate"] if key.deactivated else ["deactivate", "revoke", "rotate"]
        verb = rng.choice(verbs)
        body = {"gracePeriodSeconds": 0} if verb == "rotate" else {}
        status, answer, at = self._call(connection, f"/v1/keys/{key.id}/{verb}", body)
        if status not in (200, 201):
            if status == 0 or status >= 500:
                self.unacknowledged.append(Change(verb, key.id, at))
            return
        key.refused_since = at  # from here the old key must be refused everywhere within 1 s
        key.deactivated = verb == "deactivate"
        if verb == "rotate":
            self.churn.append(ChurnKey(answer["id"], answer["key"]))
        self.changes.append(Change(verb, key.id, at, answer["id"] if verb == "rotate" else None))

    def _revoke_token(self, connection: Connection, token: ChurnKey) -> None:
        status, _, at = self._call(connection, f"/v1/tokens/{token.id}/revoke", {})
        if status == 200:
            token.refused_since = at
            self.changes.append(Change("revoke-token", token.id, at))
        elif status == 0 or status >= 500:
            self.unacknowledged.append(Change("revoke-token", token.id, at))

    def _attack_sign_in(self, _number: int) -> None:
        connection = Connection(self.port, ATTACKER_ADDRESS)
        while self._paced(0.3):
            self._sign_in(connection, "attack", self.victim_email, "not-the-password-123")

    def _owner_sign_in(self, _number: int) -> None:
        connection = Connection(self.port, OWNER_ADDRESS)
        while self._paced(2.0):
            self._sign_in(connection, "signin", *self.owner)

    def _sign_in(self, connection: Connection, label: str, email: str, password: str) -> None:
        started = time.monotonic()
        status, headers, raw = connection.send("GET", "/admin/login", {})
        token = _CSRF.search(raw.decode(errors="replace")) if status == 200 else None
        if token is None:
            self._record(label, None, started, status)
            return
        cookies = "; ".join(c.split(";", 1)[0] for c in headers.get("set-cookie", []))
        form = urlencode({"csrf_token": token.group(1), "email": email, "password": password})
        started = time.monotonic()
        status, _, _ = connection.send(
            "POST",
            "/admin/login",
            {"content-type": "application/x-www-form-urlencoded", "cookie": cookies},
            form.encode(),
        )
        self._record(label, None, started, status)


def _bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}
