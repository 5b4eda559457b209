"""Turning table rows into domain objects."""

from __future__ import annotations

from typing import Any

from keyport.domain.audit import Actor, AuditEvent
from keyport.domain.keys import ApiKey, KeyStatus
from keyport.domain.users import Role, User, UserType


def to_user(row: Any) -> User:
    return User(
        id=row.id,
        company_id=row.company_id,
        email=row.email,
        given_name=row.given_name,
        family_name=row.family_name,
        slug=row.slug,
        timezone=row.timezone,
        language=row.language,
        role=Role(row.role),
        user_type=UserType(row.user_type),
        created_at=row.created_at,
        updated_at=row.updated_at,
        invited=row.invited_at is not None,
        two_factor=row.totp_secret is not None,
        last_sign_in_at=row.last_sign_in_at,
    )


def to_api_key(row: Any) -> ApiKey:
    return ApiKey(
        id=row.id,
        company_id=row.company_id,
        name=row.name,
        hint=row.hint,
        status=KeyStatus(row.status),
        expires_at=row.expires_at,
        created_at=row.created_at,
        created_by=row.created_by,
        last_used_at=row.last_used_at,
        last_used_ip=row.last_used_ip,
        rate_limit=row.rate_limit,
        scopes=tuple(row.scopes),
        allowed_ips=tuple(row.allowed_ips),
        rotated_to=row.rotated_to,
    )


def to_audit_event(row: Any) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        company_id=row.company_id,
        action=row.action,
        actor=Actor(row.actor_label, row.actor_user_id, row.actor_key_id, row.ip),
        target_type=row.target_type,
        target_id=row.target_id,
        occurred_at=row.occurred_at,
        details=dict(row.details or {}),
    )
