"""Where a running workshop lives, as every part of it agrees: the port its levers listen on, the
folder that holds the facilitator's sheet and the two tokens, and the error a workshop says no with.

The game (:mod:`chaos.workshop.game`) writes the files once it holds the lab's ports; the
command line (:mod:`chaos.workshop.client`) reads them to reach the levers.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from chaos.errors import BadInput
from chaos.lab.supervisor import try_listen
from services.config import LabConfig

PORT_NAME = "workshop"  # the lab config's port for the levers' server
TOKEN_FILE = "token"  # the room's: in the link the participants get
FACILITATOR_TOKEN_FILE = "facilitator-token"  # only the facilitator's terminal reads it
SHEET_FILE = "sheet.md"  # the facilitator's private sheet
DEFAULT_ROOM_PORT = 18093  # `--room HOST` without a port


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


# ---- the room: participants' own browsers ----------------------------------------------------


def parse_room(address: str, default_port: int) -> tuple[str, int]:
    """``HOST`` or ``HOST:PORT`` (``[::1]:18093`` for IPv6) as (host, port); a WorkshopError of one
    line for anything else. One address of this machine, never every interface: only the room's
    page and dashboard become reachable, on the network the facilitator names."""
    host, port = address, default_port
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise WorkshopError(f"--room {address}: expected [IPv6]:PORT")
            port = int(rest[1:])
    elif address.count(":") == 1:
        host, _, text = address.partition(":")
        if not text.isdigit():
            raise WorkshopError(f"--room {address}: the port must be a number")
        port = int(text)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError as e:
        raise WorkshopError(f"--room {address}: {host!r} is not an IP address of this machine") from e
    if ip.is_unspecified:
        raise WorkshopError(f"--room {address}: name one address of this machine, not every interface")
    if not 1024 <= port <= 65535:
        raise WorkshopError(f"--room {address}: the port must be between 1024 and 65535")
    return host, port


def room_url(room: tuple[str, int], token: str) -> str:
    """The link participants open: the levers page, the token set as a cookie on the way."""
    host, port = room
    bare = f"[{host}]" if ":" in host else host
    return f"http://{bare}:{port}/levers.html?token={token}#token={token}"


def qr_text(link: str) -> str:
    """The link as a QR code drawn with text, for a phone's camera."""
    import io

    import segno

    out = io.StringIO()
    segno.make(link, error="m").terminal(out=out, compact=True)
    return out.getvalue().rstrip("\n")


def check_room(room: tuple[str, int]) -> None:
    """A WorkshopError of one line when the room's address cannot be opened on this machine."""
    host, port = room
    try:
        try_listen(host, port)
    except OSError as e:
        raise WorkshopError(
            f"--room {host}:{port}: cannot listen there ({e.strerror or e}); is it an address of this machine?"
        ) from e
