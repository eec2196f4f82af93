"""Plugins cannot take each other's names; selection variables and hook mistakes are reported.

Installed plugins are real distributions laid out in temporary site directories (dist-info with
METADATA and entry_points.txt), found by importlib.metadata exactly as pip-installed ones are.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import ConfigError, ModelRegistry, PluginError, PluginWarning, create_model, hookimpl
from registry.cli import main
from registry.plugins import PluginHost, get_plugin_host
from registry.registrations import KINDS, Claim, ImportPath, PluginInfo, Registrations, settle
from registry.testing import use_plugins
from tests.test_plugins import MESSAGES, install_fake_dist

SiteMaker = Callable[[], Path]


@pytest.fixture
def make_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SiteMaker]:
    """Make a new site directory at the front of sys.path (the last made is searched first).

    Modules imported from these directories are forgotten after the test, so that each test
    imports its own plugins (and can tell whether a plugin was imported at all).
    """
    made: list[Path] = []

    def make() -> Path:
        directory = tmp_path / f"site{len(made)}"
        directory.mkdir()
        monkeypatch.syspath_prepend(str(directory))
        made.append(directory)
        return directory

    yield make
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def plugin_source(backend: str, counter: str, provider: str, reply: str) -> str:
    """A plugin module registering one of each kind under the given names."""
    return f"""
        from backends.fake import FakeModel
        from backends.token_counting import ApproximateTokenCounter
        from registry import hookimpl

        class Model(FakeModel):
            pass

        class Provider:
            def sync_client(self, spec):
                return None

        @hookimpl
        def modelreg_register_backends(register):
            register({backend!r}, Model)
            register("own-" + {reply!r}, Model)

        @hookimpl
        def modelreg_register_token_counters(register):
            register({counter!r}, ApproximateTokenCounter)

        @hookimpl
        def modelreg_register_client_providers(register):
            register({provider!r}, Provider())
    """


def two_plugins_claiming(make_site: SiteMaker, *, alpha_first: bool) -> None:
    sites = [make_site(), make_site()]  # the second made is searched first
    alpha, beta = sites if not alpha_first else reversed(sites)
    install_fake_dist(alpha, "alpha-plugin", plugin_source("dup", "dup-words", "dup-rl", "a"))
    install_fake_dist(
        beta, "beta-plugin", plugin_source("dup", "dup-words", "dup-rl", "b"), version="2.5"
    )


# -- 6. no takeover -----------------------------------------------------------------------


@pytest.mark.parametrize("alpha_first", [True, False])
def test_backend_registered_by_two_plugins_is_unavailable(
    make_site: SiteMaker, write_settings: Callable[[str], Path], alpha_first: bool
) -> None:
    two_plugins_claiming(make_site, alpha_first=alpha_first)
    write_settings(
        """
        [models.taken]
        backend = "dup"
        [models.own]
        backend = "own-b"
        [models.ok]
        backend = "fake"
        """
    )
    registry = ModelRegistry.from_settings()
    with pytest.raises(PluginError) as caught:
        registry.create("taken")
    message = str(caught.value)
    assert "model 'taken', field 'backend'" in message
    assert "alpha_plugin (alpha-plugin 1.0) and beta_plugin (beta-plugin 2.5)" in message
    assert "Neither is used" in message
    # Only the contested name is lost: each plugin's other names, and other models, work.
    assert type(registry.create("own")).__name__ == "Model"
    assert registry.create("ok").run(MESSAGES).choices[0].message.content
    plugins = {p.name: p for p in get_plugin_host().plugins()}
    assert any(
        "also registered by beta_plugin (beta-plugin 2.5)" in e
        for e in plugins["alpha_plugin"].errors
    )
    assert any(
        "also registered by alpha_plugin (alpha-plugin 1.0)" in e
        for e in plugins["beta_plugin"].errors
    )
    assert "dup" not in plugins["alpha_plugin"].registered["backends"]
    assert "dup" not in get_plugin_host().names("backends")


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("backend", '"dup"', "backend 'dup' is registered by 2 plugins"),
        ("token_counter", '"dup-words"', "token counter 'dup-words' is registered by 2 plugins"),
        ("client_provider", '"dup-rl"', "client provider 'dup-rl' is registered by 2 plugins"),
    ],
)
def test_check_exits_1_for_models_using_a_contested_name(
    make_site: SiteMaker,
    write_settings: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
    field: str,
    value: str,
    expected: str,
) -> None:
    two_plugins_claiming(make_site, alpha_first=True)
    backend = "" if field == "backend" else 'backend = "fake"\n'
    write_settings(f'[models.m]\n{backend}{field} = {value}\n[models.fine]\nbackend = "fake"\n')
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert f"model 'm', field '{field}'" in out and expected in out
    assert "FAILED" in out and "1 error(s)" in out


def test_plugins_command_shows_the_conflict_on_both(
    make_site: SiteMaker, capsys: pytest.CaptureFixture[str]
) -> None:
    two_plugins_claiming(make_site, alpha_first=True)
    assert main(["plugins"]) == 1
    sections = plugin_sections(capsys.readouterr().out)
    alpha, beta = sections["alpha_plugin"], sections["beta_plugin"]
    for section, other in ((alpha, "beta_plugin (beta-plugin 2.5)"), (beta, "alpha_plugin")):
        for label in ("backend 'dup'", "token counter 'dup-words'", "client provider 'dup-rl'"):
            assert f"ERROR: {label} is also registered by {other}" in section


def plugin_sections(out: str) -> dict[str, str]:
    """``modelreg plugins`` text output, split by plugin (a header line, then indented lines)."""
    sections: dict[str, str] = {}
    for line in out.splitlines():
        if not line.startswith(" "):
            name = line.split(" ", 1)[0]
            sections[name] = ""
        sections[name] += line + "\n"
    return sections


class Claimant:
    """A plugin object registering ``name`` for every kind."""

    def __init__(self, name: str) -> None:
        self.name = name

    @hookimpl
    def modelreg_register_backends(self, register: Callable[[str, Any], None]) -> None:
        from backends.fake import FakeModel

        register(self.name, type("Model", (FakeModel,), {}))

    @hookimpl
    def modelreg_register_token_counters(self, register: Callable[[str, Any], None]) -> None:
        register(self.name, lambda model: None)

    @hookimpl
    def modelreg_register_client_providers(self, register: Callable[[str, Any], None]) -> None:
        register(self.name, self)

    @hookimpl
    def modelreg_register_settings_sources(self, register: Callable[[str, Any], None]) -> None:
        from registry.secret_stores import SettingsSource

        register(self.name, SettingsSource(lambda options: None))

    @hookimpl
    def modelreg_register_capabilities(self, register: Callable[[str, Any], None]) -> None:
        register(self.name, {"context_window": 1000})

    @hookimpl
    def modelreg_register_routing_strategies(self, register: Callable[[str, Any], None]) -> None:
        from registry.routing.strategies import OrderedStrategy

        register(self.name, type("Strategy", (OrderedStrategy,), {}))

    def sync_client(self, spec: Any) -> Any:
        return None


def test_a_plugin_registered_by_hand_cannot_take_an_installed_one_s_name(
    make_site: SiteMaker, write_settings: Callable[[str], Path]
) -> None:
    install_fake_dist(make_site(), "modelreg-sample", SAMPLE, entry="sample")
    get_plugin_host().pm.register(Claimant("sample-backend"), name="by-hand")
    write_settings('[models.m]\nbackend = "sample-backend"\n')
    with pytest.raises(PluginError, match="registered by 2 plugins: by-hand and sample"):
        create_model("m")  # the installed plugins are loaded to find every claimant


class EarlyClaimant(Claimant):
    """The same, asking pluggy to be called first: it gains nothing."""

    @hookimpl(tryfirst=True)
    def modelreg_register_backends(self, register: Callable[[str, Any], None]) -> None:
        super().modelreg_register_backends(register)


@pytest.mark.parametrize("kind", [kind.key for kind in KINDS])
@pytest.mark.parametrize("first", [Claimant, EarlyClaimant])
def test_every_kind_follows_the_rule(kind: str, first: type[Claimant]) -> None:
    with use_plugins(first("same"), Claimant("same"), strict=False) as host:
        with pytest.raises(PluginError, match=r"'same' is registered by 2 plugins: \w+ and \w+"):
            host.lookup(kind, "same")
        assert "same" not in host.names(kind)


def test_every_hook_has_a_kind() -> None:
    """A kind added later (a hookspec) must be in KINDS, so that it gets the same rules."""
    from registry import hookspecs

    hooks = {name for name in dir(hookspecs) if name.startswith("modelreg_")}
    assert hooks == {kind.hook for kind in KINDS}


def test_a_plugin_registering_a_name_twice() -> None:
    from backends.fake import FakeModel

    class Twice:
        @hookimpl
        def modelreg_register_backends(self, register: Callable[[str, Any], None]) -> None:
            register("same-object", FakeModel)
            register("same-object", FakeModel)  # harmless
            register("two-objects", FakeModel)
            register("two-objects", type("Other", (FakeModel,), {}))

    with use_plugins(Twice(), strict=False) as host:
        assert host.lookup("backends", "same-object") is FakeModel
        with pytest.raises(PluginError, match="registers backend 'two-objects' twice"):
            host.lookup("backends", "two-objects")


def test_builtin_name_refused_and_builtin_kept(write_settings: Callable[[str], Path]) -> None:
    class Hijacker:
        @hookimpl
        def modelreg_register_backends(self, register: Callable[[str, Any], None]) -> None:
            from backends.fake import FakeModel

            register("azure", FakeModel)

    write_settings(
        '[models.az]\nbackend = "azure"\ndeployment = "d"\nendpoint = "https://x.example.com"\n'
        'api_version = "2024-10-21"\napi_key = "k"\n'
    )
    refused = r"Hijacker: backend 'azure': refused, the name is built in"
    with pytest.raises(PluginError, match=refused), use_plugins(Hijacker()):
        pass
    with use_plugins(Hijacker(), strict=False):
        assert type(create_model("az")).__name__ == "AzureOpenAIModel"


# -- 9. allow- and block-lists that talk, hook mistakes ------------------------------------


SAMPLE = """
    from backends.fake import FakeModel
    from registry import hookimpl

    @hookimpl
    def modelreg_register_backends(register):
        register("sample-backend", FakeModel)
"""


@pytest.mark.parametrize(
    "variable, value",
    [
        ("MODELREG_DISABLE_PLUGINS", "sample"),
        ("MODELREG_DISABLE_PLUGINS", "modelreg_sample"),  # the distribution, spelt another way
        ("MODELREG_PLUGINS", "other"),
        ("MODELREG_PLUGINS", ""),
    ],
)
def test_filtered_plugin_named_with_its_variable(
    make_site: SiteMaker,
    write_settings: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
) -> None:
    site = make_site()
    install_fake_dist(site, "modelreg-sample", SAMPLE, version="0.3", entry="sample")
    install_fake_dist(site, "other", "")
    write_settings('[models.m]\nbackend = "sample-backend"\n[models.ok]\nbackend = "fake"\n')
    monkeypatch.setenv(variable, value)
    registry = ModelRegistry.from_settings()
    with pytest.raises(PluginError) as caught:
        registry.create("m")
    message = str(caught.value)
    assert "backend 'sample-backend' is not registered" in message
    assert f"sample (modelreg-sample 0.3), kept out by env {variable}" in message
    assert registry.create("ok")
    host = get_plugin_host()
    sample = {p.name: p for p in host.plugins()}["sample"]
    assert sample.disabled_by == f"env {variable}" and sample.errors == []
    assert host.pm.is_blocked("sample")
    assert "modelreg_sample" not in sys.modules
    assert host.pm.register(object(), name="sample") is None  # pluggy refuses it too
    assert main(["plugins"]) == 0
    assert (
        f"sample (modelreg-sample 0.3): disabled, kept out by env {variable}"
        in capsys.readouterr().out
    )


def test_allowed_by_distribution_name(
    make_site: SiteMaker, write_settings: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_site()
    install_fake_dist(site, "modelreg-sample", SAMPLE, entry="sample")
    metadata = site / "modelreg_sample-1.0.dist-info" / "METADATA"
    metadata.write_text(metadata.read_text().replace("modelreg-sample", "ModelReg.Sample"))
    write_settings('[models.m]\nbackend = "sample-backend"\n')
    monkeypatch.setenv("MODELREG_PLUGINS", " modelreg_sample , ")
    assert create_model("m").run(MESSAGES)
    assert {p.name: p for p in get_plugin_host().plugins()}[
        "sample"
    ].distribution == "ModelReg.Sample"


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("MODELREG_PLUGINS", "sampel", "MODELREG_PLUGINS names 'sampel'.*Did you mean 'sample'"),
        (
            "MODELREG_DISABLE_PLUGINS",
            "modelreg-sampel",
            "MODELREG_DISABLE_PLUGINS names 'modelreg-sampel'.*Did you mean 'modelreg-sample'",
        ),
        ("MODELREG_DISABLE_PLUGINS", "backends.builtin", "built-ins cannot be disabled"),
    ],
)
def test_unknown_names_in_the_variables_warn(
    make_site: SiteMaker, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    install_fake_dist(make_site(), "modelreg-sample", SAMPLE, entry="sample")
    monkeypatch.setenv(variable, value)
    with pytest.warns(PluginWarning, match=expected):
        plugins = get_plugin_host().plugins()
    assert "backends.builtin" in {p.name for p in plugins}  # loading completed regardless


def test_warning_as_error_leaves_plugins_loaded(
    make_site: SiteMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_dist(make_site(), "modelreg-sample", SAMPLE, entry="sample")
    monkeypatch.setenv("MODELREG_DISABLE_PLUGINS", "nothing-like-it")
    host = get_plugin_host()
    with pytest.raises(PluginWarning):  # filterwarnings = error, as under python -W error
        host.load_entry_points()
    assert host.lookup("backends", "sample-backend")


def test_known_names_do_not_warn(make_site: SiteMaker, monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_dist(make_site(), "modelreg-sample", SAMPLE, entry="sample")
    monkeypatch.setenv("MODELREG_PLUGINS", "sample")
    monkeypatch.setenv("MODELREG_DISABLE_PLUGINS", "modelreg-sample")
    get_plugin_host().plugins()  # filterwarnings = error: any warning fails this test
    assert get_plugin_host().selection_warnings == []


def test_cli_prints_the_warning_plainly(make_site: SiteMaker) -> None:
    site = make_site()
    install_fake_dist(site, "modelreg-sample", SAMPLE, entry="sample")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELREG_")}
    env |= {"PYTHONPATH": os.pathsep.join([str(site), *sys.path]), "MODELREG_PLUGINS": "sampel"}
    result = subprocess.run(
        [sys.executable, "-m", "registry", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    warning = json.loads(result.stderr)  # --json: the warning is one JSON object on stderr
    assert warning["kind"] == "PluginWarning"
    assert warning["warning"].startswith("MODELREG_PLUGINS names 'sampel'")
    assert "Did you mean 'sample'" in warning["warning"]
    sample = {p["name"]: p for p in json.loads(result.stdout)}["sample"]
    assert sample["disabled_by"] == "env MODELREG_PLUGINS"
    plain = subprocess.run(
        [sys.executable, "-m", "registry", "plugins"], capture_output=True, text=True, env=env
    )
    assert plain.stderr.startswith("modelreg: warning: MODELREG_PLUGINS names 'sampel'")
    assert "Traceback" not in plain.stderr


MISTAKES = """
    from backends.fake import FakeModel
    from registry import hookimpl

    @hookimpl
    def modelreg_register_backend(register):          # misspelt: never called
        register("spelt-wrong", FakeModel)

    def modelreg_register_token_counters(register):   # no @hookimpl: never called
        register("undecorated", FakeModel)

    @hookimpl(wrapper=True)
    def modelreg_register_client_providers(register):  # a wrapper: refused
        return (yield)

    @hookimpl
    def modelreg_register_backends(register):
        register("fine", FakeModel)
"""


def test_hook_mistakes_are_plugin_errors(
    make_site: SiteMaker, write_settings: Callable[[str], Path], capsys: pytest.CaptureFixture[str]
) -> None:
    install_fake_dist(make_site(), "sloppy-hooks", MISTAKES, version="0.9")
    write_settings('[models.m]\nbackend = "spelt-wrong"\n[models.fine]\nbackend = "fine"\n')
    assert create_model("fine").run(MESSAGES)  # the correct hook still works
    with pytest.raises(PluginError) as caught:
        create_model("m")
    assert "sloppy_hooks (sloppy-hooks 0.9): unknown hook 'modelreg_register_backend'" in str(
        caught.value
    )
    errors = {p.name: p for p in get_plugin_host().plugins()}["sloppy_hooks"].errors
    assert any("Did you mean 'modelreg_register_backends'" in e for e in errors)
    assert any(
        "modelreg_register_token_counters is not decorated with @registry.hookimpl" in e
        for e in errors
    )
    assert any("modelreg_register_client_providers is a hook wrapper" in e for e in errors)
    assert main(["plugins"]) == 1
    out = capsys.readouterr().out
    assert out.count("ERROR:") == 3 and "backends: fine" in out


def test_a_hook_that_takes_no_argument_is_called() -> None:
    class Quiet:
        called = False

        @hookimpl
        def modelreg_register_backends(self) -> None:
            Quiet.called = True

    with use_plugins(Quiet()):
        pass
    assert Quiet.called


def test_a_name_that_is_not_a_string() -> None:
    class Numbered:
        @hookimpl
        def modelreg_register_backends(self, register: Callable[[Any, Any], None]) -> None:
            register(3, object)

    not_a_name = "backend 3: a name must be a non-empty string"
    with pytest.raises(PluginError, match=not_a_name), use_plugins(Numbered()):
        pass


# -- 10. typed hookspecs --------------------------------------------------------------------


def test_hookspecs_name_the_real_types() -> None:
    from backends.base import BaseModelBackend
    from backends.token_counting import BaseTokenCounter
    from registry import hookspecs
    from registry.routing.strategies import RoutingStrategy, RoutingStrategyFactory
    from registry.secret_stores import SettingsSource
    from registry.spec import ModelSpec

    names = {"BaseModelBackend": BaseModelBackend, "BaseTokenCounter": BaseTokenCounter}
    names |= {"ModelSpec": ModelSpec, "SettingsSource": SettingsSource}
    names |= {"RoutingStrategyFactory": RoutingStrategyFactory}
    hints = {
        kind.hook: typing.get_type_hints(getattr(hookspecs, kind.hook), localns=names)["register"]
        for kind in KINDS
    }
    assert hints["modelreg_register_backends"] == Callable[[str, type[BaseModelBackend]], None]
    assert (
        hints["modelreg_register_token_counters"]
        == Callable[[str, Callable[[str], BaseTokenCounter]], None]
    )
    provider = typing.get_args(hints["modelreg_register_client_providers"])[0][1]
    assert set(typing.get_args(provider)) == {
        hookspecs.SyncClientProvider,
        hookspecs.AsyncClientProvider,
    }
    assert hints["modelreg_register_settings_sources"] == Callable[[str, SettingsSource], None]
    assert (
        hints["modelreg_register_routing_strategies"]
        == Callable[[str, Callable[[], RoutingStrategy]], None]
    )
    spec_type = typing.get_type_hints(hookspecs.SyncClientProvider.sync_client, localns=names)
    assert spec_type["spec"] is ModelSpec


# -- 11. registry.testing -----------------------------------------------------------------


def test_use_plugins_keeps_installed_plugins_out(
    make_site: SiteMaker, write_settings: Callable[[str], Path]
) -> None:
    install_fake_dist(make_site(), "modelreg-sample", SAMPLE, entry="sample")
    outer = get_plugin_host()
    outer.plugins()  # the installed plugin is loaded in the process-wide host
    write_settings('[models.m]\nbackend = "sample-backend"\n[models.c]\nbackend = "same"\n')
    assert create_model("m")
    with use_plugins(Claimant("same")) as host:
        assert get_plugin_host() is host and isinstance(host, PluginHost)
        assert type(create_model("c")).__name__ == "Model"
        with pytest.raises(ConfigError, match=r"field 'backend'.*not a registered backend"):
            create_model("m")
    assert get_plugin_host() is outer
    assert create_model("m")


def test_use_plugins_with_entry_points(
    make_site: SiteMaker, write_settings: Callable[[str], Path]
) -> None:
    install_fake_dist(make_site(), "modelreg-sample", SAMPLE, entry="sample")
    write_settings('[models.m]\nbackend = "sample-backend"\n')
    with use_plugins(Claimant("same"), entry_points=True):
        assert create_model("m")
    expected = r"Claimant: backend 'sample-backend' is also registered by sample \(modelreg-sample"
    with (
        pytest.raises(PluginError, match=expected),
        use_plugins(Claimant("sample-backend"), entry_points=True),
    ):
        pass


def test_use_plugins_restores_the_host_after_an_error() -> None:
    outer = get_plugin_host()
    with pytest.raises(RuntimeError), use_plugins(Claimant("x")):
        raise RuntimeError("test failed inside")
    assert get_plugin_host() is outer


def _settled_paths(*claims: tuple[str, Any, bool]) -> Registrations:
    """Backend claims (name, object, by a built-in) of plugins ``builtin`` and ``third``."""
    plugins = {
        "builtin": PluginInfo("builtin", builtin=True),
        "third": PluginInfo("third", builtin=False),
    }
    return settle(
        plugins,
        [
            Claim("backends", name, obj, "builtin" if builtin else "third")
            for name, obj, builtin in claims
        ],
    )


def test_a_builtin_named_by_path_is_imported_and_validated_on_first_lookup(
    make_site: SiteMaker,
) -> None:
    """The name is claimed (and listed) at once; the module is imported when it is looked up."""
    (make_site() / "lazy_backend_mod.py").write_text(
        "from backends.fake import FakeModel\nclass Lazy(FakeModel):\n    pass\n"
    )
    registrations = _settled_paths(("lazy", ImportPath("lazy_backend_mod", "Lazy"), True))
    assert registrations.plugins[0].registered["backends"] == ["lazy"]
    assert registrations.names("backends") == ["lazy"]
    assert "lazy_backend_mod" not in sys.modules
    assert registrations.get("backends", "lazy", load=False).module == "lazy_backend_mod"
    assert "lazy_backend_mod" not in sys.modules
    cls = registrations.get("backends", "lazy")
    assert cls is sys.modules["lazy_backend_mod"].Lazy
    assert registrations.registered_as("backends", cls) == ("lazy", registrations.plugins[0])
    assert registrations.loaded("backends") == {"lazy": cls}


def test_a_builtin_path_to_an_invalid_object_fails_its_lookup_only() -> None:
    registrations = _settled_paths(
        ("broken", ImportPath("registry.errors", "PluginError"), True),
        ("fine", ImportPath("backends.fake", "FakeModel"), True),
    )
    with pytest.raises(PluginError, match=r"built-in backend 'broken'.*not a backend class"):
        registrations.get("backends", "broken")
    assert registrations.get("backends", "fine").__name__ == "FakeModel"


def test_a_plugin_cannot_register_an_import_path() -> None:
    """Only built-ins defer validation: a plugin's path is checked as the object it is."""
    registrations = _settled_paths(("mine", ImportPath("backends.fake", "FakeModel"), False))
    with pytest.raises(PluginError, match=r"invalid backend 'mine'.*is not a backend class"):
        registrations.get("backends", "mine")
    assert registrations.registered_as("backends", object()) is None


def test_a_plugin_cannot_take_a_builtin_name_registered_by_path() -> None:
    from backends.fake import FakeModel

    class Mine(FakeModel):
        pass

    registrations = _settled_paths(
        ("fake", ImportPath("backends.fake", "FakeModel"), True), ("fake", Mine, False)
    )
    assert registrations.get("backends", "fake") is FakeModel
    assert "refused, the name is built in" in registrations.plugins[1].errors[0]


def test_one_path_registered_twice_is_one_object_and_two_paths_clash() -> None:
    """As with objects: the same path twice is one registration, two paths a conflict."""
    same = _settled_paths(
        ("fake", ImportPath("backends.fake", "FakeModel"), True),
        ("fake", ImportPath("backends.fake", "FakeModel"), True),
    )
    assert same.get("backends", "fake").__name__ == "FakeModel"
    two = _settled_paths(
        ("fake", ImportPath("backends.fake", "FakeModel"), True),
        ("fake", ImportPath("backends.azure", "AzureOpenAIModel"), True),
    )
    with pytest.raises(PluginError, match="registers backend 'fake' twice"):
        two.get("backends", "fake")
