"""Logging for every command: one line per record, to stderr or a file, secrets redacted.

Secrets reach log records from code that is not ours: python-telegram-bot logs its API URL
(the token is in it) at DEBUG and puts the token in `InvalidToken`, HTTP clients put URLs in
their messages. So the redaction is a filter on the handlers, where every record passes
whoever logged it, rather than care at each call.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from urllib.parse import quote

from bot.app.settings import Settings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
HANDLER_NAME = "chungsuc"
MIN_SECRET = 6  # shorter values are not worth hiding, and would garble every line they match


class Redactor(logging.Filter):
    """Replaces each secret in a record (message, traceback, stack) by its placeholder."""

    def __init__(self, secrets: dict[str, str]) -> None:
        super().__init__()
        pairs: dict[str, str] = {}
        for placeholder, value in secrets.items():
            if len(value) >= MIN_SECRET:
                pairs[value] = placeholder
                pairs.setdefault(quote(value, safe=""), placeholder)  # as a URL would carry it
        # Longest first: a secret that contains another is replaced whole.
        self._pairs = sorted(pairs.items(), key=lambda pair: -len(pair[0]))

    def redact(self, text: str) -> str:
        """The text with every secret replaced."""
        for value, placeholder in self._pairs:
            if value in text:
                text = text.replace(value, placeholder)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._pairs:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format: the handler reports it as a logging error
            return True
        clean = self.redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Formatted here, as a handler's Formatter would, so the traceback is redacted too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True  # the record is changed in place, so every later handler gets it clean


def redact_secrets(settings: Settings) -> Redactor:
    """Put a Redactor for these settings' secrets on every handler of the root logger (all
    records reach those), replacing one put there before."""
    redactor = Redactor(settings.secret_values())
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, Redactor)]:
            handler.removeFilter(old)
        handler.addFilter(redactor)
    return redactor


def setup_logging(settings: Settings, level: str, log_file: str | Path | None = None) -> None:
    """Log at `level` to `log_file` (appended; its folder is made) or else stderr.

    Like `logging.basicConfig`, a program that set up logging already (an embedding app,
    pytest) keeps its handlers and levels; only the redaction is added to them.
    """
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == HANDLER_NAME]
    if ours or not root.handlers:
        for handler in ours:
            root.removeHandler(handler)
            handler.close()
        root.addHandler(_handler(log_file))
        root.setLevel(level)
    # httpx logs every request at INFO: noise but at DEBUG (its URLs are redacted all the same).
    logging.getLogger("httpx").setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    redact_secrets(settings)


def _handler(log_file: str | Path | None) -> logging.Handler:
    handler: logging.Handler | None = None
    if log_file is not None:
        path = Path(log_file)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(path, encoding="utf-8")
        except OSError as error:
            print(f"Cannot write the log to {path} ({error}); logging to stderr.", file=sys.stderr)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler
