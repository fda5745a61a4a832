"""The command line's side of the levers: what ``failwhale workshop lever``, ``end`` and ``sheet``
send to, and read from, the running workshop.

Both tokens are files the game wrote (:mod:`chaos.workshop.room`): the room's is in every
participant's link, the facilitator's only in the terminal that started the game.
"""

from __future__ import annotations

import asyncio

import aiohttp
from pydantic import ValidationError

from chaos.workshop.levers import LeverAnswer, LeverArgs
from chaos.workshop.room import FACILITATOR_TOKEN_FILE, PORT_NAME, TOKEN_FILE, WorkshopError, require_port, workshop_dir
from services.config import LabConfig


def room_link(lab: LabConfig) -> str | None:
    """The levers page with the token in its fragment (never sent to a server), or None before the lab is up."""
    try:
        token = (workshop_dir(lab) / TOKEN_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return f"{lab.url(PORT_NAME)}/#token={token}"


def _token(lab: LabConfig, lever: str) -> str:
    """The token a pull needs: the facilitator's to end the game, the room's for any lever."""
    token_path = workshop_dir(lab) / (FACILITATOR_TOKEN_FILE if lever == "end" else TOKEN_FILE)
    try:
        return token_path.read_text(encoding="utf-8").strip()
    except OSError as e:
        if token_path.name != TOKEN_FILE and (workshop_dir(lab) / TOKEN_FILE).exists():
            raise WorkshopError(
                f"only the facilitator ends the game ({token_path} is missing here): "
                "end it from the terminal that started it"
            ) from e
        raise WorkshopError(
            f"no workshop is running here ({token_path} is missing): start one with `failwhale workshop start`"
        ) from e


def send(lab: LabConfig, lever: str, who: str, args: LeverArgs | None = None, timeout_s: float = 15.0) -> LeverAnswer:
    """Pull a lever of the running workshop (or ``end`` it); its answer, or a WorkshopError with the server's reason."""
    token = _token(lab, lever)
    require_port(lab)
    body = {"who": who, **(args.model_dump(mode="json") if args is not None else {})}

    async def post() -> tuple[int, object]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s:
            async with s.post(
                f"{lab.url(PORT_NAME)}/levers/{lever}", json=body, headers={"Authorization": f"Bearer {token}"}
            ) as resp:
                return resp.status, await resp.json(content_type=None)

    try:
        status, answer = asyncio.run(post())
    except (TimeoutError, aiohttp.ClientError) as e:
        raise WorkshopError(f"the workshop at {lab.url(PORT_NAME)} did not answer: {e.__class__.__name__}") from e
    except ValueError as e:  # not JSON: the server failed; its log says why
        raise WorkshopError(f"the workshop at {lab.url(PORT_NAME)} failed to pull {lever!r} (see its terminal)") from e
    if status != 200:
        raise WorkshopError(str(answer.get("error") if isinstance(answer, dict) else answer))
    try:
        return LeverAnswer.model_validate(answer)
    except ValidationError as e:
        raise WorkshopError(f"the workshop at {lab.url(PORT_NAME)} answered {lever!r} with something else") from e
