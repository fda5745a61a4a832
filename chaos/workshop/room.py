"""Where a running workshop lives, as every part of it agrees: the port its levers listen on, the
folder that holds the facilitator's sheet and the two tokens, and the error a workshop says no with.

The game (:mod:`chaos.workshop.game`) writes the files once it holds the lab's ports; the
command line (:mod:`chaos.workshop.client`) reads them to reach the levers.
"""

from __future__ import annotations

from pathlib import Path

from chaos.errors import BadInput
from services.config import LabConfig

PORT_NAME = "workshop"  # the lab config's port for the levers' server
TOKEN_FILE = "token"  # the room's: in the link the participants get
FACILITATOR_TOKEN_FILE = "facilitator-token"  # only the facilitator's terminal reads it
SHEET_FILE = "sheet.md"  # the facilitator's private sheet


class WorkshopError(BadInput):
    """A workshop cannot start, or a lever cannot be pulled; one line saying why."""


class LabStarting(WorkshopError):
    """A lever pulled before the lab is up: not a mistake, just too early (the server answers 409)."""

    def __init__(self) -> None:
        super().__init__("the lab is still starting: try again in a few seconds")


def workshop_dir(lab: LabConfig) -> Path:
    """The running workshop's folder in the lab's data folder: the sheet and the tokens."""
    return lab.data_path / "workshop"


def require_port(lab: LabConfig) -> None:
    """Refuse a lab config without a port for the levers, naming the file to fix."""
    if PORT_NAME not in lab.ports:
        raise WorkshopError(f"{lab.source or 'lab config'}: ports: no port for {PORT_NAME!r}")
