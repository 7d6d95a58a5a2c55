"""One structured (JSON) log line per request: never a token, a JWT or patient data."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import msgspec

LOGGER_NAME = "cds_service.requests"
# Anything JSON has no type for is written as its text (as json.dumps(default=str) did).
_ENCODER = msgspec.json.Encoder(enc_hook=str)


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the time (UTC) and the process; used for gunicorn's own
    log lines too (see gunicorn_conf.py)."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "pid": record.process,
            "logger": record.name,
            "event": record.getMessage(),
        }
        fields.update(getattr(record, "fields", {}))
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(fields).decode()


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (it is swapped by test runners)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def configure_logging(level: str) -> logging.Logger:
    logger = logging.getLogger("cds_service")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = True
    return logger


_LOGGER = logging.getLogger(LOGGER_NAME)


def log_request(level: int, event: str, **fields: Any) -> None:
    if not _LOGGER.isEnabledFor(level):
        return
    # The record is made here: where in the code it was made (which `Logger.log` looks up
    # by walking the stack) is not part of a request line.
    kept = {k: v for k, v in fields.items() if v is not None}
    record = _LOGGER.makeRecord(LOGGER_NAME, level, __file__, 0, event, (), None, None)
    record.fields = kept
    _LOGGER.handle(record)
