"""The words of pages, feeds and emails in each language the site speaks."""

from __future__ import annotations

from datetime import date

WORDS: dict[str, dict[str, str]] = {
    "ru": {
        "tag_heading": 'Подборка статей по тегу "{tag}"',
        "tags_heading": "Подборка статей по тегам: {tags}",
        "follow_tags": "Лента из нескольких тегов",
        "follow_button": "Открыть ленту",
        "feed_format": "Формат ленты",
        "own_feed": "Лента ваших тегов для ридера:",
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
        "archive": "Архив",
        "archive_heading": "{heading}: архив",
        "page_heading": "{heading}: страница {page}",
        "page_span": "{first} — {last}",
        "older": "Раньше",
        "newer": "Позже",
        "pages_of_month": "{count} {papers}, со страницы {page}",
        "skip_nav": "Навигация",
        "search": "Поиск",
        "search_hint": "Поиск по всем статьям",
        "search_nothing": "Ничего не нашлось",
        "per_month": "Статей по месяцам",
        "page_to_come": "Эта страница ещё собирается: новые статьи — на странице",
        "no_pages_yet": "Архив пока пуст: все статьи — на странице",
        "feed_of_tag": "{site}: {tag}",
        "view_in_browser": "Открыть в браузере",
        "why_you_get_this": "Письмо пришло на {email}, потому что вы подписались на рассылку.",
        "unsubscribe": "Отписаться",
        "change_tags": "Изменить теги и частоту",
        "more": "и ещё {count} {papers} — читать на сайте",
        "read_on": "Читать дальше",
        "newsletter_archive": "Архив рассылки",
        "subject_daily": "{site}: {count} {new_papers} за {date}",
        "subject_weekly": "{site}: {count} {new_papers} за неделю по {date}",
        "test_copy_subject": "[Тест] {subject}",
        "confirm_subject": "{site}: подтвердите подписку",
        "confirm_intro": "Чтобы получать рассылку, подтвердите адрес:",
        "confirm_button": "Подтвердить подписку",
        "confirm_ignore": "Если вы не подписывались, просто проигнорируйте это письмо.",
        "check_inbox": "Почти готово: мы отправили письмо со ссылкой для подтверждения.",
        "confirmed": "Подписка подтверждена. Спасибо!",
        "confirm_question": "Подтвердить подписку на рассылку для {email}?",
        "already_confirmed": "Подписка уже подтверждена — больше ничего делать не нужно.",
        "confirm_expired": "Срок этой ссылки истёк, или её заменила более новая. Прислать новую?",
        "confirm_renew_button": "Прислать новую ссылку",
        "unsubscribe_question": "Отписаться от рассылки для {email}?",
        "unsubscribe_button": "Отписаться",
        "unsubscribed": "Вы отписались. Писем больше не будет.",
        "preferences": "Настройки рассылки",
        "tags_hint": "Не выбрано ни одного тега — приходят все статьи.",
        "unknown_tags": "В дайджесте нет такого тега: {tags}. Выберите теги из списка.",
        "status_pending": "Подписка ещё не подтверждена: откройте ссылку из письма.",
        "status_confirmed": "Подписка действует.",
        "status_unsubscribed": "Вы отписаны: писем не будет.",
        "status_bounced": "Письма на этот адрес не доходят, поэтому мы больше их не отправляем.",
        "status_complained": "Вы пометили наше письмо как спам, поэтому мы больше не пишем на этот адрес.",
        "resubscribe_button": "Подписаться снова",
        "language": "Язык писем",
        "save": "Сохранить",
        "saved": "Настройки сохранены.",
        "bad_link": "Ссылка недействительна или устарела.",
        "bad_request": "Не получилось: {reason}",
        # email-validator explains in English only: the Russian page does without its reason.
        "bad_address": "Адрес почты выглядит неверным. Проверьте его и попробуйте ещё раз.",
        "try_later": "Что-то пошло не так на нашей стороне. Попробуйте ещё раз позже.",
    },
    "en": {
        "tag_heading": 'Papers tagged "{tag}"',
        "tags_heading": "Papers tagged {tags}",
        "follow_tags": "A feed of several tags",
        "follow_button": "Open the feed",
        "feed_format": "Feed format",
        "own_feed": "The feed of your tags, for a feed reader:",
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
        "archive": "Archive",
        "archive_heading": "{heading}: archive",
        "page_heading": "{heading}: page {page}",
        "page_span": "{first} — {last}",
        "older": "Older",
        "newer": "Newer",
        "pages_of_month": "{count} {papers}, from page {page}",
        "skip_nav": "Navigation",
        "search": "Search",
        "search_hint": "Search every paper",
        "search_nothing": "Nothing found",
        "per_month": "Papers per month",
        "page_to_come": "This page is still filling: the newest papers are on the page",
        "no_pages_yet": "No page is complete yet: every paper is on the page",
        "feed_of_tag": "{site}: {tag}",
        "view_in_browser": "View in your browser",
        "why_you_get_this": "Sent to {email} because you subscribed to this newsletter.",
        "unsubscribe": "Unsubscribe",
        "change_tags": "Change tags and frequency",
        "more": "and {count} more {papers} on the site",
        "read_on": "Read on",
        "newsletter_archive": "Newsletter archive",
        "subject_daily": "{site}: {count} {new_papers}, {date}",
        "subject_weekly": "{site}: {count} {new_papers}, week to {date}",
        "test_copy_subject": "[Test] {subject}",
        "confirm_subject": "{site}: confirm your subscription",
        "confirm_intro": "To receive the newsletter, please confirm your address:",
        "confirm_button": "Confirm subscription",
        "confirm_ignore": "If you did not subscribe, just ignore this email.",
        "check_inbox": "Almost done: we sent you an email with a confirmation link.",
        "confirmed": "Your subscription is confirmed. Thank you!",
        "confirm_question": "Confirm the newsletter subscription of {email}?",
        "already_confirmed": "Your subscription is already confirmed: there is nothing more to do.",
        "confirm_expired": "This link has expired or was replaced by a newer one. Shall we send you a new one?",
        "confirm_renew_button": "Send me a new link",
        "unsubscribe_question": "Unsubscribe {email} from the newsletter?",
        "unsubscribe_button": "Unsubscribe",
        "unsubscribed": "You are unsubscribed. No more emails.",
        "preferences": "Newsletter settings",
        "tags_hint": "With no tag chosen you get every paper.",
        "unknown_tags": "The digest has no tag {tags}. Choose tags from the list.",
        "status_pending": "Not confirmed yet: open the link in the email we sent you.",
        "status_confirmed": "Your subscription is active.",
        "status_unsubscribed": "You are unsubscribed: no emails are sent.",
        "status_bounced": "Emails to this address bounce, so we no longer send any.",
        "status_complained": "You marked our email as spam, so we no longer write to this address.",
        "resubscribe_button": "Subscribe again",
        "language": "Email language",
        "save": "Save",
        "saved": "Settings saved.",
        "bad_link": "This link is not valid or has expired.",
        "bad_request": "That did not work: {reason}",
        "bad_address": "That email address does not look right: {reason}",
        "try_later": "Something went wrong on our side. Please try again later.",
    },
}

_EN_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_RU_MONTH_NAMES = [
    "январь",
    "февраль",
    "март",
    "апрель",
    "май",
    "июнь",
    "июль",
    "август",
    "сентябрь",
    "октябрь",
    "ноябрь",
    "декабрь",
]
"""In the nominative, as a heading names a month ("за ноябрь 2026")."""
_RU_MONTHS = [
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
]


def _russian_form(count: int, one: str, few: str, many: str) -> str:
    if count % 10 == 1 and count % 100 != 11:
        return one
    if 2 <= count % 10 <= 4 and not 12 <= count % 100 <= 14:
        return few
    return many


def papers_word(lang: str, count: int, *, new: bool = False) -> str:
    """ "статья/статьи/статей" or "paper/papers", agreeing with ``count``."""
    if lang.split("-")[0].lower() == "ru":
        if new:
            return _russian_form(count, "новая статья", "новые статьи", "новых статей")
        return _russian_form(count, "статья", "статьи", "статей")
    noun = "paper" if count == 1 else "papers"
    return f"new {noun}" if new else noun


def long_date(lang: str, moment: date) -> str:
    if lang.split("-")[0].lower() == "ru":
        return f"{moment.day} {_RU_MONTHS[moment.month - 1]} {moment.year}"
    return f"{moment.day} {_EN_MONTHS[moment.month - 1]} {moment.year}"


def month_name(lang: str, month: str) -> str:
    """A month (``YYYY-MM``) as a heading names it: "ноябрь 2026", "November 2026"."""
    year, number = month.split("-")
    names = _RU_MONTH_NAMES if lang.split("-")[0].lower() == "ru" else _EN_MONTHS
    return f"{names[int(number) - 1]} {year}"


def words_for(lang: str) -> dict[str, str]:
    """The words for a language tag such as ``ru`` or ``en-GB``; English otherwise."""
    return WORDS.get(lang.split("-")[0].lower(), WORDS["en"])
