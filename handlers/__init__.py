"""Feature modules. Each has its own Router; the order here is the order free text is tried."""

from __future__ import annotations

from bot.core import Router
from bot.dispatch import Fallbacks
from handlers import (
    announcements,
    campaigns,
    contributions,
    faq,
    ledger,
    menu,
    onboarding,
    review,
    status,
    subscriptions,
)


def build_router() -> tuple[Router, Fallbacks]:
    root = Router("root").include(
        menu.router,
        onboarding.router,
        status.router,
        contributions.router,
        ledger.router,
        campaigns.router,
        review.router,
        subscriptions.router,
        announcements.router,
        faq.router,
    )
    fallbacks = Fallbacks(
        unknown=menu.not_understood, unsupported=menu.unsupported, too_long=menu.too_long
    )
    return root, fallbacks
