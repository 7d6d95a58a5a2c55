"""The keys that sign the trend app's launch state (contract v3, `CDS_SECRET_KEY_FILE`).

One key per line: the first signs, every one verifies, so keys rotate (add the new key on
top, keep the old one until launches signed with it have expired, then remove it). The same
file goes on every instance. Without it, a key is made once, at start-up, in an owner-only
file beside the store (`launch-state.key`): enough for one instance. The keys never live in
the data store, and are never logged.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from pathlib import Path

from .config import ConfigError, Settings

MIN_KEY_CHARACTERS = 32
DEFAULT_KEY_FILE = "launch-state.key"


def key_file(settings: Settings) -> Path:
    if settings.secret_key_file is not None:
        return settings.secret_key_file
    return settings.feedback_db.parent / DEFAULT_KEY_FILE


def launch_keys(settings: Settings) -> tuple[str, ...]:
    """The signing keys, the signing one first. A configured file must exist and hold keys;
    the default one is made if it does not exist. `ConfigError` says what is wrong."""
    path = key_file(settings)
    where = "CDS_SECRET_KEY_FILE" if settings.secret_key_file is not None else str(path)
    if settings.secret_key_file is None and not path.exists():
        _make(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigError(f"{where}: cannot be read ({reason})") from None
    keys = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not keys:
        raise ConfigError(f"{where}: holds no key (one per line)")
    if any(len(key) < MIN_KEY_CHARACTERS for key in keys):
        raise ConfigError(f"{where}: every key needs at least {MIN_KEY_CHARACTERS} characters")
    return keys


def readable_by_others(path: Path) -> bool:
    with contextlib.suppress(OSError):
        return bool(path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))
    return False


def _make(path: Path) -> None:
    """Write a new key owner-only, atomically: workers starting together agree on one."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".launch-key-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secrets.token_urlsafe(48) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)  # fails if another process made it first: use theirs
    finally:
        os.unlink(temporary)
