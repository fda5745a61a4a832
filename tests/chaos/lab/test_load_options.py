"""Every way of starting a load (a scenario run, `failwhale up`, the Chaos Toolkit action, a
benchmark) builds LoadOptions, so its check is the last word before Locust starts."""

from __future__ import annotations

import pytest

from chaos.errors import BadInput
from chaos.lab.supervisor import MAX_USERS, LoadOptions


@pytest.mark.parametrize("users", [0, -3, MAX_USERS + 1, 2.5, True, "30"])
def test_a_load_of_no_users_too_many_or_not_a_whole_number_is_refused_in_one_line(users):
    with pytest.raises(BadInput, match="^the load's users must be") as info:
        LoadOptions(peak_users=users)
    assert "\n" not in str(info.value)


def test_a_load_at_the_limit_runs_that_many_users():
    assert LoadOptions(peak_users=MAX_USERS).args()[:2] == ["--peak-users", "10000"]
