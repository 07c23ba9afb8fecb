"""Enrolling, confirming, replacing, disabling TOTP, and recovery codes."""

from __future__ import annotations

from typing import Optional

import strawberry

from mandate.gql.permissions import MayChangeOwnSecurity, MayEnrol
from mandate.gql.users import UserNode
from mandate.models import totp


@strawberry.type
class TotpEnrolment:
    secret: str = strawberry.field(description="base32, for typing into an app")
    otpauth_uri: str = strawberry.field(description="otpauth://totp/...")
    qr_code_svg: str = strawberry.field(description="the URI as an SVG QR code")

    @classmethod
    def of(cls, enrolment: totp.Enrolment) -> TotpEnrolment:
        return cls(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_code_svg=enrolment.qr_code_svg)


@strawberry.type
class TotpConfirmation:
    recovery_codes: list[str] = strawberry.field(description="shown once, never again")
    token: Optional[str] = strawberry.field(
        description="a new full-session token when the old one was enrolment-only"
    )
    user: UserNode


@strawberry.type
class TotpMutations:
    @strawberry.mutation(permission_classes=[MayEnrol], description="Starts (or restarts) enrolment.")
    async def enrol_totp(self, info: strawberry.Info) -> TotpEnrolment:
        return TotpEnrolment.of(await totp.start_enrolment(info.context.caller.session, info.context.client_address))

    @strawberry.mutation(
        permission_classes=[MayChangeOwnSecurity],
        description="With a code of the current device (or a recovery code), starts enrolment of a new one; "
        "2FA stays on with the current device until confirmTotp with a code of the new one swaps them.",
    )
    async def replace_totp(self, info: strawberry.Info, code: str) -> TotpEnrolment:
        caller = info.context.caller
        return TotpEnrolment.of(await totp.start_replacement(caller.session, code, info.context.client_address))

    @strawberry.mutation(
        permission_classes=[MayEnrol],
        description="Proves the app works; 2FA is on from here, and the calling session counts as having passed it.",
    )
    async def confirm_totp(self, info: strawberry.Info, code: str) -> TotpConfirmation:
        session = info.context.caller.session
        done = await totp.confirm_enrolment(session, code, info.context.client_address)
        new_token = done.new_token.token if done.new_token else None
        await info.context.refresh(new_token)  # the same session, or the full one that replaced it
        return TotpConfirmation(
            recovery_codes=done.recovery_codes,
            token=new_token,
            user=UserNode.of(done.user),
        )

    @strawberry.mutation(permission_classes=[MayChangeOwnSecurity])
    async def disable_totp(self, info: strawberry.Info, code: str) -> UserNode:
        caller = info.context.caller
        user = await totp.disable(caller.session, code, info.context.client_address)
        info.context.caller_ended()  # every session of the user ended, this one too
        return UserNode.of(user)

    @strawberry.mutation(permission_classes=[MayChangeOwnSecurity])
    async def regenerate_recovery_codes(self, info: strawberry.Info, code: str) -> list[str]:
        caller = info.context.caller
        return await totp.regenerate_recovery_codes(caller.session, code, info.context.client_address)
