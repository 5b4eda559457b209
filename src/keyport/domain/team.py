"""Who may change whose role, hand over the company, or remove a teammate.

`acting` is the dashboard user asking, or None for the operator at the CLI, who may do what
any owner may. A company always has exactly one owner: the owner's role changes only by a
transfer, which makes the old owner an admin in the same transaction.
"""

from __future__ import annotations

from datetime import timedelta

from keyport.domain.errors import Conflict, PermissionDenied, ValidationFailed
from keyport.domain.users import Role, User

INVITATION_LIFETIME = timedelta(hours=72)
ASSIGNABLE_ROLES = (Role.ADMIN, Role.MEMBER)


def parse_assignable_role(raw: str) -> Role:
    """`admin` or `member`: the owner is made only by a transfer of ownership."""
    try:
        role = Role(raw.strip().lower())
    except ValueError:
        role = Role.OWNER
    if role not in ASSIGNABLE_ROLES:
        raise ValidationFailed.single("role", "must be admin or member")
    return role


def check_role_change(acting: User | None, target: User, role: Role) -> None:
    if role not in ASSIGNABLE_ROLES:
        raise ValidationFailed.single("role", "must be admin or member")
    if target.role is Role.OWNER:
        raise PermissionDenied("The owner's role changes only by transferring ownership")
    if acting is not None and acting.role is not Role.OWNER:
        raise PermissionDenied("Only the owner can make or unmake admins")
    if target.role is role:
        raise Conflict(f"{target.email} is already {_article(role)} {role.value}")


def check_transfer(acting: User | None, current_owner: User, target: User) -> None:
    if acting is not None and acting.role is not Role.OWNER:
        raise PermissionDenied("Only the owner can transfer ownership")
    if target.id == current_owner.id:
        raise Conflict(f"{target.email} already owns the company")
    if target.invited:
        raise Conflict("An invited user must accept the invitation before owning the company")


def check_removal(acting: User, target: User) -> None:
    if not acting.is_admin:
        raise PermissionDenied("Only company owners and admins can do this")
    if target.id == acting.id:
        raise PermissionDenied("You cannot remove yourself")
    if target.role is Role.OWNER:
        raise PermissionDenied("The company owner cannot be removed")
    if target.role is Role.ADMIN and acting.role is not Role.OWNER:
        raise PermissionDenied("Only the owner can remove an admin")


def check_invitation(acting: User, role: Role) -> None:
    if not acting.is_admin:
        raise PermissionDenied("Only company owners and admins can do this")
    if role is Role.ADMIN and acting.role is not Role.OWNER:
        raise PermissionDenied("Only the owner can make or unmake admins")


def _article(role: Role) -> str:
    return "an" if role is Role.ADMIN else "a"
