"""Config files, drop-ins, the environment and flags, merged as DESIGN.md says."""

from __future__ import annotations

import json
import os

import jsonschema
import pytest

from dwellir_harvester.config import ConfigError, config_schema_path, load_settings


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def etc(tmp_path):
    main = write(tmp_path / "etc" / "config.yaml", "")
    return main


def settings_for(main, flags=None, **env):
    return load_settings({"config": str(main), **(flags or {})}, environ={k.upper(): v for k, v in env.items()})


def test_defaults(etc):
    settings = settings_for(etc)
    assert settings.collectors == ["host"]
    assert (settings.host, settings.port, settings.interval, settings.validate) == ("127.0.0.1", 18080, 300.0, True)
    assert settings.collector_paths == [] and settings.auth_tokens == [] and settings.output is None
    assert settings.files == [str(etc)]


def test_dropins_merge_in_name_order(etc, tmp_path):
    etc.write_text(
        "collectors: [juju]\ninterval: 60\nexclude: ['null']\n"
        "collector_options:\n  substrate: {rpc_url: 'http://a:9944', ecosystem: kusama}\n"
    )
    write(etc.parent / "config.d" / "20-b.yaml", "collectors: [evm, juju]\ninterval: 30\n")
    write(etc.parent / "config.d" / "10-a.yml", "collectors: [substrate]\ninterval: 90\nport: 19000\n")
    write(etc.parent / "config.d" / "30-c.yaml", "collector_options:\n  substrate: {rpc_url: 'http://b:9944'}\n")
    write(etc.parent / "config.d" / "README", "not yaml, ignored")
    settings = settings_for(etc)
    assert settings.files == [str(etc)] + [
        str(etc.parent / "config.d" / n) for n in ("10-a.yml", "20-b.yaml", "30-c.yaml")
    ]
    assert settings.collectors == ["host", "juju", "substrate", "evm"]  # unioned with the default, in order
    assert settings.interval == 30  # the last file wins
    assert settings.port == 19000
    assert settings.exclude == ["null"]
    assert settings.collector_options == {"substrate": {"rpc_url": "http://b:9944", "ecosystem": "kusama"}}
    assert settings.option_origins["substrate"] == str(etc.parent / "config.d" / "30-c.yaml")


def test_a_charm_dropin_alone_adds_its_collectors(tmp_path):
    main = write(tmp_path / "etc" / "config.yaml", "# the operator's file, untouched by charms\n")
    plugins = tmp_path / "charm" / "collectors"
    plugins.mkdir(parents=True)
    write(main.parent / "config.d" / "my-app.yaml", f"collector_paths: [{plugins}]\ncollectors: [peers]\n")
    settings = load_settings({}, environ={"HARVESTER_CONFIG": str(main)})
    assert settings.collectors == ["host", "peers"]
    assert [p.path for p in settings.collector_paths] == [str(plugins)]
    # A main file named explicitly must exist.
    with pytest.raises(ConfigError, match="no such file"):
        load_settings({"config": str(tmp_path / "nowhere.yaml")})


def test_relative_paths_are_relative_to_the_file(etc):
    write(
        etc.parent / "config.d" / "x.yaml", "collector_paths: [plugins, ../elsewhere]\nauth_token_file: tokens.json\n"
    )
    settings = settings_for(etc)
    assert [p.path for p in settings.collector_paths] == [
        str(etc.parent / "config.d" / "plugins"),
        str(etc.parent / "elsewhere"),
    ]
    assert settings.auth_token_file == str(etc.parent / "config.d" / "tokens.json")


def test_precedence_flags_beat_environment_beat_files(etc):
    etc.write_text("collector_paths: [/from/file]\nauth_token_file: /file/tokens\ntimeout: 9\nauth_tokens: [c]\n")
    settings = settings_for(
        etc,
        {"collector_paths": ["/from/flag"], "timeout": 3.0, "auth_tokens": ["f"], "collectors": ["null"]},
        harvester_collector_paths=os.pathsep.join(["/from/env1", "/from/env2"]),
        daemon_auth_token_file="/env/tokens",
        daemon_auth_tokens="e1,e2",
    )
    assert [(p.path, p.origin) for p in settings.collector_paths] == [
        ("/from/file", str(etc)),
        ("/from/env1", "HARVESTER_COLLECTOR_PATHS"),
        ("/from/env2", "HARVESTER_COLLECTOR_PATHS"),
        ("/from/flag", "--collector-path"),
    ]
    assert settings.timeout == 3.0
    assert settings.auth_token_file == "/env/tokens"
    assert settings.auth_tokens == ["c", "e1", "e2", "f"]
    assert settings.collectors == ["null"]  # names on the command line replace the configured set
    assert settings_for(etc, {"auth_token_file": "/flag/tokens"}, daemon_auth_token_file="/env").auth_token_file == (
        "/flag/tokens"
    )


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("intervall: 5\n", "intervall", "did you mean 'interval'"),
        ("colectors: [a]\n", "colectors", "did you mean 'collectors'"),
        ("bogus: 1\n", "bogus", "known keys"),
        ("collectors: host\n", "collectors", 'expected a list, got "host"'),
        ("collectors: [null]\n", "collectors.0", "quote it"),
        ("interval: soon\n", "interval", "expected a number"),
        ("port: 99999\n", "port", "65535"),
        ("validate: maybe\n", "validate", "expected true or false"),
        ("collector_options: {substrate: 5}\n", "collector_options.substrate", "expected a mapping"),
        ("log_level: loud\n", "log_level", "expected one of"),
        ("timeout: 0\n", "timeout", "0"),
    ],
)
def test_bad_values_name_the_file_and_key(etc, text, key, message):
    """In the main file: an error naming the file and key. In a drop-in: that drop-in is left out."""
    etc.write_text(text)
    with pytest.raises(ConfigError) as caught:
        settings_for(etc)
    err = caught.value
    assert err.file == str(etc)
    assert err.key == key
    assert message in str(err)
    assert "\n" not in str(err)

    etc.write_text("")
    bad = write(etc.parent / "config.d" / "50-bad.yaml", text)
    [problem] = settings_for(etc).problems
    assert problem.where == str(bad)
    assert message in problem.problem and f"(key {key!r})" in problem.problem


def test_invalid_yaml_and_non_mapping(etc):
    etc.write_text("collectors: [a\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+, column \d+"):
        settings_for(etc)
    etc.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping of keys to values, got a list"):
        settings_for(etc)


def test_the_schema_is_what_the_loader_accepts(etc):
    schema = json.loads(config_schema_path().read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == {
        "collectors",
        "exclude",
        "collector_paths",
        "collector_options",
        "timeout",
        "interval",
        "host",
        "port",
        "output",
        "validate",
        "auth_tokens",
        "auth_token_file",
        "auth",
        "log_level",
        "isolation",
        "worker_memory_mb",
        "python",
        "python_path",
        "sinks",
        "spool_dir",
        "spool_max_documents",
        "spool_max_bytes",
        "withdrawn",
    }
    everything = {
        "collectors": ["juju"],
        "exclude": ["null"],
        "collector_paths": ["/srv/plugins"],
        "collector_options": {"juju": {"agents_dir": "/var/lib/juju/agents"}},
        "timeout": 5,
        "interval": 60,
        "host": "0.0.0.0",
        "port": 18081,
        "output": "/tmp/h.json",
        "validate": False,
        "auth_tokens": ["x"],
        "auth_token_file": "/etc/dwellir-harvester/tokens.yaml",
        "auth": "optional",
        "log_level": "DEBUG",
    }
    jsonschema.validate(everything, schema)
    etc.write_text(json.dumps(everything))
    settings = settings_for(etc)
    assert settings.port == 18081 and settings.validate is False and settings.log_level == "DEBUG"
    assert settings.auth == "optional"
