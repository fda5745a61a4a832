"""failwhale's load: web-browser users and mobile-app users against the lab.

    locust -f loadtest/locustfile.py --site-url http://127.0.0.1:18080 --api-url http://127.0.0.1:18000

``failwhale up`` runs this for you, with the lab's addresses, a Prometheus endpoint for the
journey metrics, and a ledger folder for acknowledged tweets. Options of our own are listed
under "failwhale" in ``locust -f loadtest/locustfile.py --help``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner
from prometheus_client import CollectorRegistry, start_http_server

from loadtest import keepalive, ui_guard
from loadtest.app_user import AppUser, sign_in_earlier
from loadtest.ledger import Ledger
from loadtest.recorder import TALLY
from loadtest.shape import LabShape
from loadtest.tally import TallyCollector
from loadtest.web_user import WebUser

__all__ = ["AppUser", "LabShape", "WebUser"]
log = logging.getLogger("failwhale.load")
REPORT_KEY = "failwhale_tally"


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    g = parser.add_argument_group("failwhale", "how the two cohorts behave and where they go")
    g.add_argument("--site-url", default="http://127.0.0.1:18080", help="the desktop site (web users start here)")
    g.add_argument("--api-url", default="http://127.0.0.1:18000", help="the API edge (the app calls it directly)")
    g.add_argument("--peak-users", type=int, default=30, help="users at the evening peak (default %(default)s)")
    g.add_argument(
        "--web-share", type=float, default=0.4, help="share of users on the desktop site, 0..1 (default %(default)s)"
    )
    g.add_argument(
        "--shape", choices=["evening", "constant"], default="evening", help="load over time (default %(default)s)"
    )
    g.add_argument(
        "--duration", type=float, default=360.0, help="seconds the load runs, then stops (default %(default)s)"
    )
    g.add_argument(
        "--evening",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="seconds the evening curve spans; the load then stays at its last level until --duration "
        "(default: all of --duration)",
    )
    g.add_argument(
        "--spawn-per-s", type=float, default=10.0, help="users started or stopped per second (default %(default)s)"
    )
    g.add_argument(
        "--web-reloads", type=int, default=2, help="reloads a person tries on an error page (default %(default)s)"
    )
    g.add_argument(
        "--web-login-share", type=float, default=0.5, help="share of web users who log in (default %(default)s)"
    )
    g.add_argument(
        "--app-cache", choices=["on", "off"], default="on", help="app shows its last good copy when a refresh fails"
    )
    g.add_argument(
        "--app-retries", type=int, default=3, help="app retries per call, with backoff (default %(default)s)"
    )
    g.add_argument(
        "--app-jitter", choices=["on", "off"], default="on", help="randomise app backoff (off: synchronised retries)"
    )
    g.add_argument(
        "--app-signed-in",
        type=float,
        default=0.6,
        help="share of app users who open the app already signed in from an earlier day (default %(default)s)",
    )
    g.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=[1.0, 4.0],
        metavar=("MIN", "MAX"),
        help="seconds a user waits between journeys, drawn evenly from MIN..MAX (default 1 4)",
    )
    g.add_argument("--seed", type=int, default=0, help="seed for the users' random choices (default %(default)s)")
    g.add_argument("--metrics-port", type=int, default=0, help="serve journey metrics for Prometheus here (0: off)")
    g.add_argument("--metrics-host", default="127.0.0.1", help="address for --metrics-port (default %(default)s)")
    g.add_argument(
        "--hard-stop",
        type=float,
        default=15.0,
        help="quit this many seconds after --duration even if something hangs (default %(default)s)",
    )
    g.add_argument(
        "--metrics-linger",
        type=float,
        default=2.5,
        help="seconds to keep serving metrics after the load ends, so Prometheus scrapes the final counts",
    )
    g.add_argument("--ledger-dir", default="", help="folder for the acknowledged-tweets ledger (empty: no ledger)")
    g.add_argument(
        "--ui-secret-file",
        default="",
        help="the web UI asks for user failwhale and the password in this file (empty: no password)",
    )


def _user_counts(environment) -> dict[str, int]:
    runner = environment.runner
    # A master runs no users itself: it knows what its workers last reported.
    if isinstance(runner, MasterRunner):
        counts = runner.reported_user_classes_count
    else:
        counts = runner.user_classes_count if runner else {}
    return {"web": counts.get("WebUser", 0), "app": counts.get("AppUser", 0)}


@events.init.add_listener
def _init(environment, **_kw) -> None:
    keepalive.install()  # before any user opens a connection, in every Locust process
    opts = environment.parsed_options
    if opts is None:
        return
    for name in ("web_share", "app_signed_in"):
        if not 0.0 <= getattr(opts, name) <= 1.0:
            raise SystemExit(f"error: --{name.replace('_', '-')} must be between 0 and 1, got {getattr(opts, name)}")
    WebUser.host, AppUser.host = opts.site_url, opts.api_url
    # Weights are whole numbers; a share of 0 or 1 leaves one cohort out entirely.
    WebUser.weight = round(opts.web_share * 100)
    AppUser.weight = 100 - WebUser.weight
    environment.failwhale_ledger = Ledger(Path(opts.ledger_dir) if opts.ledger_dir else None)
    if environment.web_ui is not None and opts.ui_secret_file:
        ui_guard.guard(environment.web_ui.app, opts.ui_secret_file)
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        # Ship what this worker counted with each of Locust's stats reports (and the final one).
        events.report_to_master.add_listener(lambda client_id, data: data.__setitem__(REPORT_KEY, TALLY.drain()))
        return
    # Locust ignores --run-time when a load shape is in use, so the bound is enforced here.
    gevent.spawn_later(opts.duration + opts.hard_stop, _hard_stop, environment)
    if isinstance(runner, MasterRunner):
        events.worker_report.add_listener(lambda client_id, data: TALLY.merge(data.get(REPORT_KEY, {})))
    if opts.metrics_port:
        registry = CollectorRegistry()
        registry.register(TallyCollector(TALLY, lambda: _user_counts(environment)))
        try:
            start_http_server(opts.metrics_port, addr=opts.metrics_host, registry=registry)
        except OSError as e:
            raise SystemExit(
                f"error: cannot serve journey metrics on {opts.metrics_host}:{opts.metrics_port}: {e.strerror or e}"
            ) from e
        log.info("journey metrics on http://%s:%d/metrics", opts.metrics_host, opts.metrics_port)


@events.test_start.add_listener
def _sessions_from_earlier_days(environment, **_kw) -> None:
    opts = environment.parsed_options
    if opts is None or isinstance(environment.runner, MasterRunner) or opts.app_signed_in <= 0:
        return
    want = round(opts.app_signed_in * opts.peak_users * (1 - opts.web_share))
    got = sign_in_earlier(opts.api_url, want, opts.seed)
    log.info("%d of %d app sessions from earlier days opened", got, want)


def _hard_stop(environment) -> None:
    log.warning("load still running %.0fs after its end: stopping it", environment.parsed_options.hard_stop)
    environment.runner.quit()


@events.quitting.add_listener
def _quitting(environment, **_kw) -> None:
    opts = environment.parsed_options
    if opts is not None and opts.metrics_port and not isinstance(environment.runner, WorkerRunner):
        gevent.sleep(opts.metrics_linger)  # the last scrape must see the final counts
    ledger = getattr(environment, "failwhale_ledger", None)
    if ledger is not None:
        ledger.close()
    totals = TALLY.totals()
    for client, outcomes in totals.items():
        n = sum(outcomes.values())
        if n:
            ok = outcomes["ok"] / n
            log.info(
                "%s journeys: %d (ok %.1f%%, degraded %d, failed %d)",
                client,
                n,
                100 * ok,
                outcomes["degraded"],
                outcomes["failed"],
            )
