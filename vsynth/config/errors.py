"""Hydra's own errors (composition, overrides, a failed sweep job) as one ``vsynth: error:`` line, exit 2.

Hydra composes the config before any vsynth code runs, and reports a wrong override in several lines
with its own exit code 1, which vsynth reserves for bugs. :func:`report` replaces Hydra's reporter
(``hydra._internal.utils.run_and_report``) for the entry point: a user's mistake becomes one line
naming the key (or group option, or override) and exit code 2; ``HYDRA_FULL_ERROR=1`` still shows
Hydra's full trace.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

from vsynth.errors import EXIT_USER_ERROR


class JobFailed(Exception):
    """Raised inside a sweep job so Hydra marks it failed and still runs the other jobs."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self):  # a submitit job sends it back pickled
        return (JobFailed, (str(self), self.code))


def _first(text: str) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0] if lines else ""


def one_line(ex: BaseException) -> str:
    """The user-facing line for a Hydra/OmegaConf error (the key, the value, what is wrong)."""
    from hydra.errors import MissingConfigException, OverrideParseException

    if isinstance(ex, MissingConfigException):
        missing = getattr(ex, "missing_cfg_file", None) or ""
        options = list(getattr(ex, "options", None) or [])
        if "/" in missing:
            group, name = missing.rsplit("/", 1)
            return f"{group}={name}: no such option" + (f"; available: {', '.join(options)}" if options else "")
        return _first(str(ex))
    if isinstance(ex, OverrideParseException):
        return f"cannot parse the override {getattr(ex, 'override', '')!r}: {_first(str(ex))} (quote lists and dicts: \"key=[a,b]\")"
    if isinstance(ex, AssertionError) and "Unexpected type for root" in str(ex):
        return ("an override sets a key inside an entry that is null in this config; set the entry as a whole, e.g. "
                "key={a: 1}, or check `--cfg job`")
    cause = ex.__cause__
    full_key = getattr(cause, "full_key", None) or getattr(ex, "full_key", None)
    detail = _first(str(cause)) if cause is not None else _first(str(ex))
    if full_key:
        if detail.startswith(("Key '", "Could not override")) and "not in" in detail or "is not in struct" in detail:
            return f"{full_key}: not a config key ({detail}); `--cfg job` prints the composed config"
        return f"{full_key}: {detail}"
    lines = [ln.strip() for ln in str(ex).strip().splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].endswith("raised while composing config:"):  # the first line names the file only
        where = lines[0].split(":", 1)[0]  # In 'experiment/NAME'
        return f"{where}: {lines[1]}; `--cfg job` prints the composed config"
    return _first(str(ex)) or type(ex).__name__


def report(func: Callable[[], Any]) -> Any:
    """Run ``func`` (Hydra's composition and job launching); a failure is one line and an exit code."""
    try:
        return func()
    except Exception as ex:  # noqa: BLE001
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if isinstance(ex, JobFailed):  # the job printed its own error line; this is the sweep's summary
            print(f"vsynth: error: {ex}", file=sys.stderr)
            sys.exit(ex.code)
        print(f"vsynth: error: {one_line(ex)}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)


def install() -> None:
    """Make Hydra report through :func:`report` (idempotent; for the entry point only)."""
    import hydra._internal.utils as hydra_utils

    hydra_utils.run_and_report = report
