"""The fake backend's fault script: every entry on every request path, order, exhaustion,
threads, validation, and what a pool makes of each fault (classification and failover)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from backends.fake import FakeFault, FakeModel, FakeSettings
from backends.fake_faults import FaultScript
from registry import BackendError, ConfigError, create_model
from registry.routing import (
    CooldownKind,
    CooldownRules,
    Deployment,
    ErrorKind,
    Failure,
    Pool,
    classify,
    failure_from_exception,
)
from tests.helpers import modelreg, readme_block

MESSAGES = [{"role": "user", "content": "Hello"}]
SHAPES = ("plain", "stream", "parse", "stream-parse")


class Answer(BaseModel):
    text: str


#: entry -> (status_code, code, headers, kind) of the FakeFault it raises.
FAULTS: dict[str, tuple[int | None, str | None, dict[str, str], ErrorKind]] = {
    "429": (429, None, {}, ErrorKind.STATUS),
    "429 retry-after=2": (429, None, {"retry-after": "2"}, ErrorKind.STATUS),
    "429 retry-after-ms=1500": (429, None, {"retry-after-ms": "1500"}, ErrorKind.STATUS),
    "429 insufficient_quota": (429, "insufficient_quota", {}, ErrorKind.STATUS),
    "500": (500, None, {}, ErrorKind.STATUS),
    "503 retry-after=1": (503, None, {"retry-after": "1"}, ErrorKind.STATUS),
    "401": (401, None, {}, ErrorKind.STATUS),
    "403": (403, None, {}, ErrorKind.STATUS),
    "404": (404, None, {}, ErrorKind.STATUS),
    "408": (408, None, {}, ErrorKind.STATUS),
    "400 content_filter": (400, "content_filter", {}, ErrorKind.STATUS),
    "400 context_length_exceeded": (400, "context_length_exceeded", {}, ErrorKind.STATUS),
    "timeout": (None, None, {}, ErrorKind.TIMEOUT),
    "connection": (None, None, {}, ErrorKind.CONNECTION),
    "cut": (None, None, {}, ErrorKind.CONNECTION),
}


def _kwargs(shape: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"stream": shape in ("stream", "stream-parse")}
    if "parse" in shape:
        kwargs["response_format"] = Answer
    return kwargs


def _content(final: Any) -> str:
    return str(final.choices[0].message.content)


def _text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks)


def _call(model: FakeModel, shape: str, seen: list[Any]) -> str:
    """One call on ``shape``, consumed to its end; chunks go to ``seen`` as they arrive."""
    result = model.run(MESSAGES, **_kwargs(shape))
    if shape == "stream":
        for chunk in result:
            seen.append(chunk)
        return _text(seen)
    if shape == "stream-parse":
        with result as stream:
            for chunk in stream:
                seen.append(chunk)
            return _content(stream.get_final_completion())
    return _content(result)


async def _acall(model: FakeModel, shape: str, seen: list[Any]) -> str:
    result = await model.arun(MESSAGES, **_kwargs(shape))
    if shape == "stream":
        async for chunk in result:
            seen.append(chunk)
        return _text(seen)
    if shape == "stream-parse":
        async with result as stream:
            async for chunk in stream:
                seen.append(chunk)
            return _content(await stream.get_final_completion())
    return _content(result)


def call(model: FakeModel, shape: str, is_async: bool, seen: list[Any] | None = None) -> str:
    seen = [] if seen is None else seen
    if is_async:
        return asyncio.run(_acall(model, shape, seen))
    return _call(model, shape, seen)


def normal_answer(shape: str) -> str:
    return '{"text":"fake"}' if "parse" in shape else "fake reply to: Hello"


# -- every entry, every path ------------------------------------------------------------------


@pytest.mark.parametrize("is_async", [False, True], ids=["run", "arun"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("entry", list(FAULTS))
def test_each_fault_on_each_path(entry: str, shape: str, is_async: bool) -> None:
    status, code, headers, kind = FAULTS[entry]
    model = FakeModel(faults=[entry], name="chat")
    seen: list[Any] = []
    with pytest.raises(FakeFault) as caught:
        call(model, shape, is_async, seen)
    fault = caught.value
    assert isinstance(fault, BackendError)
    assert (fault.status_code, fault.code, fault.headers) == (status, code, headers)
    assert fault.routing_failure.kind is kind and fault.fault == entry
    assert str(fault).startswith("model 'chat': scripted fault 1 of 1 (faults[0] = ")
    assert repr(entry) in str(fault)
    streamed = shape in ("stream", "stream-parse")
    # a cut stream delivers its first chunk, then breaks; every other fault delivers nothing
    assert len(seen) == (1 if entry == "cut" and streamed else 0)
    if seen:
        assert seen[0].choices[0].delta.role == "assistant"
        assert seen[0].choices[0].finish_reason is None
    assert len(model.calls) == 1  # the attempt is recorded
    # the script is used up: the next call answers
    assert call(model, shape, is_async) == normal_answer(shape)


@pytest.mark.parametrize("is_async", [False, True], ids=["run", "arun"])
@pytest.mark.parametrize("shape", SHAPES)
def test_ok_answers(shape: str, is_async: bool) -> None:
    model = FakeModel(faults=["ok", "OK"], name="chat")
    assert call(model, shape, is_async) == normal_answer(shape)
    assert model.faults_left == 1
    assert call(model, shape, is_async) == normal_answer(shape)
    assert model.faults_left == 0


def test_script_order_then_normal_answers_and_replies_untouched_by_faults() -> None:
    model = FakeModel(replies=["a", "b"], faults=["500", "ok", "timeout"], name="chat")
    outcomes = []
    for _ in range(5):
        try:
            outcomes.append(call(model, "plain", False))
        except FakeFault as fault:
            outcomes.append(fault.fault)
    # a faulted call takes no reply: the replies go on where they were
    assert outcomes == ["500", "a", "timeout", "b", "a"]
    assert model.faults_left == 0 and len(model.calls) == 5


def test_cut_stream_takes_its_reply() -> None:
    model = FakeModel(replies=["first reply", "second"], faults=["cut"], name="chat")
    seen: list[Any] = []
    with pytest.raises(FakeFault):
        call(model, "stream", False, seen)
    assert _text(seen) == "first re"  # one chunk of eight characters
    assert call(model, "stream", False) == "second"


@pytest.mark.parametrize("is_async", [False, True], ids=["run", "arun"])
def test_cut_parsed_stream_has_no_final_completion(is_async: bool) -> None:
    model = FakeModel(faults=["cut"], name="chat")

    async def final_async() -> Any:
        async with await model.arun(MESSAGES, response_format=Answer, stream=True) as stream:
            return await stream.get_final_completion()

    def final_sync() -> Any:
        with model.run(MESSAGES, response_format=Answer, stream=True) as stream:
            return stream.get_final_completion()

    with pytest.raises(FakeFault, match="cut"):
        asyncio.run(final_async()) if is_async else final_sync()


def test_request_refused_before_sending_consumes_no_fault() -> None:
    model = FakeModel(faults=["429"], name="chat")
    with pytest.raises(ConfigError):
        model.run(MESSAGES, temperature=5)  # out of the API's range
    # refused by the base model's rules, as a real backend refuses it before sending
    reasoning = FakeModel("o3-mini", base_model="o3-mini", faults=["429"], name="r")
    with pytest.raises(ConfigError, match="does not accept 'temperature'"):
        reasoning.run(MESSAGES, temperature=0.5)
    assert model.faults_left == reasoning.faults_left == 1
    assert model.calls == reasoning.calls == []
    with pytest.raises(FakeFault):  # the fault waits for a request that is sent
        reasoning.run(MESSAGES)


def run_threads(worker: Callable[[int], None], count: int = 8) -> None:
    """``worker(i)`` in ``count`` threads at once, switching as often as possible: races show."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)


def test_threads_consume_exactly_the_script() -> None:
    script = [f"503 retry-after={i}" if i % 3 else "ok" for i in range(300)]
    model = FakeModel(faults=script, name="chat")
    raised: list[str] = []
    answered: list[str] = []
    lock = threading.Lock()

    def worker(_: int) -> None:
        for _ in range(50):
            try:
                reply = call(model, "plain", False)
            except FakeFault as fault:
                with lock:
                    raised.append(fault.headers["retry-after"])
            else:
                with lock:
                    answered.append(reply)

    run_threads(worker)
    # each fault raised exactly once; every other call (ok entries, then the rest) answered
    assert sorted(raised, key=int) == [str(i) for i in range(300) if i % 3]
    assert len(answered) == 400 - len(raised)
    assert model.faults_left == 0


def test_script_taken_by_many_threads_yields_each_entry_once() -> None:
    """The script itself, hammered: many more takes than calls through run() could make."""
    total = 40_000
    script = FaultScript("chat", ["500"] * total)
    taken = [0] * 8

    def worker(index: int) -> None:
        while script.take() is not None:
            taken[index] += 1

    run_threads(worker, len(taken))
    assert sum(taken) == total and script.left == 0


# -- validation ---------------------------------------------------------------------------------


BAD = {
    "42": "a status must be 400-599",
    "200": "a status must be 400-599",
    "600": "a status must be 400-599",
    "429 retry-after=abc": "retry-after must be a number of seconds >= 0",
    "429 retry-after=-1": "retry-after must be a number of seconds >= 0",
    "429 retry-after=nan": "retry-after must be a number of seconds >= 0",
    "429 retry-after-ms=inf": "retry-after-ms must be a number of milliseconds >= 0",
    "429 x-ratelimit-reset-tokens=soon": "x-ratelimit-reset-tokens must be a duration",
    "429 retry-after=1 retry-after=2": "the header retry-after is given twice",
    "429 x-api-key=1": "a status qualifier's header is one of retry-after-ms",
    "429 content_filter insufficient_quota": "a status takes at most one error code",
    "400 !": "a status takes at most one error code",
    "oops": 'is not a fault; accepted: "ok", "timeout"',
    "": "is empty",
    "ok 429": "ok takes no qualifiers",
    "timeout 5": "timeout takes no qualifiers",
    "cut now": "cut takes no qualifiers",
}


@pytest.mark.parametrize("entry", list(BAD))
def test_bad_entry_in_settings(write_settings: Callable[[str], Path], entry: str) -> None:
    write_settings(f'[models.chat]\nbackend = "fake"\nfaults = ["ok", "{entry}"]\n')
    with pytest.raises(ConfigError) as caught:
        create_model("chat")
    message = str(caught.value)
    assert message.startswith(
        "model 'chat', field 'faults.1' (settings.toml [models.chat]): " + BAD[entry]
    )
    assert "faults.0" not in message


def test_non_string_entry(write_settings: Callable[[str], Path]) -> None:
    write_settings('[models.chat]\nbackend = "fake"\nfaults = [429, "ok", true]\n')
    with pytest.raises(ConfigError) as caught:
        create_model("chat")
    assert str(caught.value) == (
        "model 'chat', field 'faults.0' (settings.toml [models.chat]): must be a string such as "
        "\"429\" or \"ok\", not int; model 'chat', field 'faults.2' (settings.toml "
        '[models.chat]): must be a string such as "429" or "ok", not bool'
    )


@pytest.mark.parametrize(
    "entry", ["sk-proj-SECRETVALUE", "429 SECRETVALUE=1", "429 retry-after=SECRETVALUE"]
)
def test_messages_never_echo_the_entry(entry: str) -> None:
    with pytest.raises(ConfigError) as caught:
        FakeModel(faults=[entry], name="chat")
    assert str(caught.value).startswith("model 'chat', field 'faults.0': ")
    assert "secretvalue" not in str(caught.value).lower()


def test_constructor_names_every_bad_entry() -> None:
    with pytest.raises(ConfigError) as caught:
        FakeModel(faults=["ok", "42", 7, "cut"], name="m")
    message = str(caught.value)
    assert "field 'faults.1': a status must be 400-599" in message
    assert "field 'faults.2': must be a string" in message
    assert "faults.0" not in message and "faults.3" not in message


def test_entries_are_case_insensitive_and_normalised() -> None:
    settings = FakeSettings.model_validate(
        {"faults": ["OK", "  429   Retry-After=2 ", "400 Content_Filter", "Cut"]}
    )
    assert settings.faults == ["ok", "429 retry-after=2", "400 content_filter", "cut"]
    model = FakeModel(faults=["400 Content_Filter"], name="chat")
    with pytest.raises(FakeFault) as caught:
        model.run(MESSAGES)
    assert caught.value.code == "content_filter"


# -- what a pool makes of each fault ------------------------------------------------------------


def _fault(entry: str) -> FakeFault:
    with pytest.raises(FakeFault) as caught:
        FakeModel(faults=[entry], name="chat").run(MESSAGES)
    return caught.value


@pytest.mark.parametrize(
    ("entry", "failure"),
    [
        ("429 retry-after=2", Failure.from_response(429, {"Retry-After": "2"})),
        ("503 retry-after-ms=1500", Failure.from_response(503, {"retry-after-ms": "1500"})),
        ("400 content_filter", Failure.from_response(400, code="content_filter")),
        ("404", Failure.from_response(404)),
        ("timeout", Failure(ErrorKind.TIMEOUT)),
        ("connection", Failure(ErrorKind.CONNECTION)),
        ("cut", Failure(ErrorKind.CONNECTION)),
    ],
)
def test_failure_from_exception_reads_the_fault(entry: str, failure: Failure) -> None:
    assert failure_from_exception(_fault(entry)) == failure


RULES = CooldownRules()


@pytest.mark.parametrize(
    ("entry", "retry", "cooldown", "kind", "counts", "reason"),
    [
        ("429 retry-after=2", True, 2.0, CooldownKind.RATE_LIMITED, False, "retry-after 2 s"),
        ("429 retry-after-ms=1500", True, 1.5, CooldownKind.RATE_LIMITED, False, "1.5 s"),
        (
            "429 x-ratelimit-reset-requests=6m0s x-ratelimit-remaining-requests=0",
            True,
            360.0,
            CooldownKind.RATE_LIMITED,
            False,
            "x-ratelimit-reset-requests",
        ),
        ("429", True, RULES.cooldown_time, CooldownKind.RATE_LIMITED, False, "cooldown_time"),
        ("429 insufficient_quota", True, 60.0, CooldownKind.MISCONFIGURED, False, "quota"),
        ("500", True, None, None, True, "500"),
        ("503 retry-after=1", True, 1.0, CooldownKind.UNAVAILABLE, True, "retry-after"),
        ("408", True, None, None, True, "408"),
        ("401", True, 60.0, CooldownKind.MISCONFIGURED, False, "401"),
        ("403", True, 60.0, CooldownKind.MISCONFIGURED, False, "403"),
        ("404", True, 60.0, CooldownKind.MISCONFIGURED, False, "404"),
        ("400 content_filter", False, None, None, False, "400, content filter"),
        ("400 context_length_exceeded", False, None, None, False, "the request's fault"),
        ("timeout", True, None, None, True, "timeout"),
        ("connection", True, None, None, True, "connection error"),
        ("cut", True, None, None, True, "connection error"),
    ],
)
def test_classify_gives_the_servers_verdict(
    entry: str,
    retry: bool,
    cooldown: float | None,
    kind: CooldownKind | None,
    counts: bool,
    reason: str,
) -> None:
    verdict = classify(failure_from_exception(_fault(entry)), RULES)
    assert (verdict.retry, verdict.cooldown, verdict.kind, verdict.counts) == (
        retry,
        cooldown,
        kind,
        counts,
    )
    assert reason in verdict.reason


class PluginFailure(Exception):
    """A plugin backend's own exception, declaring what it means to a pool."""

    def __init__(self, routing_failure: object) -> None:
        super().__init__("plugin failure")
        self.routing_failure = routing_failure


def test_routing_failure_hook_for_any_exception() -> None:
    declared = Failure.from_response(429, {"retry-after": "3"})
    assert failure_from_exception(PluginFailure(declared)) is declared
    # an attribute that is not a Failure is ignored: the exception's type decides
    assert failure_from_exception(PluginFailure("429")) == Failure(ErrorKind.OTHER)

    class Timeout(TimeoutError):
        routing_failure = "not a Failure"

    assert failure_from_exception(Timeout()) == Failure(ErrorKind.TIMEOUT)


# -- a pool of two fake deployments --------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def two_deployments(
    clock: Clock, faults: list[str], rules: CooldownRules | None = None
) -> tuple[Pool, dict[str, FakeModel]]:
    models = {
        "chat#0": FakeModel(reply="from eastus", faults=faults, name="chat#0"),
        "chat#1": FakeModel(reply="from swedencentral", name="chat#1"),
    }
    deployments = [Deployment("chat#0", "eastus/gpt-4o"), Deployment("chat#1", "sweden/gpt-4o")]
    pool = Pool("chat", deployments, strategy="ordered", rules=rules, clock=clock)
    return pool, models


def _send(models: dict[str, FakeModel]) -> Callable[[Deployment], str]:
    def send(deployment: Deployment) -> str:
        return _content(models[deployment.id].run(MESSAGES))

    return send


def test_pool_fails_over_from_a_scripted_429(clock: Clock) -> None:
    pool, models = two_deployments(clock, ["429 retry-after=2", "ok"])
    send = _send(models)
    assert pool.call(send, max_retries=2, budget=30.0) == "from swedencentral"
    eastus = pool.snapshot()[0]
    assert eastus.cooldown is not None and eastus.cooldown.kind is CooldownKind.RATE_LIMITED
    assert eastus.cooldown.remaining == 2.0
    # while eastus cools, calls go to swedencentral without touching eastus's script
    assert pool.call(send, max_retries=2, budget=30.0) == "from swedencentral"
    assert models["chat#0"].faults_left == 1 and len(models["chat#0"].calls) == 1
    clock.now += 2.5  # the cooldown is over: the ordered pool goes back to eastus, which is ok
    assert pool.call(send, max_retries=2, budget=30.0) == "from eastus"
    assert [len(m.calls) for m in models.values()] == [2, 2]


def test_pool_fails_over_in_async_code(clock: Clock) -> None:
    pool, models = two_deployments(clock, ["timeout"])

    async def send(deployment: Deployment) -> str:
        return _content(await models[deployment.id].arun(MESSAGES))

    assert asyncio.run(pool.acall(send, max_retries=1, budget=30.0)) == "from swedencentral"
    assert asyncio.run(pool.asnapshot(failures=True))[0].failures == 1


def test_pool_does_not_retry_a_content_filter(clock: Clock) -> None:
    pool, models = two_deployments(clock, ["400 content_filter"])
    with pytest.raises(FakeFault) as caught:
        pool.call(_send(models), max_retries=3, budget=30.0)
    assert caught.value.code == "content_filter"
    assert models["chat#1"].calls == [] and pool.snapshot()[0].cooldown is None


def test_pool_cools_a_deployment_past_allowed_fails(clock: Clock) -> None:
    rules = CooldownRules(allowed_fails=1)
    pool, models = two_deployments(clock, ["500", "500"], rules)
    send = _send(models)
    assert pool.call(send, max_retries=1, budget=30.0) == "from swedencentral"
    assert pool.snapshot()[0].cooldown is None  # one failure is allowed
    assert pool.call(send, max_retries=1, budget=30.0) == "from swedencentral"
    cooldown = pool.snapshot()[0].cooldown
    assert cooldown is not None and cooldown.kind is CooldownKind.FAILING


def test_pool_marks_a_scripted_401_misconfigured(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    pool, models = two_deployments(clock, ["401"])
    with caplog.at_level("WARNING", logger="modelreg.routing"):
        assert pool.call(_send(models), max_retries=1, budget=30.0) == "from swedencentral"
    assert pool.snapshot()[0].misconfigured
    assert "answered 401: it looks misconfigured" in caplog.text


# -- the README ---------------------------------------------------------------------------------


def test_readme_fake_model_with_faults(isolated: Path) -> None:
    (isolated / "settings.toml").write_text(readme_block("**Scripted faults.**", "toml"))
    namespace: dict[str, Any] = {}
    exec(readme_block("**Scripted faults.**", "python"), namespace)
    assert namespace["status"] == 429 and namespace["answer"] == "Hello from the fake."


def test_readme_pool_of_fake_deployments_fails_over(isolated: Path) -> None:
    settings = readme_block("A pool of two fake deployments", "toml")
    (isolated / "settings.toml").write_text(settings)
    shown = modelreg("--json", "show", "chat")
    assert shown.returncode == 0, shown.stderr
    fields = json.loads(shown.stdout)["fields"]
    scripts = {k: v["value"] for k, v in fields.items() if k.endswith(".faults")}
    assert scripts == {
        "deployments.1.faults": ["429 retry-after=2", "ok"],
        "deployments.2.faults": [],
    }
    check = modelreg("check")
    assert check.returncode == 0, check.stdout + check.stderr
    code = readme_block("each deployment has its own script", "python")
    printed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=isolated, timeout=60
    )
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines() == ["from swedencentral", "deployment #2 after 2"]
    routes = modelreg("routes", "chat")
    assert "deployment #1" in routes.stdout and "deployment #2" in routes.stdout
