"""The words of pages, feeds and emails in each language the site speaks."""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "ru": {
        "tag_heading": 'Подборка статей по тегу "{tag}"',
        "new_papers": "Новые статьи",
        "tags": "Теги",
        "all_tags": "Все теги",
        "paper": "Статья",
        "code": "Код",
        "authors": "Авторы",
        "feeds": "Ленты",
        "subscribe_feed": "Подписаться в ридере",
        "subscribe_email": "Подписка на рассылку",
        "email": "Эл. почта",
        "subscribe": "Подписаться",
        "daily": "Каждый день",
        "weekly": "Раз в неделю",
        "frequency": "Как часто",
        "home": "Все статьи",
        "updated": "обновлено",
        "nothing_yet": "Здесь пока пусто.",
        "opml": "Все теги одним файлом (OPML)",
        "feed_of_tag": "{site}: {tag}",
    },
    "en": {
        "tag_heading": 'Papers tagged "{tag}"',
        "new_papers": "New papers",
        "tags": "Tags",
        "all_tags": "All tags",
        "paper": "Paper",
        "code": "Code",
        "authors": "Authors",
        "feeds": "Feeds",
        "subscribe_feed": "Follow in a feed reader",
        "subscribe_email": "Get it by email",
        "email": "Email",
        "subscribe": "Subscribe",
        "daily": "Daily",
        "weekly": "Weekly",
        "frequency": "How often",
        "home": "All papers",
        "updated": "updated",
        "nothing_yet": "Nothing here yet.",
        "opml": "Every tag in one file (OPML)",
        "feed_of_tag": "{site}: {tag}",
    },
}


def words_for(lang: str) -> dict[str, str]:
    """The words for a language tag such as ``ru`` or ``en-GB``; English otherwise."""
    return WORDS.get(lang.split("-")[0].lower(), WORDS["en"])
