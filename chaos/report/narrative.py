"""The report's words, made from a run's figures: every sentence says something else when the
figures say something else. The short forms (percentages, seconds, counts) serve the postmortem too."""

from __future__ import annotations

from chaos.measure import CLIENTS
from chaos.records import (
    PhaseFigures,
    Summary,
)

CLIENT_NAMES = {"web": "website", "app": "app"}
CATEGORY_SHORT = {"website": "website", "app": "app", "server_connection": "conn"}
# How the client saw a journey go wrong, as a verb phrase: "<n> journeys ...".
REASONS = {
    "rate_limited": 'were answered 429 "Rate limit exceeded"',
    "server_error": "got 5xx server errors",
    "timeout": "gave up waiting for an answer",
    "connection_error": "could not connect at all",
    "unauthorized": "were turned away as logged out (401)",
    "client_error": "got another 4xx error",
    "bad_response": "got an answer they could not use",
}
DEGRADED = {
    "web": "worked only after a page reload",
    "app": "showed stale content from its cache or worked only after a retry",
}
# Below SMALL both clients are fine; within CLOSE of each other they fared alike.
SMALL, CLOSE = 0.05, 0.05
TROUBLE_BELOW = 0.95  # chaos.series.time_to_recover's threshold, named in the report


# ---- words from figures -------------------------------------------------------------------------


def pct(x: float | None) -> str:
    """0.9542 -> '95.4%', 1.0 -> '100%', None -> '-'."""
    if x is None:
        return "-"
    text = f"{100 * x:.1f}"
    return (text[:-2] if text.endswith(".0") else text) + "%"


def seconds_text(x: float | None) -> str:
    """Scenario seconds as a report prints them (``12.5 s``), ``-`` for none."""
    return "-" if x is None else f"{round(x, 1):g} s"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _users(n: int) -> str:
    return "no users" if not n else _count(n, "user")


def reports_text(counts: dict[str, int] | None) -> str:
    """Reports by category, short: 'website 17 · app 3 · conn 0'."""
    if not counts:
        return "-"
    return " · ".join(f"{CATEGORY_SHORT.get(k, k)} {v}" for k, v in counts.items())


def focus_phase(summary: Summary) -> str | None:
    """The phase the headline figures come from: the summary's, else the worst one for the website."""
    phases = summary.phases
    if summary.focus_phase in phases:
        return summary.focus_phase
    if not phases:
        return None
    return max(phases, key=lambda n: phases[n].web.failure_ratio or -1.0)


def _who_failed_more(name: str, fw: float, fa: float) -> str:
    hi, lo = max(fw, fa), min(fw, fa)
    if hi < SMALL:
        return (
            f"Web and app did not differ in the {name} phase: both did fine, with {pct(fw)} of website "
            f"journeys and {pct(fa)} of app journeys failed."
        )
    if hi - lo < CLOSE:
        return (
            f"Web and app did not differ much in the {name} phase: {pct(fw)} of website journeys and "
            f"{pct(fa)} of app journeys failed, {100 * (hi - lo):.1f} percentage points apart."
        )
    worse, better = ("web", "app") if fw > fa else ("app", "web")
    times = ""
    if lo > 0 and hi / lo >= 2:
        times = f" ({hi / lo:.0f} times as often)" if hi / lo >= 10 else f" ({hi / lo:.1f} times as often)"
    return (
        f"{CLIENT_NAMES[worse].capitalize()} users failed more often than {CLIENT_NAMES[better]} users in the "
        f"{name} phase: {pct(hi)} of {CLIENT_NAMES[worse]} journeys failed against {pct(lo)} of "
        f"{CLIENT_NAMES[better]} journeys{times}."
    )


def _gloss(reason: str) -> str:
    return REASONS.get(reason, f'ended as "{reason}"')


def _dominant(reasons: dict[str, int]) -> list[tuple[str, int]]:
    counts = [(r, n) for r, n in reasons.items() if n > 0]
    return sorted(counts, key=lambda rn: -rn[1])


def _reason_sentences(phase: PhaseFigures, differed: bool) -> list[str]:
    out, top = [], {}
    for client in CLIENTS:
        ranked = _dominant(phase.reasons.get(client, {}))
        if not ranked:
            continue
        total = sum(n for _, n in ranked)
        (first, n1), rest = ranked[0], ranked[1:]
        top[client] = first
        text = (
            f"All {total} {CLIENT_NAMES[client]} journeys that went wrong {_gloss(first)}"
            if n1 == total
            else f"Of the {total} {CLIENT_NAMES[client]} journeys that went wrong, {n1} ({pct(n1 / total)}) {_gloss(first)}"
        )
        if rest and rest[0][1] / total >= 0.1:
            text += f" and {rest[0][1]} ({pct(rest[0][1] / total)}) {_gloss(rest[0][0])}"
        out.append(text + ".")
    if differed and len(top) == 2 and top["web"] == top["app"]:
        out.append(
            "Both clients mostly met the same trouble, so the gap comes from how often each ran into it "
            "and what each did about it."
        )
    return out


def _degraded_sentences(phase: PhaseFigures) -> list[str]:
    out = []
    for client in CLIENTS:
        figures = phase.client(client)
        dr, fr = figures.degraded_ratio, figures.failure_ratio
        if dr is None or fr is None or dr + fr < 0.01:
            continue
        share, owner = dr / (dr + fr), f"the {CLIENT_NAMES[client]}'s"
        what = f"{pct(dr)} of its journeys {DEGRADED.get(client, 'were degraded')} and {pct(fr)} failed"
        if share >= 0.5:
            out.append(f"Most of {owner} trouble was degraded rather than failed: {what}.")
        elif share >= 0.1:
            out.append(f"{pct(share).capitalize()} of {owner} trouble was degraded rather than failed: {what}.")
        elif fr >= SMALL:
            out.append(f"Almost all of {owner} trouble was outright failure: {what}.")
    return out


def _reports_sentence(name: str, phase: PhaseFigures) -> list[str]:
    counts = phase.user_reports
    total = sum(counts.values())
    if not counts:
        return []
    if total == 0:
        return [f"Nobody filed a user report in the {name} phase."]
    words = {"website": "about the website", "app": "about the app", "server_connection": "could not connect"}
    detail = ", ".join(f"{n} {words.get(k, k)}" for k, n in counts.items())
    if "website" not in counts:
        return [f"{total} user reports were filed in the {name} phase ({detail})."]
    return [
        f"{pct(counts['website'] / total)} of the {total} user reports filed in the {name} phase were about "
        f"the website ({detail})."
    ]


def _hurt_sentence(phase: PhaseFigures) -> list[str]:
    return [
        f"{_count(phase.web.users_hurt, 'website user')} and {_count(phase.app.users_hurt, 'app user')} had their "
        "first failed journey in this phase."
    ]


def _health_sentence(phase: PhaseFigures, fw: float, fa: float) -> list[str]:
    health = phase.health_checks
    if health is None:
        return []
    worse = "web" if fw >= fa else "app"
    if health < 0.99:
        return [f"Health checks fell to {pct(health)}: the processes themselves were in trouble, not only the users."]
    if max(fw, fa) < SMALL:
        return [f"Health checks read {pct(health)}, and this time users agreed."]
    return [
        f"Health checks read {pct(health)} all the while: by their own account every process was fine while "
        f"{pct(max(fw, fa))} of {CLIENT_NAMES[worse]} journeys failed."
    ]


def explain(summary: Summary) -> list[str]:
    """Why web and app differed, in sentences made from the focus phase's figures."""
    name = focus_phase(summary)
    if name is None:
        return ["The summary has no phase figures, so there is nothing to compare web and app with."]
    phase = summary.phases[name]
    fw, fa = phase.web.failure_ratio, phase.app.failure_ratio
    if fw is None or fa is None:
        return [f"The {name} phase has no journey figures for both clients, so web and app cannot be compared."]
    first = _who_failed_more(name, fw, fa)
    differed = max(fw, fa) >= SMALL and abs(fw - fa) >= CLOSE
    return [
        first,
        *_reason_sentences(phase, differed),
        *_degraded_sentences(phase),
        *_hurt_sentence(phase),
        *_reports_sentence(name, phase),
        *_health_sentence(phase, fw, fa),
    ]


def comparison_sentence(summary: Summary) -> str | None:
    """'This rollout hurt 3 users; the big-bang rollout of X (run Y) hurt 41: 13.7 times fewer.'"""
    c = summary.comparison
    if c is None:
        return None
    ratio = c.times_fewer
    them = f"the big-bang rollout of {c.against}"
    if c.against_run:
        them += f" (run {c.against_run})"
    text = f"This rollout hurt {_users(c.users_hurt)}; {them} hurt {c.against_users_hurt}"
    if ratio is None or ratio <= 0:
        return text + "."
    if abs(ratio - 1) < 0.05:
        return text + ": about as many."
    return text + (f": {ratio:.1f} times fewer." if ratio > 1 else f": {1 / ratio:.1f} times more.")


def recovery_short(summary: Summary) -> str:
    """'105 s', '-' (users never dropped, or the run measured nothing), or 'not recovered'."""
    trouble = summary.trouble
    if trouble is None:
        return "-"
    return "not recovered" if trouble.seconds is None else seconds_text(trouble.seconds)


def recovery_text(summary: Summary) -> str:
    """The report's sentence on time to recover: when trouble began and ended, or that it never did."""
    trouble = summary.trouble
    rule = f"either client's share of journeys not failed below {pct(TROUBLE_BELOW)}"
    if trouble is None:
        return f"Time to recover: none needed; users never dropped below the steady state ({rule})."
    start, end, seconds = trouble.start, trouble.end, trouble.seconds
    if seconds is None:
        return f"Time to recover: not recovered; trouble ({rule}) began at {seconds_text(start)} and lasted to the end of the run."
    return f"Time to recover: {seconds_text(seconds)} of scenario time, from {seconds_text(start)} to {seconds_text(end)} ({rule})."


def hurt_text(summary: Summary) -> str:
    """The report's sentence on how many users of each client had a failed journey in the run."""
    hurt = summary.users_hurt  # empty when the run never started: nobody was hurt
    parts = [_count(hurt.get(c, 0), f"{CLIENT_NAMES[c]} user") for c in CLIENTS]
    return f"Users hurt (a failed journey at least once in the run): {' and '.join(parts)}."


def hurt_short(summary: Summary) -> str:
    """Users hurt by client, short: 'web 41 · app 5'."""
    hurt = summary.users_hurt
    return " · ".join(f"{c} {hurt.get(c, 0)}" for c in CLIENTS)
