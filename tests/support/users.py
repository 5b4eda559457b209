"""Users built in memory, for unit tests that need one without a database."""

from __future__ import annotations

import uuid
from datetime import datetime

from keyport.domain.users import Role, User, UserType


def a_user(company_id: str, at: datetime, role: Role = Role.OWNER) -> User:
    return User(
        str(uuid.uuid4()), company_id, "o@a.test", "O", "W", None, "UTC", "en", role,
        UserType.STANDARD, at, at,
    )  # fmt: skip
