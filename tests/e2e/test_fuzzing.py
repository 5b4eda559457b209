"""schemathesis against our own `/openapi.json`, on a real `keyport serve`, SQLite and
PostgreSQL: every operation, with a valid key and without one, valid and invalid input. No
answer may be a 5xx, and every answer must match the document (status, content type, body
schema, headers).

Rate limits are raised for this run: a fuzzer is one very busy client, and the point here is
what the routes answer, not that it gets 429 (tests/integration/test_rate_limits.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import databases
from tests.support.seed import create_keys, create_user, init_company
from tests.support.server import ServerProcess, keyport_env

# With a key the routes' logic is reached: 50 cases an operation. Without one nearly every
# case stops at authentication (401) whatever its input, so 20 cover that path.
EXAMPLES_PER_OPERATION = 50
EXAMPLES_WITHOUT_A_KEY = 20
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
FUZZ_WITHOUT_A_KEY = settings(FUZZ_SETTINGS, max_examples=EXAMPLES_WITHOUT_A_KEY)


# UUIDs in the document (user ids in paths and in the user header) are, half of the time,
# the company's real users: the fuzzer then gets past "no such user" into the routes' logic.
KNOWN_USER_IDS: list[str] = []
schemathesis.openapi.format(
    "uuid",
    st.one_of(
        st.integers(0, 2).map(lambda i: KNOWN_USER_IDS[i % len(KNOWN_USER_IDS)]),
        st.uuids().map(str),
    ),
)


class Served:
    def __init__(self, server: ServerProcess, key: str) -> None:
        self.server = server
        self.key = key


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    url = (
        f"sqlite:///{folder / 'fuzz.db'}"
        if request.param == "sqlite"
        else databases.run_blocking(databases.create_postgres_database())
    )
    env = keyport_env(
        url,
        KEYPORT_AUTH_FAILURE_LIMIT="1000000",
        KEYPORT_USER_WRITE_LIMIT="0",
        KEYPORT_REQUEST_LOG="false",
    )
    owner = init_company(env, "Acme", "owner@acme.test")
    admin, member = (
        create_user(env, f"{role}@acme.test", role.title(), "Acme", role=role)
        for role in ("admin", "member")
    )
    KNOWN_USER_IDS[:] = [owner["ownerId"], admin.id, member.id]
    # `keys:manage` as well as `*`: the fuzzer reaches the management API's logic too.
    (key,) = create_keys(env, 1, rate_limit=1000000, scopes=["*", "keys:manage"])
    server = ServerProcess(env, folder / "server.log").start()
    try:
        yield Served(server, key["key"])
    finally:
        assert server.stop() == 0, server.output()
        if request.param == "postgres":
            databases.run_blocking(databases.drop_postgres_database(url))


@pytest.fixture(scope="module")
def api_schema(served: Served) -> Any:
    return schemathesis.openapi.from_url(f"{served.server.base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


# Rotating itself would end the fuzzer's own key (no grace by default), and every later
# case would then only meet 401; it is fuzzed without a key below, and tested for real in
# tests/integration/test_management_api.py.
@schema.exclude(path="/v1/keys/self/rotate").parametrize()
@FUZZ_SETTINGS
def test_every_operation_with_a_valid_key_answers_by_the_document(
    case: Any, served: Served
) -> None:
    case.call_and_validate(
        base_url=served.server.base_url, headers=key_header(case, served.key), checks=CHECKS
    )


def key_header(case: Any, key: str) -> dict[str, str]:
    """The valid key in place of the fuzzer's Authorization value. A negative case may leave
    the required header out on purpose: it goes without one, as generated (adding the key back
    made a request the fuzzer calls invalid a valid one, and its 200 a failure)."""
    generated = {name.lower() for name in (case.headers or {})}
    return {"Authorization": f"Bearer {key}"} if "authorization" in generated else {}


# Without a key every case ends at authentication, before any storage is read: on SQLite alone.
@pytest.mark.parametrize("served", ["sqlite"], indirect=True)
@schema.parametrize()
@FUZZ_WITHOUT_A_KEY
def test_every_operation_without_a_key_answers_by_the_document(case: Any, served: Served) -> None:
    case.call_and_validate(base_url=served.server.base_url, checks=CHECKS)
