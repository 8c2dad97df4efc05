"""The officials' guard: who acts as an official (cán bộ) in this update, and where.

A route is declared official where it is registered (`@router.command(..., official=True)`,
`@router.button(..., official=True)`, `Step(..., official=True)`). Before any such route runs
— the first command and every later answer, button press and confirmation of its flow — the
dispatcher resolves the official once per update onto `ctx.official`, and refuses whoever holds
no grant here with one message (`Fallbacks.not_allowed`), so a grant revoked mid-flow stops the
flow at the next update. Checks that depend on the object acted on (this contribution's
commune, this announcement's scope) stay in the handler and read `ctx.official`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.storage.officials import Official

if TYPE_CHECKING:
    from bot.core.conversation import Context, Incoming

__all__ = ["Official", "principal_of", "resolve_official"]


def principal_of(event: Incoming) -> str:
    """The identity grants are given to: "<channel>:<user id>"."""
    return f"{event.channel}:{event.user_id}"


async def resolve_official(ctx: Context) -> Official | None:
    """The official behind this update, or None when no grant covers any commune here. Grants
    come from the store's short cache (OfficialStore), so a revoke elsewhere shows in seconds."""
    reference = ctx.services.reference
    return await ctx.services.officials.official(
        principal_of(ctx.event), reference.province_code, list(reference.communes)
    )
