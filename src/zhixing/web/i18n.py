"""Console language: zh-CN by default, English on request. Babel catalogs, not strings in code.

The ``.po`` files are the source of truth; they are compiled in memory at start-up, so there is
no build step and no stale ``.mo`` file.
"""

from __future__ import annotations

import io
from contextvars import ContextVar
from functools import cache
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LANG_COOKIE = "zx_lang"

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)


@cache
def translations(locale: str) -> Translations:
    path = resources.files("zhixing") / "locale" / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(fp=buf)


def normalize(value: str | None) -> str | None:
    if not value:
        return None
    v = value.replace("-", "_")
    if v.lower().startswith("zh"):
        return "zh_CN"
    if v.lower().startswith("en"):
        return "en"
    return None


def gettext(message: str) -> str:
    return translations(current_locale.get()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale.get()).ungettext(singular, plural, n)


_ = gettext
