"""``python -m bench.lab_throughput --smoke``: the whole-lab benchmark still runs and still
prints its table and its ratio."""

from __future__ import annotations

import re

import pytest

from tests.bench.conftest import figure, is_quotient, run_bench

pytestmark = pytest.mark.integration

NUM = r"([\d,]+(?:\.\d+)?)"
# run, users, window, requests, req/s, 5 s min..max, p50 ms, p99 ms, failed, journeys ok
ROW = re.compile(rf"^(lab|ceiling) +(\d+) +(\d+)s +{NUM} +{NUM} +(\S+) +{NUM} +{NUM} +{NUM}%  (.+)$", re.M)
RATIO = re.compile(
    rf"^lab: {NUM} req/s at p99 {NUM} ms; ceiling: {NUM} req/s at p99 {NUM} ms; "
    r"ratio lab / ceiling (\d+\.\d{3})$",
    re.M,
)

SERVED = re.compile(r"^CPU per request each process served in the lab window, in us: (.+)$", re.M)
SERVED_ENTRY = re.compile(rf"([\w-]+) {NUM} \({NUM}/s\)")


def test_smoke_run_prints_both_runs_and_the_ratio():
    done = run_bench("lab_throughput", "--smoke", timeout_s=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout

    served = SERVED.search(out)
    assert served, out
    per_process = {name: us for name, us, _rps in SERVED_ENTRY.findall(served[1])}
    # Every user goes through the edge or the web; the lab's Prometheus counted what each served.
    assert {"edge", "web"} <= set(per_process), out
    assert all(figure(us) > 0 for us in per_process.values()), out

    rows = {m[1]: m.groups()[1:] for m in ROW.finditer(out)}
    assert set(rows) == {"lab", "ceiling"}, out
    rps = {}
    for run, (users, window, requests, run_rps, _spread, p50, p99, _failed, _journeys) in rows.items():
        assert int(users) == 20, (run, out)  # --smoke's users, all of them started
        assert int(window) >= 1 and figure(requests) > 0 and figure(run_rps) > 0, (run, out)
        assert 0 <= figure(p50) <= figure(p99) and figure(p99) > 0, (run, out)
        rps[run] = figure(run_rps)
    # The lab's users go through journeys; the ceiling's only send GET /.
    assert re.fullmatch(r"(app|web) \d+\.\d% of [\d,]+(, web \d+\.\d% of [\d,]+)?", rows["lab"][-1]), out
    assert rows["ceiling"][-1] == "-", out

    ratio = RATIO.search(out)
    assert ratio, out
    assert (figure(ratio[1]), figure(ratio[3])) == (rps["lab"], rps["ceiling"]), out
    assert is_quotient(float(ratio[5]), 3, rps["lab"], rps["ceiling"]), out
    assert re.search(r"^the lab sustains \d+\.\d\d of what Locust can drive against a bare aiohttp endpoint", out, re.M)
    assert "smoke run:" in out


def test_too_short_a_duration_is_one_line_and_exit_code_2():
    done = run_bench("lab_throughput", "--smoke", "--duration", "3", timeout_s=60)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: --duration 3 leaves under 3 s of steady load"), line
    assert done.stdout == ""
