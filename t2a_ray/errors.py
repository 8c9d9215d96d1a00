"""The few errors a caller catches. Everything else is a bug and keeps its traceback."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

# Every character `str.splitlines` breaks a line at: a user's key or file name may hold any of them.
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


class T2ARayError(Exception):
    """Base of every error t2a-ray raises on purpose."""


class ConfigError(T2ARayError):
    """Bad user input: a sweep file, a prompt file, a CLI option. Exit code 2.

    The message is one line naming where (`key_path`), the value, and what is allowed.
    """

    def __init__(self, key_path: str, value: object, allowed: str, source: str | None = None):
        self.key_path, self.value, self.allowed, self.source = key_path, value, allowed, source
        shown = _short_repr(value)
        where = f"{source}: " if source else ""
        super().__init__(_one_line(f"{where}{key_path} = {shown}: {allowed}"))

    def __reduce__(self):
        # Rebuilt from its parts, so that it crosses process boundaries (a Ray worker's error) intact.
        return (self.__class__, (self.key_path, self.value, self.allowed, self.source))


class ParameterError(ConfigError):
    """A generation parameter a model does not accept (raised by an adapter's `check`)."""


class StorageError(T2ARayError):
    """The run folder cannot be written (disk full, permissions): the sweep stops, resume continues it."""


class InfeasibleError(T2ARayError):
    """The configuration cannot run on this device (out of memory). The trial is `infeasible`."""


class MeteringError(T2ARayError):
    """The meter cannot give a reading (a device vanished, NVML failed)."""


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """ "; did you mean 'x'?" for the choice closest to `value`, or "" when none is close."""
    choices = list(choices)
    by_case = {c.lower(): c for c in choices}  # "AudioLDM" is "audioldm" written in another case
    hint = [by_case[str(value).lower()]] if str(value).lower() in by_case else []
    hint = hint or difflib.get_close_matches(str(value), choices, n=1)
    return f"; did you mean {hint[0]!r}?" if hint else ""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none): a vendor error's
    headline, for a one-line reason."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _short_repr(value: object, limit: int = 200) -> str:  # a whole path, not a whole 1 MB prompt
    text = repr(value)
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _one_line(text: str) -> str:
    """`text` with its line breaks escaped (as repr writes them): a message stays one line."""
    return _LINE_BREAKS.sub(lambda m: repr(m.group())[1:-1], text)


def root_cause(e: BaseException) -> str:
    """ "Type: message" of the error under `e` (a Ray task's error carries the worker's as `cause`),
    its first line, at most 500 characters: a failed trial's or worker's reason in one line."""
    cause = getattr(e, "cause", None) or e
    text = f"{type(cause).__name__}: {cause}".splitlines()
    return text[0][:500] if text else type(cause).__name__
