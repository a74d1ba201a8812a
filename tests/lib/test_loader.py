"""Discovery: built-ins, entry points and plugin paths, merged in order, failures isolated."""

from __future__ import annotations

import importlib
import logging
import os
import platform
import sys
from pathlib import Path

import pytest

from dwellir_harvester.lib import (
    CollectorSpec,
    PluginPathError,
    Registry,
    UnknownCollectorError,
    harvest,
    load_collectors,
)

BUILTIN_NULL = "builtin:dwellir_harvester.collectors.null"
BUILTIN_HOST = "builtin:dwellir_harvester.collectors.host"
EXAMPLE_DIST = "dwellir-harvester-example-plugin"
RUNNER = "dwellir-harvester"  # the distribution whose entry points are the built-ins
EXAMPLE_SOURCE = f"entry-point:{EXAMPLE_DIST}[python-runtime]"


def plugins_only(*paths: Path) -> Registry:
    return load_collectors(paths, entry_points=False)


def messages(caplog: pytest.LogCaptureFixture, *needles: str) -> list[str]:
    """The captured log messages that contain every needle."""
    return [r.getMessage() for r in caplog.records if all(n in r.getMessage() for n in needles)]


def data_of(collectors: Registry, name: str) -> dict:
    return harvest([name], registry=collectors)["collectors"][name]["data"]


# --- built-ins and entry points ------------------------------------------------------------------


def test_builtins_are_found_with_their_source():
    collectors = load_collectors(builtin_distribution=RUNNER)

    assert {"host", "null"} <= set(collectors)
    null = collectors.specs["null"]
    assert isinstance(null, CollectorSpec)
    assert (null.namespace, null.source, null.overrides) == ("builtin", BUILTIN_NULL, ())
    assert collectors.specs["host"].source == BUILTIN_HOST
    assert collectors.resolve("builtin::null") is null
    assert collectors.problems == []


def test_the_installed_plugin_package_is_found_through_its_entry_point():
    collectors = load_collectors(builtin_distribution=RUNNER)

    spec = collectors.specs["python-runtime"]
    assert spec.namespace == EXAMPLE_DIST
    assert spec.source == EXAMPLE_SOURCE
    assert spec.cls.__name__ == "PythonRuntimeCollector"
    assert collectors.resolve(f"{EXAMPLE_DIST}::python-runtime") is spec
    assert collectors.resolve(f"{EXAMPLE_SOURCE}::python-runtime") is spec


def test_entry_points_may_name_a_class_or_a_module(make_dist, source):
    make_dist(
        "my-dist",
        {"peers": "ep_classes:PeersCollector", "bundle": "ep_bundle"},
        ep_classes=source("peers"),
        ep_bundle=source("alpha", extra="from dwellir_harvester.collectors.null import NullCollector")
        + source("beta", cls="Beta"),
    )
    collectors = load_collectors(builtin_distribution=RUNNER)

    peers = collectors.specs["peers"]
    assert (peers.namespace, peers.source) == ("my-dist", "entry-point:my-dist[peers]")
    for name in ("alpha", "beta"):
        assert collectors.specs[name].source == "entry-point:my-dist[bundle]"
        assert collectors.resolve(f"my-dist::{name}").name == name
    assert collectors.specs["null"].source == BUILTIN_NULL  # the module merely imports it
    assert collectors.problems == []
    assert data_of(collectors, "my-dist::peers") == {"ok": True}


def test_a_broken_entry_point_is_a_problem_not_a_crash(make_dist, source, caplog):
    make_dist(
        "my-dist",
        {"broken": "ep_missing_module:Nope", "helper": "ep_mod:helper", "fine": "ep_mod:FineCollector"},
        ep_mod=source("fine", extra="def helper():\n    return 1\n"),
    )
    collectors = load_collectors(builtin_distribution=RUNNER)

    assert "fine" in collectors
    problems = {p.where: p.message for p in collectors.problems}
    broken = next(where for where in problems if where.startswith("entry-point:my-dist[broken]"))
    assert "ep_missing_module:Nope" in broken
    assert problems[broken].startswith("ModuleNotFoundError: ")
    assert "neither a collector class nor a module" in problems["entry-point:my-dist[helper]"]
    assert len(messages(caplog, "entry-point:my-dist[broken]")) == 1
    assert len(messages(caplog, "entry-point:my-dist[helper]")) == 1


def test_an_entry_point_overrides_a_builtin_and_the_builtin_stays_reachable(make_dist, source, caplog):
    make_dist("my-dist", {"null": "ep_null:LoudNull"}, ep_null=source("null", 'return {"loud": True}', cls="LoudNull"))
    collectors = load_collectors(builtin_distribution=RUNNER)

    winner = collectors.specs["null"]
    assert winner.source == "entry-point:my-dist[null]"
    assert winner.overrides == (BUILTIN_NULL,)
    assert collectors.resolve("builtin::null").source == BUILTIN_NULL
    assert "builtin::null" in collectors.available()
    [warning] = messages(caplog, "overrides")
    assert "entry-point:my-dist[null]" in warning and BUILTIN_NULL in warning and "builtin::null" in warning
    assert data_of(collectors, "null") == {"loud": True}
    assert data_of(collectors, "builtin::null")["foo"] == "bar"


# --- plugin paths: order and collisions ----------------------------------------------------------


def test_a_plugin_overrides_a_builtin_naming_both_origins(plugin_dir, source, caplog):
    directory = plugin_dir(**{"mynull.py": source("null", 'return {"mine": 1}')})
    collectors = load_collectors([directory], builtin_distribution=RUNNER)

    winner = collectors.specs["null"]
    assert winner.source == f"path:{directory / 'mynull.py'}"
    assert winner.namespace == "plugins"
    assert winner.overrides == (BUILTIN_NULL,)
    [warning] = messages(caplog, "overrides")
    assert winner.source in warning and BUILTIN_NULL in warning
    assert caplog.records[0].levelno == logging.WARNING
    assert collectors.resolve("builtin::null").source == BUILTIN_NULL
    assert collectors.resolve("plugins::null") is winner


def test_a_plugin_overrides_an_entry_point_which_stays_reachable(plugin_dir, source, caplog):
    directory = plugin_dir(**{"runtime.py": source("python-runtime", 'return {"plugin": True}')})
    collectors = load_collectors([directory], builtin_distribution=RUNNER)

    assert collectors.specs["python-runtime"].overrides == (EXAMPLE_SOURCE,)
    [warning] = messages(caplog, "overrides")
    assert EXAMPLE_SOURCE in warning and str(directory / "runtime.py") in warning
    assert f"{EXAMPLE_DIST}::python-runtime" in warning
    assert collectors.resolve(f"{EXAMPLE_DIST}::python-runtime").source == EXAMPLE_SOURCE
    assert data_of(collectors, "python-runtime") == {"plugin": True}
    assert "implementation" in data_of(collectors, f"{EXAMPLE_DIST}::python-runtime")


def test_the_loser_of_a_collision_between_two_plugins_is_reachable_by_its_path(plugin_dir, source, caplog):
    first = plugin_dir("first", **{"x.py": source("x", 'return {"from": "first"}')})
    second = plugin_dir("second", **{"x.py": source("x", 'return {"from": "second"}')})
    collectors = plugins_only(first, second)

    loser = f"path:{first / 'x.py'}"
    assert collectors.specs["x"].overrides == (loser,)
    [warning] = messages(caplog, "overrides")
    assert f"{loser}::x" in warning and str(second / "x.py") in warning
    assert data_of(collectors, "x") == {"from": "second"}
    assert data_of(collectors, f"{loser}::x") == {"from": "first"}


def test_every_name_listed_as_available_reaches_a_different_collector(plugin_dir, source):
    """``available()`` is what an unknown-name error shows: each of its names must run something else."""
    first = plugin_dir("first", **{"x.py": source("x", 'return {"from": "first"}')})
    second = plugin_dir("second", **{"x.py": source("x", 'return {"from": "second"}')})
    collectors = plugins_only(first, second)

    reached = {collectors.resolve(name).source for name in collectors.available()}
    assert reached == {f"path:{first / 'x.py'}", f"path:{second / 'x.py'}"}


def test_environment_paths_are_loaded_in_order_and_explicit_paths_beat_them(plugin_dir, source, monkeypatch):
    env_a = plugin_dir("env_a", **{"x.py": source("x", 'return {"from": "env_a"}'), "a.py": source("a")})
    env_b = plugin_dir("env_b", **{"x.py": source("x", 'return {"from": "env_b"}'), "b.py": source("b")})
    flag = plugin_dir("flag", **{"x.py": source("x", 'return {"from": "flag"}')})
    monkeypatch.setenv("HARVESTER_COLLECTOR_PATHS", os.pathsep.join([str(env_a), str(env_b)]))

    from_env = plugins_only()
    assert {"a", "b", "x"} == set(from_env)
    assert data_of(from_env, "x") == {"from": "env_b"}

    with_flag = plugins_only(flag)
    assert data_of(with_flag, "x") == {"from": "flag"}
    assert with_flag.specs["x"].overrides == (f"path:{env_a / 'x.py'}", f"path:{env_b / 'x.py'}")
    assert "x" not in load_collectors(entry_points=False, env=False)


def test_builtin_entry_point_and_plugin_of_one_name_chain_their_overrides(make_dist, plugin_dir, source):
    make_dist("my-dist", {"null": "ep_chain:EpNull"}, ep_chain=source("null", cls="EpNull"))
    directory = plugin_dir(**{"null.py": source("null")})
    collectors = load_collectors([directory], builtin_distribution=RUNNER)

    assert collectors.specs["null"].overrides == (BUILTIN_NULL, "entry-point:my-dist[null]")
    assert collectors.resolve("builtin::null").source == BUILTIN_NULL
    assert collectors.resolve("my-dist::null").source == "entry-point:my-dist[null]"
    assert collectors.resolve("plugins::null").source == f"path:{directory / 'null.py'}"
    assert next(s.source for s in collectors.discovered if s.name == "null") == BUILTIN_NULL


# --- select ---------------------------------------------------------------------------------------


@pytest.fixture
def with_plugin_null(plugin_dir, source) -> Registry:
    directory = plugin_dir(**{"null.py": source("null"), "other.py": source("other")})
    return load_collectors([directory], builtin_distribution=RUNNER)


def test_select_by_plain_and_namespaced_names_keeps_order_and_keys(with_plugin_null):
    selected = with_plugin_null.select(["other", "builtin::null", "null"])

    assert list(selected) == ["other", "builtin::null", "null"]
    assert selected["builtin::null"].source == BUILTIN_NULL
    assert selected["null"].namespace == "plugins"


def test_select_drops_duplicates(with_plugin_null):
    selected = with_plugin_null.select(["other", "plugins::other", "other", "host", "builtin::host"])

    assert list(selected) == ["other", "host"]


def test_select_everything_by_default_and_exclude_by_name_or_namespaced_name(with_plugin_null):
    everything = with_plugin_null.select()
    assert {"host", "null", "other"} <= set(everything)
    assert everything["null"].namespace == "plugins"
    assert "builtin::null" not in everything  # losers only when asked for
    assert set(with_plugin_null.select(exclude=["host"])) == set(everything) - {"host"}

    both = ["null", "builtin::null"]
    assert list(with_plugin_null.select(both, exclude=["builtin::null"])) == ["null"]
    assert list(with_plugin_null.select(both, exclude=["plugins::null"])) == ["builtin::null"]
    assert with_plugin_null.select(both, exclude=["null"]) == {}  # a plain name drops every 'null'


@pytest.mark.parametrize(("include", "exclude"), [(["null", "nope"], []), (None, ["nope"]), (["nope::null"], [])])
def test_select_of_an_unknown_name_lists_the_available_ones(with_plugin_null, include, exclude):
    with pytest.raises(UnknownCollectorError) as info:
        with_plugin_null.select(include, exclude)

    assert info.value.name in ("nope", "nope::null")
    assert {"host", "null", "other", "builtin::null"} <= set(info.value.available)
    assert "builtin::null" in str(info.value) and "other" in str(info.value)
    assert isinstance(info.value, LookupError)


# --- broken and odd plugins ----------------------------------------------------------------------


def test_a_syntax_error_is_reported_and_hides_no_sibling(plugin_dir, source, caplog):
    directory = plugin_dir(
        **{"a_first.py": source("first"), "b_broken.py": "def broken(:\n", "c_last.py": source("last")}
    )
    collectors = plugins_only(directory)

    assert set(collectors) == {"first", "last"}
    [problem] = collectors.problems
    assert problem.where == f"path:{directory / 'b_broken.py'}"
    assert problem.message.startswith("SyntaxError: ")
    assert len(messages(caplog, "b_broken.py", "SyntaxError")) == 1
    assert "Traceback" not in caplog.text


def test_a_plugin_raising_system_exit_at_import_is_reported_and_skipped(plugin_dir, source):
    directory = plugin_dir(**{"a.py": source("a"), "b.py": "raise SystemExit(3)\n", "c.py": source("c")})
    collectors = plugins_only(directory)

    assert set(collectors) == {"a", "c"}
    assert [(p.where, p.message) for p in collectors.problems] == [(f"path:{directory / 'b.py'}", "SystemExit: 3")]


def test_two_dirs_with_a_module_of_the_same_name_both_load(plugin_dir, source):
    one = plugin_dir("one", **{"collector.py": source("one")})
    two = plugin_dir("two", **{"collector.py": source("two")})
    collectors = plugins_only(one, two)

    assert set(collectors) == {"one", "two"}
    assert collectors.specs["one"].source == f"path:{one / 'collector.py'}"
    assert collectors.specs["two"].source == f"path:{two / 'collector.py'}"


def test_plugins_named_like_stdlib_modules_load_and_shadow_nothing(plugin_dir, source):
    directory = plugin_dir(
        **{
            "platform.py": source(
                "plat",
                "return {'python': stdlib_platform.python_version()}",
                extra="import platform as stdlib_platform",
            ),
            "json.py": source(
                "jsonish", "return {'dumped': stdlib_json.dumps([1])}", extra="import json as stdlib_json"
            ),
        }
    )
    collectors = plugins_only(directory)

    assert set(collectors) == {"plat", "jsonish"}
    for stdlib in ("platform", "json"):
        assert Path(sys.modules[stdlib].__file__).parent != directory
        assert Path(importlib.import_module(stdlib).__file__).parent != directory
    assert data_of(collectors, "plat") == {"python": platform.python_version()}
    assert data_of(collectors, "jsonish") == {"dumped": "[1]"}


def test_plugin_dirs_are_not_left_on_sys_path(plugin_dir, source):
    directory = plugin_dir(**{"p.py": source("p")})
    before = list(sys.path)
    plugins_only(directory)

    assert sys.path == before
    assert str(directory) not in sys.path


def test_underscore_files_are_helpers_imported_relatively(plugin_dir, source):
    directory = plugin_dir(
        **{
            "_common.py": """
                from dwellir_harvester.lib import GenericCollector

                VALUE = 7

                class Hidden(GenericCollector):
                    NAME = "hidden"

                    def collect(self):
                        return {}
            """,
            "user.py": source("user", 'return {"value": VALUE}', extra="from ._common import VALUE"),
        }
    )
    collectors = plugins_only(directory)

    assert list(collectors) == ["user"]
    assert collectors.problems == []
    assert data_of(collectors, "user") == {"value": 7}


def test_a_plugin_package_is_loaded_with_its_own_submodules(plugin_dir):
    directory = plugin_dir(
        **{
            "mychain/__init__.py": """
                from dwellir_harvester.lib import GenericCollector
                from .util import answer

                class MyChainCollector(GenericCollector):
                    NAME = "mychain"

                    def collect(self):
                        return {"answer": answer()}
            """,
            "mychain/util.py": "def answer():\n    return 42\n",
        }
    )
    collectors = plugins_only(directory)

    assert collectors.specs["mychain"].source == f"path:{directory / 'mychain'}"
    assert data_of(collectors, "mychain") == {"answer": 42}


def test_a_plugin_package_registers_the_collector_its_submodule_defines(plugin_dir):
    """The usual package layout: the class lives in a submodule, ``__init__`` re-exports it."""
    directory = plugin_dir(
        **{
            "mychain/__init__.py": "from .collector import MyChainCollector\n",
            "mychain/collector.py": """
                from dwellir_harvester.lib import GenericCollector

                class MyChainCollector(GenericCollector):
                    NAME = "mychain"

                    def collect(self):
                        return {"ok": True}
            """,
        }
    )
    collectors = plugins_only(directory)

    assert collectors.problems == []
    assert "mychain" in collectors, "a package plugin was silently ignored"
    assert collectors.specs["mychain"].source == f"path:{directory / 'mychain'}"


def test_classes_a_plugin_merely_imports_are_not_registered(plugin_dir, source, caplog):
    directory = plugin_dir(
        **{
            "a.py": source("a"),
            "b.py": source(
                "b",
                extra="""
                    from dwellir_harvester.lib import BlockchainCollector
                    from dwellir_harvester.collectors.null import NullCollector
                    from .a import ACollector
                """,
            ),
        }
    )
    collectors = load_collectors([directory], builtin_distribution=RUNNER)

    assert collectors.specs["a"].source == f"path:{directory / 'a.py'}"
    assert collectors.specs["b"].source == f"path:{directory / 'b.py'}"
    assert collectors.specs["null"].source == BUILTIN_NULL
    assert [s.name for s in collectors.discovered].count("a") == 1
    assert messages(caplog, "overrides") == []
    assert collectors.problems == []


def test_an_intermediate_base_class_without_name_is_not_registered(plugin_dir):
    directory = plugin_dir(
        **{
            "layered.py": """
                from dwellir_harvester.lib import GenericCollector

                class Base(GenericCollector):
                    def collect(self):
                        return {"base": True}

                    def extra(self):
                        return 1

                class Real(Base):
                    NAME = "real"

                    def collect(self):
                        return {"extra": self.extra()}
            """
        }
    )
    collectors = plugins_only(directory)

    assert list(collectors) == ["real"]
    assert collectors.problems == []
    assert data_of(collectors, "real") == {"extra": 1}


def test_invalid_names_and_a_missing_collect_are_problems(plugin_dir, source):
    directory = plugin_dir(
        **{
            "bad.py": """
                from dwellir_harvester.lib import GenericCollector

                class Shouting(GenericCollector):
                    NAME = "Shouting"

                    def collect(self):
                        return {}

                class Spaced(GenericCollector):
                    NAME = "has space"

                    def collect(self):
                        return {}

                class Lazy(GenericCollector):
                    NAME = "lazy"
            """,
            "good.py": source("good"),
        }
    )
    collectors = plugins_only(directory)

    assert list(collectors) == ["good"]
    found = {p.message.split(" ")[1]: p for p in collectors.problems}
    assert set(found) == {"Shouting", "Spaced", "Lazy"}
    assert all(p.where == f"path:{directory / 'bad.py'}" for p in found.values())
    assert "invalid NAME 'Shouting'" in found["Shouting"].message
    assert "invalid NAME 'has space'" in found["Spaced"].message
    assert "does not implement collect()" in found["Lazy"].message


@pytest.mark.parametrize("redeclare", [True, False], ids=["NAME-redeclared", "NAME-inherited"])
def test_a_subclass_of_a_builtin_with_the_same_name_overrides_it(plugin_dir, redeclare):
    name_line = 'NAME = "null"' if redeclare else "pass"
    directory = plugin_dir(
        **{
            "louder.py": f"""
                from dwellir_harvester.collectors.null import NullCollector

                class LouderNull(NullCollector):
                    {name_line}

                    def collect(self):
                        return {{**super().collect(), "louder": True}}
            """
        }
    )
    collectors = load_collectors([directory], builtin_distribution=RUNNER)

    assert collectors.specs["null"].cls.__name__ == "LouderNull"
    document = harvest(["null", "builtin::null"], registry=collectors)
    assert document["collectors"]["null"]["data"]["louder"] is True
    assert document["collectors"]["null"]["meta"]["source"] == f"path:{directory / 'louder.py'}"
    assert "louder" not in document["collectors"]["builtin::null"]["data"]


def test_a_second_load_of_a_directory_picks_up_changed_code(plugin_dir, source):
    directory = plugin_dir(**{"v.py": source("v", 'return {"version": 1}')})
    assert data_of(plugins_only(directory), "v") == {"version": 1}

    (directory / "v.py").write_text(source("v", 'return {"version": 2, "changed": True}'))
    assert data_of(plugins_only(directory), "v") == {"version": 2, "changed": True}


# --- trust: paths and files writable by others ----------------------------------------------------


def test_a_world_writable_plugin_dir_is_refused(plugin_dir, source):
    directory = plugin_dir(**{"p.py": source("p")})
    directory.chmod(0o777)

    with pytest.raises(PluginPathError) as info:
        plugins_only(directory)
    assert info.value.path == str(directory)
    assert str(directory) in str(info.value) and "writable by every user" in str(info.value)


def test_a_world_writable_plugin_file_is_refused_and_its_siblings_load(plugin_dir, source):
    directory = plugin_dir(**{"a.py": source("a"), "b.py": source("b"), "c.py": source("c")})
    (directory / "b.py").chmod(0o666)
    collectors = plugins_only(directory)

    assert set(collectors) == {"a", "c"}
    [problem] = collectors.problems
    assert problem.where == f"path:{directory / 'b.py'}"
    assert "refused" in problem.message and "writable by every user" in problem.message


def test_a_world_writable_helper_is_not_imported(plugin_dir, source):
    """A helper is code run as the harvester too: one anybody can rewrite must be refused like a plugin."""
    directory = plugin_dir(
        **{
            "_common.py": "VALUE = 1\n",
            "user.py": source("user", 'return {"v": VALUE}', extra="from ._common import VALUE"),
        }
    )
    (directory / "_common.py").chmod(0o666)
    collectors = plugins_only(directory)

    assert "user" not in collectors
    assert any("_common.py" in p.where + p.message for p in collectors.problems)


def test_a_file_writable_by_a_foreign_group_is_refused(plugin_dir, source):
    directory = plugin_dir(**{"a.py": source("a"), "shared.py": source("shared"), "own.py": source("own")})
    foreign = directory / "shared.py"
    os.chown(foreign, -1, 4242)  # a group that is not root's private group (the suite runs as root)
    foreign.chmod(0o664)
    (directory / "own.py").chmod(0o664)  # group-writable by the owner's own private group: fine
    collectors = plugins_only(directory)

    assert set(collectors) == {"a", "own"}
    [problem] = collectors.problems
    assert problem.where == f"path:{foreign}"
    assert "writable by group 4242" in problem.message


def test_a_file_owned_by_another_user_is_refused(plugin_dir, source):
    directory = plugin_dir(**{"a.py": source("a"), "theirs.py": source("theirs")})
    os.chown(directory / "theirs.py", 4242, -1)
    collectors = plugins_only(directory)

    assert set(collectors) == {"a"}
    assert "owned by uid 4242" in collectors.problems[0].message


def test_a_missing_path_or_a_file_is_not_a_plugin_dir(tmp_path, plugin_dir, source, monkeypatch):
    missing = tmp_path / "missing"
    with pytest.raises(PluginPathError, match="does not exist") as info:
        plugins_only(missing)
    assert info.value.path == str(missing)

    a_file = plugin_dir(**{"p.py": source("p")}) / "p.py"
    with pytest.raises(PluginPathError, match="is not a directory") as info:
        plugins_only(a_file)
    assert info.value.path == str(a_file)

    monkeypatch.setenv("HARVESTER_COLLECTOR_PATHS", str(missing))
    with pytest.raises(PluginPathError, match="does not exist"):
        plugins_only()


# --- scale ------------------------------------------------------------------------------------------


def test_discovery_runs_once_and_logs_each_warning_once(plugin_dir, source, monkeypatch, caplog):
    names = [f"p{i:03d}" for i in range(300)]
    files = {f"{name}.py": source(name) for name in names}
    directory = plugin_dir(**files, **{"zz_broken.py": "import no_such_module_here\n", "zz_null.py": source("null")})
    monkeypatch.setenv("HARVESTER_COLLECTOR_PATHS", str(directory))

    document = harvest(names)  # no registry given: harvest discovers by itself, knowing no built-ins

    assert document["harvester"]["collectors_used"] == names
    assert {e["meta"]["status"] for e in document["collectors"].values()} == {"success"}
    assert len(messages(caplog, "zz_broken.py", "ModuleNotFoundError")) == 1
    assert len(messages(caplog, "overrides", f"entry-point:{RUNNER}[null]")) == 1
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 2
