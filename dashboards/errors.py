"""The dashboards package's one exception root."""

from __future__ import annotations


class DashboardError(Exception):
    """A dashboard could not be built or served; the message names what and where."""
