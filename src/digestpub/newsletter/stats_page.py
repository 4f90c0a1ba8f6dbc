"""The editors' statistics as one HTML page: tables and inline SVG bar charts, no script."""

from __future__ import annotations

from datetime import UTC, datetime

from digestpub.newsletter.stats import SUBSCRIBER_EVENTS, Stats
from digestpub.render.charts import bar_chart
from digestpub.site import Site
from digestpub.templates import environment
from digestpub.words import words_for

PAGE_LANG = "en"
"""Like the command's table: the editors' page is in English whatever the site's language."""

SHORT_NAMES = {
    "subscribed": "new",
    "confirmed": "conf.",
    "unsubscribed": "unsub.",
    "bounced": "bounced",
    "complained": "compl.",
}
"""Column headings of the weekly table that fit a phone (each says its full name when pointed at)."""


def stats_page(site: Site, stats: Stats, *, now: datetime) -> str:
    weekly_charts = [(event, _weekly_chart(stats, event)) for event in SUBSCRIBER_EVENTS]
    sent_chart = bar_chart(
        [(issue.issue, issue.sent) for issue in reversed(stats.issues)], "emails sent per issue, oldest first"
    )
    return (
        environment()
        .get_template("stats.html.j2")
        .render(
            site=site,
            words=words_for(PAGE_LANG),
            lang=PAGE_LANG,
            title=f"Newsletter statistics — {site.title}",
            stats=stats,
            events=SUBSCRIBER_EVENTS,
            sent_weekly_chart=_weekly_chart(stats, "sent"),
            weekly_charts=weekly_charts,
            sent_chart=sent_chart,
            short=SHORT_NAMES,
            generated=now.astimezone(UTC),
        )
    )


def _weekly_chart(stats: Stats, event: str) -> str:
    return bar_chart([(week.week, week.counts[event]) for week in stats.weeks], f"{event} per week, oldest first")
