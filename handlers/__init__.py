"""Feature modules. Each has its own Router with its commands, buttons, steps and intents;
free text is matched against the intents' examples in content/intents.toml."""

from __future__ import annotations

from bot.core.conversation import Router
from bot.core.dispatch import Fallbacks
from handlers import (
    announcements,
    campaigns,
    contributions,
    data_upload,
    faq,
    ledger,
    menu,
    my_reports,
    new_project,
    onboarding,
    poll_create,
    polls,
    project_updates,
    projects,
    report_desk,
    reports,
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
        polls.router,
        poll_create.router,
        reports.router,
        my_reports.router,
        report_desk.router,
        projects.router,
        new_project.router,
        project_updates.router,
        data_upload.router,
        faq.router,
    )
    fallbacks = Fallbacks(
        unknown=menu.not_understood,
        unsupported=menu.unsupported,
        too_long=menu.too_long,
        newcomer=onboarding.newcomer,
        ask_first=menu.ask_first,
        not_an_answer=menu.not_an_answer,
        busy=menu.busy,
        not_allowed=menu.not_allowed,
    )
    return root, fallbacks
