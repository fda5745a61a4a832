"""The exception root of the ``chaos`` package.

The CLI prints these as one line (``error: ...``) and exits with the error's ``exit_code``.
"""

from __future__ import annotations


class ChaosError(Exception):
    """Root of every error raised on purpose by the chaos package."""

    exit_code = 1


class BadInput(ChaosError):
    """A file, flag or port the user gave cannot be used (exit code 2)."""

    exit_code = 2


class LabError(ChaosError):
    """The lab could not start or a process in it failed."""

    exit_code = 1


class SetupError(ChaosError):
    """A required tool (Prometheus, a browser) is missing and could not be installed."""

    exit_code = 1
