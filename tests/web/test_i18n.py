"""The catalogs are complete: every string the console shows has a zh_CN translation, and the
template (.pot) matches what the code and templates contain now."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from zhixing.web import i18n

ROOT = Path(__file__).resolve().parents[2]
LOCALE = ROOT / "src" / "zhixing" / "locale"


def _ids(path: Path, locale: str | None = None) -> dict[str, object]:
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    return {str(m.id[0] if isinstance(m.id, (tuple, list)) else m.id): m.string
            for m in catalog if m.id}


def test_template_matches_the_sources(tmp_path: Path) -> None:
    out = tmp_path / "fresh.pot"
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", "extract", "-F",
                    str(ROOT / "babel.cfg"), "-k", "_", "-k", "gettext", "-k", "ngettext:1,2",
                    "-k", "N_", "--no-location", "--omit-header", "-o", str(out), str(ROOT)],
                   check=True, capture_output=True, cwd=ROOT)
    assert set(_ids(out)) == set(_ids(LOCALE / "messages.pot")), "run `make messages`"


def test_every_message_is_translated_to_chinese() -> None:
    template = set(_ids(LOCALE / "messages.pot"))
    zh = _ids(LOCALE / "zh_CN" / "LC_MESSAGES" / "messages.po", "zh_CN")
    missing = sorted(m for m in template if not zh.get(m) or zh.get(m) == ("",))
    assert not missing, f"untranslated: {missing}"


def test_runtime_lookup() -> None:
    token = i18n.current_locale.set("zh_CN")
    try:
        assert i18n.gettext("Log in") == "登录"
        assert i18n.ngettext("%(num)d court", "%(num)d courts", 3) % {"num": 3} == "共 3 个法院"
    finally:
        i18n.current_locale.reset(token)
    token = i18n.current_locale.set("en")
    try:
        assert i18n.gettext("Log in") == "Log in"
    finally:
        i18n.current_locale.reset(token)
