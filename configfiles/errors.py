"""The exception root of :mod:`configfiles`."""

from __future__ import annotations


class ConfigError(Exception):
    """A config, architecture, scenario or dashboard file is malformed or unreadable.

    The message is one line that names the file, the line and the field. Each package turns it
    into its own error where it crosses its edge (a 400 in a service, a bad-input exit in the CLI).
    """
