"""Fill English translations from the command line: the catalog stays as `make messages` writes it.

    .venv/bin/python tools/translate.py            # lists the untranslated msgids
    .venv/bin/python tools/translate.py FILE.json  # {"msgid": "English", ...} written into en
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent.parent / "locales" / "en" / "LC_MESSAGES" / "messages.po"


def main() -> None:
    with PO.open("rb") as handle:
        catalog = read_po(handle, locale="en")
    if len(sys.argv) < 2:
        for message in catalog:
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if message.id and not all(strings):
                print(json.dumps(message.id, ensure_ascii=False))
        return
    wanted = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    for msgid, text in wanted.items():
        message = catalog.get(msgid)
        if message is None:
            sys.exit(f"not in the catalog (run make messages first): {msgid!r}")
        message.string = text
        message.flags.discard("fuzzy")
    with PO.open("wb") as handle:
        write_po(handle, catalog, width=100, omit_header=False)


if __name__ == "__main__":
    main()
