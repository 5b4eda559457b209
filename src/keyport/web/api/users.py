"""The v4 user endpoints (docs/contract.md §4): parse, call one service, shape the answer."""

from __future__ import annotations

from typing import Annotated

from litestar import Request, Router, delete, get, patch, post
from litestar.params import FromPath, QueryParameter

from keyport.domain import scopes
from keyport.domain.errors import ValidationFailed
from keyport.domain.users import NewUser, UserChanges, UserType
from keyport.services.access.authentication import Authenticator
from keyport.services.access.lookup_limits import LookupLimiter
from keyport.services.accounts.users import UserService
from keyport.web.api.context import acting_user, api_actor, principal_of
from keyport.web.api.me_endpoint import me_route
from keyport.web.api.schemas import (
    CreatedUserOut,
    CreateUserIn,
    UpdateUserIn,
    UserListOut,
    UserOut,
    decode_body,
)
from keyport.web.gate import Admission
from keyport.web.openapi import UserHeader, api_operation
from keyport.web.query import refuse_unknown

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="How many users, 1 to 100")]
MAX_OFFSET = 2**31 - 1  # beyond any company; keeps the database's integer types safe
Offset = Annotated[int, QueryParameter(ge=0, le=MAX_OFFSET, description="How many users to skip")]
UserType_ = Annotated[UserType | None, QueryParameter(name="userType")]
UserId = FromPath[str]
READ = Admission.needing(scopes.USERS_READ)
WRITE = Admission.needing(scopes.USERS_WRITE)
_LIST_PARAMETERS = frozenset({"limit", "offset", "userType"})


def user_router(auth: Authenticator, users: UserService, lookups: LookupLimiter) -> Router:

    @get(
        "/",
        operation_id="listUsers",
        summary="List the company's users (admin)",
        **api_operation(errors=(400, 403), user_header=UserHeader.REQUIRED, admits=READ),
    )
    async def list_users(
        request: Request,  # type: ignore[type-arg]
        limit: Limit = 50,
        offset: Offset = 0,
        user_type: UserType_ = None,
    ) -> UserListOut:
        refuse_unknown(request.query_params, _LIST_PARAMETERS)  # `?userTyp=` must not list all
        acting = await acting_user(auth, request.scope, required=True)
        page = await users.list_users(acting, user_type=user_type, limit=limit, offset=offset)
        return UserListOut(
            [UserOut.of(u) for u in page.users], page.total, len(page.users), page.offset
        )

    @post(
        "/",
        operation_id="createUser",
        status_code=201,
        summary="Create a user in the company",
        **api_operation(
            errors=(400, 403, 409), user_header=UserHeader.OPTIONAL, body=CreateUserIn, admits=WRITE
        ),
    )
    async def create_user(request: Request) -> CreatedUserOut:  # type: ignore[type-arg]
        acting = await acting_user(auth, request.scope, required=False)
        body = decode_body(await request.body(), CreateUserIn)
        await lookups.spend(principal_of(request.scope).key_id)
        new_user = NewUser(body.email, body.given_name, body.family_name, body.timezone, body.slug)
        created = await users.add_user(acting, new_user, api_actor(request.scope, acting))
        return CreatedUserOut(created.id, created.company_id)

    @get(
        "/{user_id:str}",
        operation_id="getUser",
        summary="One user of the company",
        **api_operation(errors=(400, 403, 404), user_header=UserHeader.REQUIRED, admits=READ),
    )
    async def get_user(request: Request, user_id: UserId) -> UserOut:  # type: ignore[type-arg]
        acting = await acting_user(auth, request.scope, required=True)
        return UserOut.of(await users.view_user(acting, user_id))

    @patch(
        "/{user_id:str}",
        operation_id="updateUser",
        summary="Change a user's names or slug (self, or admin)",
        **api_operation(
            errors=(400, 403, 404, 409),
            user_header=UserHeader.REQUIRED,
            body=UpdateUserIn,
            admits=WRITE,
        ),
    )
    async def update_user(request: Request, user_id: UserId) -> UserOut:  # type: ignore[type-arg]
        acting = await acting_user(auth, request.scope, required=True)
        body = decode_body(await request.body(), UpdateUserIn)
        if body.email is not None:
            raise ValidationFailed.single("email", "cannot be changed")
        changes = UserChanges(body.given_name, body.family_name, body.slug)
        if changes.is_empty:
            raise ValidationFailed.single(
                "body", "name at least one of givenName, familyName, slug"
            )
        if changes.slug is not None:
            await lookups.spend(principal_of(request.scope).key_id)
        updated = await users.update_user(
            acting, user_id, changes, api_actor(request.scope, acting)
        )
        return UserOut.of(updated)

    @delete(
        "/{user_id:str}",
        operation_id="deleteUser",
        status_code=204,
        summary="Delete a user (admin)",
        **api_operation(errors=(400, 403, 404, 409), user_header=UserHeader.REQUIRED, admits=WRITE),
    )
    async def delete_user(request: Request, user_id: UserId) -> None:  # type: ignore[type-arg]
        acting = await acting_user(auth, request.scope, required=True)
        await users.delete_user(acting, user_id, api_actor(request.scope, acting))

    return Router(
        path="/v4/user",
        route_handlers=[
            me_route(auth),
            list_users,
            create_user,
            get_user,
            update_user,
            delete_user,
        ],
        tags=["users"],
    )
