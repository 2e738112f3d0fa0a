"""Keep secrets out of everything written down: journal rows, notices and log lines.

One marker (``REDACTED``) and one function (``redact``) serve the journal and the notifier, so a
reader searching either for a leaked secret looks for one string.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)

#: What replaces a secret wherever one would have been written.
REDACTED = "[redacted]"

_SECRET_WORDS = frozenset(
    {
        "key",
        "apikey",
        "secret",
        "token",
        "webhook",
        "password",
        "passwd",
        "authorization",
        "auth",
        "credential",
        "credentials",
        "bearer",
        "cookie",
    }
)
_WEBHOOK_URL = re.compile(r"discord(app)?\.com/api/webhooks/", re.IGNORECASE)
#: A stock symbol as the per-symbol maps are keyed (the regime's per stock, a cycle's word on
#: each): capitals alone, five at most. ``KEY`` is KeyCorp, no credential field; a credential's
#: name has a word of its own beside the secret word (``API_KEY``, ``X-Api-Key``, ``auth_token``).
_SYMBOL = re.compile(r"[A-Z]{1,5}")


def _key_words(name: str) -> list[str]:
    # "apiKey" -> ["api", "key"]; "X-Api-Key" -> ["x", "api", "key"]; "webhook_url" -> [...]
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


@functools.lru_cache(maxsize=4096)  # journal rows repeat a few hundred key names
def is_secret_name(name: str) -> bool:
    """Whether a field called ``name`` holds a credential (``api_key``, ``X-Api-Key``...).

    Parameters
    ----------
    name : str
        A dict key or header name.

    Returns
    -------
    bool
        True when one of its words is a credential word; ``keystone`` or ``monkey`` are not,
        nor a stock symbol (``KEY``).
    """
    if _SYMBOL.fullmatch(name):
        return False
    return any(w in _SECRET_WORDS for w in _key_words(name))


def redact(obj: Any, path: str = "value", *, secrets: Iterable[str] = ()) -> Any:
    """Return a copy of ``obj`` with every secret replaced by ``REDACTED``.

    Parameters
    ----------
    obj : Any
        A string, or a structure of mappings, sequences and scalars.
    path : str
        Where ``obj`` sits, for the warning (which names the place, never the value).
    secrets : iterable of str
        Known secret strings (a webhook URL and its token) to scrub from inside any text.

    Returns
    -------
    Any
        Mappings stay mappings (values under credential-like keys replaced), sequences become
        lists, strings have each known secret replaced, and a string holding a Discord webhook
        URL or a pydantic ``SecretStr`` becomes ``REDACTED``. Nothing else changes.
    """
    known = tuple(s for s in secrets if s)
    return _redact(obj, path, known)


def _redact(obj: Any, path: str, secrets: tuple[str, ...]) -> Any:
    if obj is None or isinstance(obj, int | float):  # most of a row: checked first, kept
        return obj
    if isinstance(obj, Mapping):
        out: dict[Any, Any] = {}
        for k, v in obj.items():
            if is_secret_name(str(k)):
                log.warning("redacted %s.%s (named like a credential)", path, k)
                out[k] = REDACTED
            else:
                out[k] = _redact(v, f"{path}.{k}", secrets)
        return out
    if isinstance(obj, list | tuple | set | frozenset):
        return [_redact(v, f"{path}[{i}]", secrets) for i, v in enumerate(obj)]
    if isinstance(obj, str):
        for s in secrets:
            obj = obj.replace(s, REDACTED)
        if _WEBHOOK_URL.search(obj):
            log.warning("redacted a Discord webhook URL at %s", path)
            return REDACTED
        return obj
    if type(obj).__name__ == "SecretStr":
        log.warning("redacted a SecretStr at %s", path)
        return REDACTED
    return obj
