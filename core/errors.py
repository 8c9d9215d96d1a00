"""The few errors a caller catches. Everything else is a bug and keeps its traceback."""

from __future__ import annotations


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
        super().__init__(f"{where}{key_path} = {shown}: {allowed}")


class ParameterError(ConfigError):
    """A generation parameter a model does not accept (raised by an adapter's `check`)."""


class InfeasibleError(T2ARayError):
    """The configuration cannot run on this device (out of memory). The trial is `infeasible`."""


class MeteringError(T2ARayError):
    """The meter cannot give a reading (a device vanished, NVML failed)."""


def _short_repr(value: object, limit: int = 80) -> str:
    text = repr(value)
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[: limit - 1] + "…"
