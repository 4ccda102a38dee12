"""Fill untranslated zh_CN entries from a Python dict file (msgid -> msgstr), keep the rest.

Usage: python scripts/fill_translations.py TRANSLATIONS.py
The .po files stay the source of truth; this only saves typing when many strings arrive at once.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

LOCALE_DIR = Path(__file__).resolve().parent.parent / "src" / "zhixing" / "locale"


def main() -> None:
    table = runpy.run_path(sys.argv[1])["ZH"]
    po_path = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    filled = 0
    for message in catalog:
        if not message.id:
            continue
        key = message.id[0] if isinstance(message.id, tuple) else message.id
        current = message.string
        empty = not current or (isinstance(current, tuple) and not any(current))
        if empty and key in table:
            value = table[key]
            message.string = value
            filled += 1
    with po_path.open("wb") as fh:
        write_po(fh, catalog, omit_header=False, no_location=True, width=100)
    print(f"filled {filled} entries")


if __name__ == "__main__":
    main()
