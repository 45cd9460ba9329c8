"""Errors that mean "the user gave vsynth something wrong".

The entry point turns any :class:`VsynthError` into one line on stderr, a non-zero exit and a
run folder marked failed; anything else is a bug and keeps its traceback (in ``run.log``).
"""

from __future__ import annotations

#: process exit codes: done, a bug (a traceback in run.log), a user's mistake (one line), interrupted (resumable)
EXIT_OK, EXIT_BUG, EXIT_USER_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3


class VsynthError(Exception):
    """A user-facing error: the message must name the config key or the file at fault."""


class ConfigError(VsynthError):
    """A config value is invalid (message names the key, e.g. ``data.ratio``)."""


class DataError(VsynthError):
    """A dataset file or folder is invalid (message names the file and the entry)."""


class CheckpointError(VsynthError):
    """A checkpoint cannot be read or does not fit the model (message names the file)."""


class NonFiniteLossError(VsynthError):
    """Training produced a NaN/inf loss; the last good checkpoint is kept."""
