"""Architecture files: v1 is a consistent topology, inconsistent ones are refused naming the
field, a swap tells listeners, a leased change lapses to the baseline unless renewed, API path
templates match and extract parameters, and a scaled architecture multiplies exactly its
per-time capacities."""

from __future__ import annotations

from typing import Annotated, Literal, get_args, get_origin

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from configfiles.errors import ConfigError
from services.architecture import Architecture, ArchitectureState, load_architecture, parse_architecture
from services.architecture.model import KINDS, compile_path
from tests.conftest import V1


def refused(data) -> str:
    with pytest.raises(ConfigError) as info:
        parse_architecture(data, where="arch")
    message = str(info.value)
    assert "\n" not in message
    return message


def test_v1_loads_with_its_ten_instances():
    a = load_architecture(V1)
    raw = yaml.safe_load(V1.read_text())
    kinds = a.instance_kinds()
    expected = [*raw["web"]["instances"], *raw["edge"]["instances"], *raw["api"]["instances"], *raw["backends"]]
    assert sorted(kinds) == sorted(expected)
    assert len(kinds) == 10
    assert set(kinds.values()) == set(KINDS)
    assert [n for n, k in kinds.items() if k == "api"] == ["api-1", "api-2", "api-3", "api-4"]
    assert a.version == "v1"


def test_every_v1_route_uses_a_declared_upstream(arch):
    for route in arch.api.routes:
        assert route.upstream in arch.api.upstreams
        assert arch.api.upstreams[route.upstream].service in arch.instance_kinds()


def test_route_naming_an_unknown_upstream_is_refused(arch_data):
    arch_data["api"]["routes"][3]["upstream"] = "cache"
    name = arch_data["api"]["routes"][3]["name"]
    message = refused(arch_data)
    assert message.startswith("arch:1: api: ")
    assert f"routes[3] ({name}) uses unknown upstream 'cache'" in message


def test_upstream_pointing_at_unknown_instance_is_refused(arch_data):
    arch_data["api"]["upstreams"]["timeline"]["service"] = "timeline-2"
    message = refused(arch_data)
    assert "upstream timeline points at unknown instance 'timeline-2'" in message


def test_web_upstream_pointing_at_unknown_instance_is_refused(arch_data):
    arch_data["web"]["api"]["service"] = "edge-2"
    assert "upstream web.api points at unknown instance 'edge-2'" in refused(arch_data)


def test_timeline_tweets_upstream_pointing_at_unknown_instance_is_refused(arch_data):
    arch_data["backends"]["timeline"]["tweets"]["service"] = "tweets-eu"
    assert "backends.timeline.tweets points at unknown instance 'tweets-eu'" in refused(arch_data)


def test_bucket_mapping_naming_an_unknown_bucket_is_refused(arch_data):
    arch_data["backends"]["auth"]["endpoint_buckets"]["verify"] = "checks"
    message = refused(arch_data)
    assert "endpoint_buckets.verify names unknown bucket 'checks'" in message
    assert message.startswith("arch:1: backends.auth")


def test_bucket_error_names_the_backend_once(arch_data):
    arch_data["backends"]["auth"]["endpoint_buckets"]["verify"] = "checks"
    message = refused(arch_data)
    assert message.startswith("arch:1: backends.auth: ")


def test_unknown_endpoint_in_bucket_mapping_is_refused(arch_data):
    arch_data["backends"]["auth"]["endpoint_buckets"]["tweet"] = "login"
    message = refused(arch_data)
    assert "backends.auth.endpoint_buckets.tweet: " in message


def test_two_endpoints_may_share_a_bucket(arch_data):
    arch_data["backends"]["auth"]["endpoint_buckets"]["verify"] = "login"
    a = parse_architecture(arch_data)
    assert a.backend("auth").endpoint_buckets["verify"] == a.backend("auth").endpoint_buckets["login"] == "login"


def test_instance_declared_twice_is_refused(arch_data):
    arch_data["api"]["instances"].append("auth")
    assert "instance 'auth' is declared twice" in refused(arch_data)


def test_route_name_used_twice_is_refused(arch_data):
    arch_data["api"]["routes"][1]["name"] = arch_data["api"]["routes"][0]["name"]
    assert f"route name {arch_data['api']['routes'][0]['name']!r} is used twice" in refused(arch_data)


def test_unknown_backend_kind_is_refused(arch_data):
    arch_data["backends"]["search"] = {"kind": "search"}
    message = refused(arch_data)
    assert "backends.search" in message


def test_unknown_field_is_refused(arch_data):
    arch_data["edge"]["retry"] = 2
    assert refused(arch_data) == "arch:1: edge.retry: unknown field"


def test_architecture_is_immutable(arch):
    with pytest.raises(ValidationError):  # frozen
        arch.version = "v2"  # type: ignore[misc]


def test_swap_calls_listeners_with_old_and_new(arch, arch_data):
    arch_data["version"] = "v2"
    v2 = parse_architecture(arch_data)
    state = ArchitectureState(arch)
    calls: list[tuple[str, str, str]] = []
    state.on_change(lambda old, new: calls.append(("first", old.version, new.version)))
    state.on_change(lambda old, new: calls.append(("second", old.version, new.version)))
    assert state.swap(v2) is arch
    assert state.current is v2
    assert state.baseline is arch  # the version the process started on is remembered
    assert calls == [("first", "v1", "v2"), ("second", "v1", "v2")]
    state.swap(arch)
    assert calls[2:] == [("first", "v2", "v1"), ("second", "v2", "v1")]


def test_listener_sees_the_new_architecture_as_current(arch, arch_data):
    arch_data["version"] = "v2"
    state = ArchitectureState(arch)
    seen = []
    state.on_change(lambda _old, _new: seen.append(state.current.version))
    state.swap(parse_architecture(arch_data))
    assert seen == ["v2"]


def _leased(arch, arch_data, version="v2"):
    arch_data["version"] = version
    state = ArchitectureState(arch)
    return state, parse_architecture(arch_data)


def test_a_leased_change_runs_until_its_lease_then_lapses_to_the_baseline(arch, arch_data):
    state, v2 = _leased(arch, arch_data)
    calls = []
    state.on_change(lambda old, new: calls.append((old.version, new.version)))
    assert state.apply(v2, 15.0, now=100.0) is arch
    assert (state.current, state.lease_until, state.lease_remaining(110.0)) == (v2, 115.0, 5.0)
    assert state.lapse_if_due(114.9) is None
    assert state.current is v2
    assert state.lapse_if_due(115.0) is v2  # the architecture it left
    assert (state.current, state.lease_until, state.lease_remaining(200.0)) == (arch, None, None)
    assert calls == [("v1", "v2"), ("v2", "v1")]  # listeners resize on the way back too
    assert state.lapse_if_due(1e9) is None  # lapses once


def test_renew_extends_only_the_lease_on_the_version_that_runs(arch, arch_data):
    state, v2 = _leased(arch, arch_data)
    state.apply(v2, 15.0, now=100.0)
    assert state.renew("v2", 30.0, now=110.0)
    assert state.lease_until == 140.0
    assert state.lapse_if_due(139.0) is None
    assert not state.renew("v3", 30.0, now=120.0)  # someone else's version: nothing changes
    assert state.lease_until == 140.0
    assert not state.renew("v2", 30.0, now=140.0)  # due: a lapsed change is not revived
    assert state.lapse_if_due(140.0) is v2
    assert not state.renew("v2", 30.0, now=141.0)  # gone back to the baseline
    assert not state.renew("v1", 30.0, now=141.0)  # the baseline: nothing to renew
    assert state.lease_until is None


def test_a_kept_change_is_permanent_and_renewing_it_keeps_it_so(arch, arch_data):
    state, v2 = _leased(arch, arch_data)
    state.apply(v2, None, now=100.0)
    assert state.lease_until is None
    assert state.renew("v2", 15.0, now=101.0)
    assert state.lease_until is None
    assert state.lapse_if_due(1e9) is None
    assert state.current is v2


def test_the_baseline_version_takes_no_lease_and_swap_ends_a_lease(arch, arch_data):
    state, v2 = _leased(arch, arch_data)
    state.apply(v2, 15.0, now=100.0)
    state.apply(arch, 15.0, now=101.0)  # nothing to undo
    assert state.lease_until is None
    state.apply(v2, 15.0, now=102.0)
    state.swap(arch)  # what existing callers do (restore the baseline)
    assert state.lease_until is None
    assert state.lapse_if_due(1e9) is None


def test_a_failing_listener_still_leaves_the_lapsed_process_on_its_baseline(arch, arch_data):
    state, v2 = _leased(arch, arch_data)
    state.apply(v2, 1.0, now=0.0)

    def fail(_old, _new):
        raise RuntimeError("pool would not resize")

    state.on_change(fail)
    with pytest.raises(RuntimeError):
        state.lapse_if_due(2.0)
    assert (state.current, state.lease_until) == (arch, None)  # and no lapse to retry forever


def test_compile_path_matches_and_extracts():
    pattern = compile_path("/api/1.1/users/{name}.json")
    m = pattern.match("/api/1.1/users/user0042.json")
    assert m is not None and m.groupdict() == {"name": "user0042"}
    # A parameter is one whole path segment: no slashes, not empty.
    assert pattern.match("/api/1.1/users/a/b.json") is None
    assert pattern.match("/api/1.1/users/.json") is None
    # The template's literal dots are literal, and the match is anchored at both ends.
    assert pattern.match("/api/1x1/users/user0042.json") is None
    assert pattern.match("/api/1.1/users/user0042.jsonx") is None
    assert pattern.match("/x/api/1.1/users/user0042.json") is None


def test_compile_path_with_several_params_and_none():
    two = compile_path("/a/{kind}/items/{id}.json")
    assert two.match("/a/tweets/items/17.json").groupdict() == {"kind": "tweets", "id": "17"}
    plain = compile_path("/api/1.1/trends.json")
    assert plain.match("/api/1.1/trends.json").groupdict() == {}
    assert plain.match("/api/1.1/trendsXjson") is None


def test_draining_names_api_replicas_and_leaves_one_serving(arch_data):
    arch_data["edge"]["drained"] = ["api-9"]
    assert "edge.drained names 'api-9', which is not an API replica" in refused(arch_data)
    arch_data["edge"]["drained"] = list(arch_data["api"]["instances"])
    assert "nowhere to send" in refused(arch_data)
    arch_data["edge"]["drained"] = arch_data["api"]["instances"][:1]
    a = parse_architecture(arch_data)
    assert a.serving_replicas() == arch_data["api"]["instances"][1:]


# ---- scaling: k times the users, the same story ------------------------------------------------

ARCHITECTURES = sorted(V1.parent.glob("*.yaml"))
# Every numeric field of the model, by the model that holds it, and whether a scale multiplies it.
# A new numeric field fails test_every_numeric_field_has_a_scaling_decision until it is put in one.
SCALED = {"Bucket.rate_per_s", "Bucket.burst", "TimelineBackend.capacity"}
UNSCALED = {
    "Upstream.timeout_s",
    "Upstream.retries",
    "Upstream.retry_backoff_s",
    "EdgeSection.timeout_s",
    "EdgeSection.retries",
    "EdgeSection.eject_after_failures",
    "EdgeSection.eject_for_s",
    "ApiSection.token_cache_ttl_s",
    "AuthBackend.session_ttl_s",
    "AuthBackend.guest_token_ttl_s",
    "AuthBackend.access_token_ttl_s",
    "AuthBackend.users",
    "TimelineBackend.queue_timeout_s",
    "TimelineBackend.cache_ttl_s",
    "TimelineBackend.build_ms",
    "TimelineBackend.page_size",
    "TweetsBackend.max_length",
    "NotificationsBackend.page_size",
}


def _types(annotation) -> list:
    """The plain types an annotation can hold: through Annotated, unions, lists and dicts."""
    if get_origin(annotation) is Literal:
        return []
    args = get_args(annotation)
    if get_origin(annotation) is Annotated:
        return _types(args[0])
    return [t for a in args for t in _types(a)] if args else [annotation]


def numeric_fields(model: type[BaseModel]) -> set[str]:
    """``Model.field`` for every int or float field of ``model`` and of the models inside it."""
    out, todo, seen = set(), [model], set()
    while todo:
        m = todo.pop()
        seen.add(m)
        for name, info in m.model_fields.items():
            for t in _types(info.annotation):
                if isinstance(t, type) and issubclass(t, BaseModel) and t not in seen:
                    todo.append(t)
                elif t in (int, float):
                    out.add(f"{m.__name__}.{name}")
    return out


def leaves(value, path=(), owner=""):
    """(path, Model.field, value) for every leaf of a model, in order."""
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from leaves(getattr(value, name), (*path, name), f"{type(value).__name__}.{name}")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from leaves(v, (*path, k), owner)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, (*path, i), owner)
    else:
        yield path, owner, value


def test_every_numeric_field_has_a_scaling_decision():
    assert not SCALED & UNSCALED
    assert numeric_fields(Architecture) == SCALED | UNSCALED


@pytest.mark.parametrize("k", [3, 0.5, 0.01])
@pytest.mark.parametrize("path", ARCHITECTURES, ids=[p.stem for p in ARCHITECTURES])
def test_scaling_multiplies_the_capacities_and_nothing_else(path, k):
    a = load_architecture(path)
    before, after = list(leaves(a)), list(leaves(a.scaled(k)))
    assert [p for p, _, _ in after] == [p for p, _, _ in before]
    scaled = 0
    for (where, owner, old), (_, _, new) in zip(before, after, strict=True):
        if owner not in SCALED:
            assert new == old, where
        elif isinstance(old, int):
            assert new == max(1, round(old * k)), where
            scaled += 1
        else:
            assert new == pytest.approx(old * k), where
            scaled += 1
    assert scaled >= 3  # every file has buckets and a timeline capacity


def test_a_scaled_architecture_is_one_its_processes_accept(arch):
    # The children read architecture.json and validate it again: the scaled copy must pass.
    for k in (0.01, 7):
        scaled = arch.scaled(k)
        assert parse_architecture(scaled.model_dump(mode="json")) == scaled


def test_scaling_v2_by_two_doubles_its_one_bucket_and_timeline_capacity():
    v2 = load_architecture(V1.parent / "v2.yaml").scaled(2)
    assert v2.backend("auth").buckets["auth"].model_dump() == {"rate_per_s": 16.0, "burst": 32}
    assert (v2.backend("timeline").capacity, v2.backend("timeline").queue_timeout_s) == (12, 0.2)
    assert v2.api.token_cache_ttl_s == 2


def test_scale_one_changes_nothing_and_a_scale_must_be_positive(arch):
    assert arch.scaled(1) == arch
    for k in (0, -1):
        with pytest.raises(ValueError, match="scale must be above 0"):
            arch.scaled(k)
