"""Workshop mode: a game day on a replayed outage, for teaching incident response.

``failwhale workshop start`` plays a scenario without naming it; participants pull levers on the
running lab (``failwhale workshop lever ...``, or the levers page beside the dashboard) with the
room's token; ``failwhale workshop end``, with a token only the facilitator's terminal reads, ends
the game, and the run folder then holds a scorecard and a postmortem draft. The same seed plays
the same scenario with the same lead-in, so two rooms can play the same game.

One job per module; import what you need from the module that does it:

- ``plan``: what the seed picks (scenario, lead-in), the hidden copy played, the facilitator's sheet;
- ``levers``: the table of levers (:data:`~chaos.workshop.levers.LEVERS`): each lever's name, help
  and the model of its arguments, which validation, the command line, ``GET /levers`` and the
  levers page all read;
- ``actions``: what each lever does to the running lab, journaled (:class:`~chaos.workshop.actions.Levers`);
- ``change``: how the scale, rate-limit and drain levers change the architecture the lab runs;
- ``server``: the levers' web server and page;
- ``game``: the game itself, as the run's hooks (:class:`~chaos.workshop.game.Game`);
- ``scorecard``: how the room did, and its text;
- ``postmortem``: the postmortem draft, ``postmortem.md`` and ``postmortem.html``;
- ``client``: what ``failwhale workshop lever``/``end``/``sheet`` send and read;
- ``room``: where a running workshop lives (its port, folder and tokens) and :class:`~chaos.workshop.room.WorkshopError`.

Nothing is imported here, so ``failwhale`` loads only the modules a command uses (the postmortem
brings matplotlib).
"""
