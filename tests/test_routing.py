"""Pools without servers: strategies, cooldown rules, the retry policy, in-process state, hooks.

Time is a fake clock wherever a test is about durations, so cooldowns and windows are exact
and nothing sleeps. The same rules over real HTTP are in test_routing_http.py, and with the
state on a real Redis in test_routing_redis.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from email.utils import format_datetime
from typing import Any

import pytest

from registry import BackendError, ConfigError, PluginError, RegistryError, hookimpl
from registry.errors import NoDeploymentAvailableError
from registry.routing import (
    Candidate,
    CooldownKind,
    CooldownRules,
    Deployment,
    ErrorKind,
    Failure,
    MemoryStateStore,
    Pool,
    Step,
    classify,
    deployment_label,
    parse_duration,
    server_cooldown,
)
from registry.routing.state import LocalStats
from registry.testing import use_plugins


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def members(*weights: float) -> list[Deployment]:
    return [
        Deployment(f"chat#{i}", f"region{i}.example.com/gpt-4o", w) for i, w in enumerate(weights)
    ]


def pool(*weights: float, clock: FakeClock | None = None, **options: Any) -> Pool:
    return Pool("chat", members(*weights), clock=clock or FakeClock(), **options)


def rate_limited(**headers: str) -> Failure:
    return Failure.from_response(429, headers)


# -- deployments --------------------------------------------------------------------------


@pytest.mark.parametrize("weight", [-1, float("nan"), float("inf"), True, "2"])
def test_a_bad_weight_is_a_config_error(weight: Any) -> None:
    with pytest.raises(ConfigError, match="chat#0: weight must be"):
        Deployment("chat#0", "x", weight)


def test_pool_ids_must_be_unique_and_present() -> None:
    with pytest.raises(ConfigError, match="ids repeat"):
        Pool("chat", [Deployment("a", "x"), Deployment("a", "y")])
    with pytest.raises(ConfigError, match="no deployments"):
        Pool("chat", [])


def test_labels_never_carry_credentials() -> None:
    label = deployment_label("https://user:s3cret@contoso.openai.azure.com:8443/x?api-key=k", "d")
    assert label == "contoso.openai.azure.com:8443/d"
    assert deployment_label("not a url", None) == "?"
    assert deployment_label(None, "eastus") == "eastus"


# -- strategies ---------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [(2, 1), (1, 1, 2), (5, 3, 2)])
def test_weighted_split_within_3_percent_over_10000_picks(weights: tuple[float, ...]) -> None:
    routed = pool(*weights, seed=20240601)
    counts = Counter(routed.pick() for _ in range(10_000))
    total = sum(weights)
    for deployment, weight in zip(routed.deployments, weights, strict=True):
        share = counts[deployment] / 10_000
        assert abs(share - weight / total) <= 0.03 * weight / total, (deployment.id, share)


def test_weighted_picks_are_reproducible_with_a_seed() -> None:
    a, b, c = pool(1, 1, 1, seed=7), pool(1, 1, 1, seed=7), pool(1, 1, 1, seed=8)
    run_a = [a.pick() for _ in range(50)]
    assert run_a == [b.pick() for _ in range(50)]
    assert run_a != [c.pick() for _ in range(50)]


def test_zero_weight_is_a_standby() -> None:
    routed = pool(1, 0, seed=1)
    assert {routed.pick() for _ in range(500)} == {routed.deployments[0]}
    routed.record_failure(routed.deployments[0], rate_limited())
    assert routed.pick() == routed.deployments[1]


def test_ordered_is_primary_then_backups() -> None:
    clock = FakeClock()
    routed = pool(1, 5, 5, clock=clock, strategy="ordered")
    first, second, third = routed.deployments
    assert {routed.pick() for _ in range(100)} == {first}
    routed.record_failure(first, rate_limited(**{"retry-after": "10"}))
    routed.record_failure(second, rate_limited(**{"retry-after": "5"}))
    assert routed.pick() == third
    clock.advance(5.001)
    assert routed.pick() == second
    clock.advance(5)
    assert routed.pick() == first


def test_least_busy_goes_where_fewest_calls_are_in_flight() -> None:
    routed = pool(1, 1, 1, strategy="least-busy", seed=3)
    first, second, third = routed.deployments
    with routed.track(first), routed.track(first), routed.track(second):
        chosen = [routed.pick() for _ in range(50)]
    assert set(chosen) == {third}
    assert [s.in_flight for s in routed.snapshot()] == [0, 0, 0]


def test_latency_tries_unmeasured_first_then_the_fastest_and_remeasures_stale_ones() -> None:
    clock = FakeClock()
    routed = pool(1, 1, 1, clock=clock, strategy="latency", seed=5)
    slow, fast, other = routed.deployments
    routed.record_success(slow, 2.0)
    routed.record_success(fast, 0.5)
    assert {routed.pick() for _ in range(20)} == {other}  # never measured
    routed.record_success(other, 1.0)
    assert {routed.pick() for _ in range(20)} == {fast}
    for _ in range(10):  # fast gets slow: the moving average follows
        routed.record_success(fast, 3.0)
    assert routed.pick() == other
    clock.advance(61)  # every measurement is stale: each is tried again
    routed.record_success(other, 1.0)
    assert {routed.pick() for _ in range(50)} == {slow, fast}


def test_weighted_choice_skips_zero_weights_even_at_the_edges() -> None:
    class Edge(random.Random):  # the top of the range, where float rounding can land
        def random(self) -> float:
            return 1.0

    from registry.routing.strategies import weighted_choice

    cands = [Candidate(d, i) for i, d in enumerate(members(1, 1, 0))]
    assert weighted_choice(cands, Edge()).deployment.id == "chat#1"


# -- strategies as plugins ----------------------------------------------------------------


class RoundRobin:
    def __init__(self) -> None:
        self.turn = 0

    def choose(self, candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
        self.turn += 1
        return candidates[self.turn % len(candidates)]


class RoundRobinPlugin:
    @hookimpl
    def modelreg_register_routing_strategies(self, register: Any) -> None:
        register("round-robin", RoundRobin)


def test_builtin_strategies_come_through_the_hook() -> None:
    from registry.plugins import get_plugin_host

    host = get_plugin_host()
    assert host.names("routing_strategies") == ["latency", "least-busy", "ordered", "weighted"]
    for name in host.names("routing_strategies"):
        assert host.registrations().owner["routing_strategies"][name].name == (
            "registry.routing.builtin"
        )


def test_a_plugin_strategy_routes_a_pool() -> None:
    with use_plugins(RoundRobinPlugin()):
        routed = pool(1, 1, 1, strategy="round-robin")
    assert [routed.pick().id for _ in range(4)] == ["chat#1", "chat#2", "chat#0", "chat#1"]


def test_a_plugin_cannot_take_a_builtin_strategy_name() -> None:
    class Taker:
        @hookimpl
        def modelreg_register_routing_strategies(self, register: Any) -> None:
            register("weighted", RoundRobin)

    with use_plugins(Taker(), strict=False) as host:
        problems = [e for p in host.plugins() for e in p.errors]
        assert any("'weighted'" in e and "built-in" in e for e in problems), problems
        routed = pool(1, 1, strategy="weighted")
    assert type(routed.strategy).__name__ == "WeightedStrategy"


def test_an_unknown_strategy_says_which_exist() -> None:
    with pytest.raises(
        ConfigError, match=r"'weigthed' is not registered\. Did you mean 'weighted'"
    ):
        pool(1, strategy="weigthed")


def test_a_strategy_returning_something_else_is_the_plugin_s_error() -> None:
    class Wrong:
        def choose(self, candidates: Sequence[Candidate], rng: random.Random) -> Candidate:
            return Candidate(candidates[0].deployment, 0)  # equal, but not one it was given

    routed = pool(1, 1, strategy=Wrong())
    with pytest.raises(PluginError, match="not one of the candidates"):
        routed.pick()


def test_registering_an_instance_instead_of_a_factory_is_refused() -> None:
    class Instance:
        @hookimpl
        def modelreg_register_routing_strategies(self, register: Any) -> None:
            register("instance", RoundRobin())

    with (
        use_plugins(Instance(), strict=False) as host,
        pytest.raises(PluginError, match="is not callable"),
    ):
        host.lookup("routing_strategies", "instance")


def test_registering_strategies_imports_no_routing_code_and_no_redis(tmp_path: Any) -> None:
    (tmp_path / "settings.toml").write_text('[models.m]\nbackend = "fake"\n')
    code = (
        "import sys; from registry import create_model; create_model('m');"
        "from registry.plugins import get_plugin_host;"
        "names = get_plugin_host().names('routing_strategies');"
        "print(names, [m for m in ('redis', 'registry.routing.strategies',"
        " 'registry.routing.pool') if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.strip() == "['latency', 'least-busy', 'ordered', 'weighted'] []"


# -- the servers' headers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("250ms", 0.25),
        ("12ms", 0.012),
        ("1h2m3.5s", 3723.5),
        ("6m23.456s", 383.456),
        ("0.5", 0.5),
        ("20", 20.0),
        ("100us", 0.0001),
    ],
)
def test_reset_durations_in_the_formats_servers_send(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "1x", "-3", "nan", "inf", "1s2", "m"])
def test_what_is_not_a_duration(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("headers", "seconds", "header"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5, "retry-after-ms"),
        ({"retry-after": "7"}, 7.0, "retry-after"),
        ({"x-ms-retry-after-ms": "800", "retry-after": "1"}, 0.8, "x-ms-retry-after-ms"),
        ({"retry-after": "2.5"}, 2.5, "retry-after"),
        ({"retry-after-ms": "0", "retry-after": "3"}, 3.0, "retry-after"),
        ({"x-ratelimit-reset-requests": "1s"}, 1.0, "x-ratelimit-reset-requests"),
        ({"x-ratelimit-reset-tokens": "6m0s"}, 360.0, "x-ratelimit-reset-tokens"),
        (
            {
                "x-ratelimit-reset-requests": "250ms",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-tokens": "6m0s",
                "x-ratelimit-remaining-tokens": "5000",
            },
            0.25,
            "x-ratelimit-reset-requests",
        ),
        (
            {"x-ratelimit-reset-requests": "2s", "x-ratelimit-reset-tokens": "30s"},
            30.0,
            "x-ratelimit-reset-tokens",
        ),
    ],
)
def test_server_cooldown_reads_the_headers_in_order(
    headers: dict[str, str], seconds: float, header: str
) -> None:
    assert server_cooldown(headers) == (pytest.approx(seconds), header)


def test_retry_after_as_an_http_date() -> None:
    from datetime import UTC, datetime

    now = 1_750_000_000.0
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert server_cooldown({"retry-after": date}, now=now) == (pytest.approx(30), "retry-after")
    past = format_datetime(datetime.fromtimestamp(now - 30, UTC), usegmt=True)
    assert server_cooldown({"retry-after": past}, now=now) is None
    assert server_cooldown({"retry-after": "tomorrow"}, now=now) is None


def test_a_failure_keeps_only_rate_limit_headers_whatever_their_case() -> None:
    failure = Failure.from_response(
        429, {"Retry-After-Ms": "10", "Set-Cookie": "session=s3cret", "api-key": "s3cret"}
    )
    assert failure.headers == {"retry-after-ms": "10"}
    assert "s3cret" not in repr(failure)


# -- the cooldown rules, applied by a pool ---------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "at_least"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "7"}, 7.0),
        ({"x-ratelimit-reset-requests": "6m0s"}, 360.0),
        ({"x-ratelimit-reset-tokens": "250ms"}, 0.25),
        ({}, 5.0),  # cooldown_time
    ],
)
def test_a_429_cools_for_at_least_what_the_server_said(
    headers: dict[str, str], at_least: float
) -> None:
    clock = FakeClock()
    routed = pool(1, 1, clock=clock)
    target = routed.deployments[0]
    verdict = routed.record_failure(target, rate_limited(**headers))
    assert verdict.retry and verdict.kind is CooldownKind.RATE_LIMITED
    cooldown = routed.snapshot()[0].cooldown
    assert cooldown is not None and cooldown.remaining >= at_least
    clock.advance(at_least - 0.001)
    assert not routed.snapshot()[0].available
    assert {routed.pick() for _ in range(50)} == {routed.deployments[1]}
    clock.advance(0.002)
    assert routed.snapshot()[0].available


def test_a_server_cooldown_is_capped_at_max_cooldown() -> None:
    routed = pool(1, rules=CooldownRules(max_cooldown=600))
    routed.record_failure(routed.deployments[0], rate_limited(**{"retry-after": "999999"}))
    cooldown = routed.snapshot()[0].cooldown
    assert cooldown is not None and cooldown.remaining == 600


@pytest.mark.parametrize(
    "failure",
    [
        Failure.from_response(500),
        Failure.from_response(502),
        Failure.from_response(503),
        Failure.from_response(408),
        Failure(ErrorKind.TIMEOUT),
        Failure(ErrorKind.CONNECTION),
    ],
    ids=["500", "502", "503", "408", "timeout", "connection"],
)
def test_transient_failures_cool_after_allowed_fails_within_the_window(failure: Failure) -> None:
    clock = FakeClock()
    routed = pool(1, 1, clock=clock, rules=CooldownRules(allowed_fails=2, cooldown_time=4))
    target = routed.deployments[0]
    for _ in range(2):
        verdict = routed.record_failure(target, failure)
        assert verdict.retry and verdict.cooldown is None
        assert routed.snapshot()[0].available
    verdict = routed.record_failure(target, failure)
    assert verdict.kind is CooldownKind.FAILING and verdict.cooldown == 4
    assert "3 failures within 60 s" in verdict.reason
    assert not routed.snapshot()[0].available
    clock.advance(4.001)
    assert routed.snapshot(failures=True)[0].failures == 3
    clock.advance(60)  # the window is over: counting starts again
    assert routed.snapshot(failures=True)[0].failures == 0
    assert routed.record_failure(target, failure).cooldown is None


def test_the_failure_window_runs_from_its_first_failure() -> None:
    clock = FakeClock()
    routed = pool(1, clock=clock)
    routed.record_failure(routed.deployments[0], Failure(ErrorKind.TIMEOUT))
    clock.advance(40)
    routed.record_failure(routed.deployments[0], Failure(ErrorKind.TIMEOUT))
    assert routed.snapshot(failures=True)[0].failures == 2
    clock.advance(20.001)  # 60 s after the first: a new window
    assert routed.snapshot(failures=True)[0].failures == 0


def test_25_consecutive_500s_do_not_leave_a_deployment_in_rotation() -> None:
    clock = FakeClock()
    routed = pool(1, 1, clock=clock)  # defaults: allowed_fails 3, cooldown_time 5 s
    target = routed.deployments[0]
    out = 0
    for _ in range(25):
        routed.record_failure(target, Failure.from_response(500))
        out += not routed.snapshot()[0].available
        clock.advance(1)
    assert out == 22  # every failure after the third, each one extending the cooldown


def test_allowed_fails_zero_cools_at_the_first_failure() -> None:
    routed = pool(1, 1, rules=CooldownRules(allowed_fails=0))
    assert routed.record_failure(routed.deployments[0], Failure(ErrorKind.TIMEOUT)).cooldown == 5


def test_a_5xx_that_says_when_to_come_back_cools_at_once() -> None:
    routed = pool(1, 1)
    failure = Failure.from_response(503, {"retry-after": "20"})
    verdict = routed.record_failure(routed.deployments[0], failure)
    assert verdict.kind is CooldownKind.UNAVAILABLE and verdict.cooldown == 20


@pytest.mark.parametrize(
    "failure",
    [
        Failure.from_response(401),
        Failure.from_response(403),
        Failure.from_response(404),
        Failure.from_response(429, code="insufficient_quota"),
    ],
    ids=["401", "403", "404", "quota"],
)
def test_misconfigured_deployments_cool_longer_and_warn_once(
    failure: Failure, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelreg")
    routed = pool(1, 1)
    target = routed.deployments[0]
    for _ in range(3):
        verdict = routed.record_failure(target, failure)
        assert verdict.retry and verdict.kind is CooldownKind.MISCONFIGURED
        assert verdict.cooldown == 60
    state = routed.snapshot()[0]
    assert state.misconfigured and state.cooldown is not None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "chat#0 (region0.example.com/gpt-4o)" in warnings[0].getMessage()
    routed.record_success(target, 0.1)  # fixed: a later misconfiguration warns again
    assert any("answers again" in r.getMessage() for r in caplog.records)
    routed.record_failure(target, failure)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


@pytest.mark.parametrize(
    "failure",
    [
        Failure.from_response(400),
        Failure.from_response(400, code="content_filter"),
        Failure.from_response(400, code="context_length_exceeded"),
        Failure.from_response(413),
        Failure.from_response(422),
        Failure(ErrorKind.CONTENT_FILTER),
        Failure(ErrorKind.OTHER),
    ],
    ids=["400", "content-filter", "context-length", "413", "422", "refusal", "other"],
)
def test_the_caller_s_faults_never_cool_and_are_not_retried(failure: Failure) -> None:
    routed = pool(1, 1, rules=CooldownRules(allowed_fails=0))
    for _ in range(5):
        verdict = routed.record_failure(routed.deployments[0], failure)
        assert not verdict.retry and verdict.cooldown is None and not verdict.counts
    assert routed.snapshot(failures=True)[0].available
    assert routed.snapshot(failures=True)[0].failures == 0


def test_content_filter_is_named_as_such() -> None:
    verdict = classify(Failure.from_response(400, code="content_filter"), CooldownRules())
    assert verdict.reason == "400, content filter"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cooldown_time", 0),
        ("allowed_fails", -1),
        ("failure_window", float("nan")),
        ("allowed_fails", 1.5),
        ("misconfigured_cooldown", "60"),
    ],
)
def test_rules_are_validated(field: str, value: Any) -> None:
    with pytest.raises(ConfigError, match=field):
        CooldownRules(**{field: value})


def test_a_longer_cooldown_is_kept() -> None:
    routed = pool(1)
    routed.record_failure(routed.deployments[0], rate_limited(**{"retry-after": "30"}))
    routed.record_failure(routed.deployments[0], rate_limited(**{"retry-after": "1"}))
    cooldown = routed.snapshot()[0].cooldown
    assert cooldown is not None and cooldown.remaining == 30


# -- the retry policy -----------------------------------------------------------------------


def test_after_a_failure_another_deployment_is_tried_at_once() -> None:
    routed = pool(1, 1, 1, seed=2)
    attempts = routed.attempts(max_retries=3, budget=60)
    step = attempts.next(routed.snapshot())
    assert step.wait == 0 and step.deployment is not None
    failed = step.deployment
    verdict = routed.record_failure(failed, Failure.from_response(500))
    assert attempts.failed(failed, verdict)  # not cooled (allowed_fails), but tried
    for _ in range(2):
        again = attempts.next(routed.snapshot())
        assert again.wait == 0 and again.deployment not in (None, failed)
        assert again.deployment is not None
        attempts.failed(
            again.deployment, routed.record_failure(again.deployment, Failure.from_response(500))
        )


def test_retrying_a_deployment_already_tried_backs_off_like_the_sdk() -> None:
    routed = pool(1, seed=1)
    attempts = routed.attempts(max_retries=5, budget=None)
    waits = []
    for _ in range(6):
        step = attempts.next(routed.snapshot())
        waits.append(step.wait)
        assert step.deployment is not None
        attempts.failed(step.deployment, classify(Failure.from_response(502), routed.rules))
    assert waits[0] == 0
    for wait, full in zip(waits[1:], [0.5, 1, 2, 4, 8], strict=True):
        assert 0.75 * full <= wait <= full


def test_when_all_cool_it_waits_for_the_earliest_cooldown_if_that_fits_the_budget() -> None:
    clock = FakeClock()
    routed = pool(1, 1, clock=clock)
    first, second = routed.deployments
    routed.record_failure(first, rate_limited(**{"retry-after": "3"}))
    routed.record_failure(second, rate_limited(**{"retry-after-ms": "1200"}))
    attempts = routed.attempts(max_retries=2, budget=10)
    step = attempts.next(routed.snapshot())
    assert step.deployment is None and 1.2 <= step.wait < 1.25
    clock.advance(step.wait)
    step = attempts.next(routed.snapshot())
    assert step.deployment == second and step.wait == 0


def test_when_the_earliest_cooldown_ends_after_the_budget_it_raises_listing_each() -> None:
    clock = FakeClock()
    routed = pool(2, 1, clock=clock)
    first, second = routed.deployments
    routed.record_failure(first, rate_limited(**{"retry-after": "30"}))
    routed.record_failure(second, Failure.from_response(401))
    attempts = routed.attempts(max_retries=3, budget=10)
    with pytest.raises(NoDeploymentAvailableError) as raised:
        attempts.next(routed.snapshot())
    error = raised.value
    assert isinstance(error, BackendError) and isinstance(error, RegistryError)
    assert error.pool == "chat" and [s.deployment for s in error.deployments] == [first, second]
    message = str(error)
    assert "model pool 'chat'" in message and "after the call's time budget (10 s left)" in message
    assert (
        "chat#0 (region0.example.com/gpt-4o): weight 2, rate-limited, 30 s of cooldown left"
        in message
    )
    assert "chat#1 (region1.example.com/gpt-4o): weight 1, misconfigured, 60 s" in message


def test_misconfigured_cooldowns_are_not_waited_for() -> None:
    routed = pool(1, 1)
    for deployment in routed.deployments:
        routed.record_failure(deployment, Failure.from_response(404))
    with pytest.raises(NoDeploymentAvailableError, match="out for misconfiguration"):
        routed.attempts(max_retries=3, budget=3600).next(routed.snapshot())


def test_the_retry_budget_is_spent_across_deployments() -> None:
    routed = pool(1, 1, 1)
    attempts = routed.attempts(max_retries=2, budget=None)
    results = []
    for _ in range(3):
        step = attempts.next(routed.snapshot())
        assert step.deployment is not None
        results.append(
            attempts.failed(step.deployment, classify(Failure(ErrorKind.TIMEOUT), routed.rules))
        )
    assert results == [True, True, False]
    assert attempts.attempts == 3


def test_a_failure_not_worth_retrying_ends_the_loop() -> None:
    routed = pool(1, 1)
    attempts = routed.attempts(max_retries=5, budget=None)
    step = attempts.next(routed.snapshot())
    assert step.deployment is not None
    assert not attempts.failed(
        step.deployment, routed.record_failure(step.deployment, Failure.from_response(400))
    )


def test_a_spent_budget_raises_before_another_attempt() -> None:
    clock = FakeClock()
    routed = pool(1, 1, clock=clock)
    attempts = routed.attempts(max_retries=5, budget=2)
    clock.advance(1.5)
    assert attempts.time_left() == 0.5
    assert routed.attempts(max_retries=0, budget=None).time_left() is None
    clock.advance(0.5)
    assert attempts.time_left() == 0
    with pytest.raises(NoDeploymentAvailableError, match="time budget is spent"):
        attempts.next(routed.snapshot())


def test_without_a_budget_waiting_is_still_bounded() -> None:
    routed = pool(1)
    routed.record_failure(routed.deployments[0], rate_limited(**{"retry-after": "1"}))
    attempts = routed.attempts(max_retries=1, budget=None)
    assert attempts.next(routed.snapshot()).wait > 0
    assert attempts.next(routed.snapshot()).wait > 0  # (the fake clock did not move)
    with pytest.raises(NoDeploymentAvailableError, match="again"):
        attempts.next(routed.snapshot())


@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_max_retries_is_validated(value: Any) -> None:
    with pytest.raises(ValueError, match="max_retries"):
        pool(1).attempts(max_retries=value, budget=None)


# -- call / acall (real sleeping on short cooldowns) -------------------------------------------


class Flaky:
    """``send``: fails with each scripted failure in turn, then answers its deployment's id."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls: list[str] = []

    def __call__(self, deployment: Deployment) -> str:
        self.calls.append(deployment.id)
        if self.errors:
            raise self.errors.pop(0)
        return deployment.id

    async def acall(self, deployment: Deployment) -> str:
        await asyncio.sleep(0)
        return self(deployment)


def test_call_fails_over_and_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="modelreg")
    routed = Pool("chat", members(1, 1), strategy="ordered")
    send = Flaky(TimeoutError())
    assert routed.call(send, max_retries=2, budget=10) == "chat#1"
    assert send.calls == ["chat#0", "chat#1"]
    assert any(
        "chat#0 (region0.example.com/gpt-4o) failed (timeout); attempt 2 goes to chat#1"
        in r.getMessage()
        for r in caplog.records
    )


def test_call_reraises_the_last_error_when_retries_run_out() -> None:
    routed = Pool("chat", members(1, 1), strategy="ordered")
    first, last = TimeoutError("first"), ConnectionError("last")
    with pytest.raises(ConnectionError, match="last"):
        routed.call(Flaky(first, last), max_retries=1, budget=10)
    assert [s.in_flight for s in routed.snapshot()] == [0, 0]  # failed calls are not in flight


def test_no_backoff_after_waiting_for_a_cooldown() -> None:
    clock = FakeClock()
    routed = pool(1, clock=clock)
    (only,) = routed.deployments
    attempts = routed.attempts(max_retries=3, budget=None)
    assert attempts.next(routed.snapshot()) == Step(only, 0.0)
    attempts.failed(only, routed.record_failure(only, Failure.from_response(500)))
    routed.record_failure(only, rate_limited(**{"retry-after": "1"}))  # another call's 429
    step = attempts.next(routed.snapshot())
    assert step.deployment is None and step.wait >= 1
    clock.advance(step.wait)
    assert attempts.next(routed.snapshot()) == Step(only, 0.0)  # the wait was the backoff


def test_call_raises_no_deployment_available_chained_to_the_last_error() -> None:
    routed = Pool(
        "chat",
        members(1),
        strategy="ordered",
        rules=CooldownRules(allowed_fails=0, cooldown_time=30),
    )
    with pytest.raises(NoDeploymentAvailableError) as raised:
        routed.call(Flaky(TimeoutError("slow")), max_retries=3, budget=1)
    assert isinstance(raised.value.__cause__, TimeoutError)


def test_call_does_not_retry_what_is_not_worth_it() -> None:
    routed = Pool("chat", members(1, 1))
    send = Flaky(ValueError("a bug"))
    with pytest.raises(ValueError, match="a bug"):
        routed.call(send, max_retries=3, budget=10)
    assert len(send.calls) == 1


def test_acall_waits_for_the_cooldown_when_all_cool() -> None:
    routed = Pool("chat", members(1), rules=CooldownRules(allowed_fails=0, cooldown_time=0.05))
    send = Flaky(TimeoutError())

    async def main() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        result = await routed.acall(send.acall, max_retries=1, budget=5)
        return result, loop.time() - start

    result, elapsed = asyncio.run(main())
    assert result == "chat#0" and send.calls == ["chat#0", "chat#0"]
    assert elapsed >= 0.05


# -- state safe across threads and tasks ------------------------------------------------------


def test_memory_store_counts_exactly_across_threads() -> None:
    store = MemoryStateStore()
    barrier = threading.Barrier(8)

    def hammer() -> None:
        barrier.wait()
        for _ in range(500):
            store.record_failure("chat", "chat#0", 60)
            store.cool("chat", "chat#1", 10, CooldownKind.FAILING, "x")
            store.cooldowns("chat", ["chat#0", "chat#1"])

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.failures("chat", ["chat#0"]) == [4000]
    assert store.record_failure("chat", "chat#0", 60) == 4001


def test_calls_in_flight_balance_across_threads() -> None:
    routed = Pool("chat", members(1, 1), strategy="least-busy")
    barrier = threading.Barrier(8)
    peak: list[int] = []

    def work() -> None:
        barrier.wait()
        for _ in range(200):
            deployment = routed.pick()
            assert deployment is not None
            with routed.track(deployment):
                peak.append(sum(s.in_flight for s in routed.snapshot()))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [s.in_flight for s in routed.snapshot()] == [0, 0]
    assert max(peak) <= 8


def test_least_busy_spreads_concurrent_tasks_evenly() -> None:
    routed = Pool("chat", members(1, 1, 1), strategy="least-busy", seed=1)
    spread: list[list[int]] = []

    async def send(deployment: Deployment) -> str:
        spread.append([s.in_flight for s in await routed.asnapshot()])
        await asyncio.sleep(0.01)
        return deployment.id

    async def main() -> list[str]:
        return await asyncio.gather(
            *(routed.acall(send, max_retries=0, budget=5) for _ in range(30))
        )

    served = asyncio.run(main())
    assert Counter(served) == {"chat#0": 10, "chat#1": 10, "chat#2": 10}
    assert all(max(s) - min(s) <= 1 for s in spread)
    assert [s.in_flight for s in routed.snapshot()] == [0, 0, 0]


def test_local_stats_latency_is_a_moving_average() -> None:
    clock = FakeClock()
    stats = LocalStats(clock, alpha=0.5)
    stats.succeeded("a", 1.0)
    stats.succeeded("a", 3.0)
    assert stats.views(["a", "b"]) == [(0, 2.0, False), (0, None, False)]


def test_a_deployment_cooled_in_this_call_needs_no_backoff_after_its_cooldown() -> None:
    clock = FakeClock()
    routed = pool(1, 1, clock=clock, strategy="ordered")
    first, second = routed.deployments
    attempts = routed.attempts(max_retries=5, budget=None)
    assert attempts.next(routed.snapshot()).deployment == first
    attempts.failed(first, routed.record_failure(first, rate_limited(**{"retry-after": "1"})))
    assert attempts.next(routed.snapshot()) == Step(second, 0.0)
    attempts.failed(second, routed.record_failure(second, Failure.from_response(500)))
    step = attempts.next(routed.snapshot())  # second again (first is cooling): a backoff
    assert step.deployment == second and step.wait > 0
    attempts.failed(second, routed.record_failure(second, Failure.from_response(500)))
    clock.advance(1.001)
    assert attempts.next(routed.snapshot()) == Step(first, 0.0)


# -- the README's example, run as written -------------------------------------------------------


def test_readme_pool_example_prints_what_it_says(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers import readme_block

    block = readme_block("a pool is built in code", "python")
    exec(block, {})
    printed = capsys.readouterr().out.splitlines()
    promised = [line[2:] for line in block.splitlines() if line.startswith("# chat#")]
    assert printed[1:] == [promised[1], "answered by chat#1"]
    assert printed[0].startswith(promised[0].split("1.5 s")[0])  # the time left moves on
    assert printed[0].endswith("(429, retry-after-ms 1.5 s)")
