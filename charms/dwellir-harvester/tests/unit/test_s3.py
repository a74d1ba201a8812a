"""The S3 sink the ``s3-*`` options configure: the main config's ``sinks``, the credentials file, the secret."""

from __future__ import annotations

import dataclasses
import json
import os
import stat

import pytest
import yaml
from ops import testing

from dwellir_harvester.config import load_settings
from dwellir_harvester.sinks._s3 import read_credentials

SERVICE = "dwellir-harvester"
ACCESS, SECRET, SESSION = "AKIAS3CHARMTEST00001", "s3cr3t-access-key-never-shown", "s3ss10n-token-never-shown"
ENDPOINT = "https://minio.example.net:9000"
CONFIG = {
    "s3-endpoint-url": ENDPOINT,
    "s3-bucket": "harvester-docs",
    "s3-region": "eu-central-1",
}


def credentials(**extra):
    return testing.Secret({"access-key-id": ACCESS, "secret-access-key": SECRET, **extra})


def gid():
    """A group the service user gets that differs from ours, when the tests may give files to it."""
    return 4242 if os.geteuid() == 0 else os.getgid()


def configured(run, machine, unit, secret=None, **config):
    """Install with the S3 options set (the service is running after it); forget the systemd calls."""
    machine.add_user("dwellir-harvester", gid=gid())
    secret = secret or credentials()
    out = run("install", unit.state(config={**CONFIG, "s3-credentials": secret.id, **config}, secrets={secret}))
    assert out.unit_status.name == "active", out.unit_status
    machine.systemd.calls.clear()
    return out


def every_text(machine, *leave_out):
    """The text of every file on the machine but ``leave_out``."""
    return "\n".join(
        p.read_text(errors="replace") for p in machine.root.rglob("*") if p.is_file() and p not in leave_out
    )


# --- a valid setup ---------------------------------------------------------------------------


def test_the_s3_options_become_a_sink_the_runner_loads_and_a_credentials_file_it_reads(run, machine, unit):
    configured(run, machine, unit)

    main = machine.paths.main_config
    assert yaml.safe_load(main.read_text())["sinks"] == [
        {
            "type": "s3",
            "name": "s3",
            "endpoint_url": ENDPOINT,
            "bucket": "harvester-docs",
            "prefix": "dwellir-harvester",
            "region": "eu-central-1",
            "path_style": True,
            "credentials_file": str(machine.paths.s3_credentials_file),
        }
    ]
    settings = load_settings({"config": str(main)}, environ={})
    (sink,) = settings.sinks
    assert (sink.type, sink.name, sink.settings["bucket"]) == ("s3", "s3", "harvester-docs")
    assert settings.spool_dir == str(machine.paths.spool_dir) == str(machine.paths.state_dir / "spool")

    path = machine.paths.s3_credentials_file
    assert path == machine.paths.etc / "s3-credentials.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_gid == gid()
    assert read_credentials(str(path)) == (ACCESS, SECRET, None)  # the runner's own reader accepts it
    for value in (ACCESS, SECRET):
        assert value not in every_text(machine, path)


def test_a_session_token_an_empty_prefix_and_virtual_host_style(run, machine, unit):
    secret = credentials(**{"session-token": SESSION})
    configured(run, machine, unit, secret, **{"s3-prefix": "", "s3-region": "", "s3-path-style": False})

    (sink,) = yaml.safe_load(machine.paths.main_config.read_text())["sinks"]
    assert "prefix" not in sink and "region" not in sink
    assert sink["path_style"] is False
    assert read_credentials(str(machine.paths.s3_credentials_file)) == (ACCESS, SECRET, SESSION)


def test_without_an_endpoint_there_is_no_sink_and_no_credentials_file(run, machine, unit):
    run("install", unit.state(config={"s3-bucket": "ignored-without-endpoint"}))

    main = yaml.safe_load(machine.paths.main_config.read_text())
    assert "sinks" not in main and "spool_dir" not in main
    assert not machine.paths.s3_credentials_file.exists()


# --- changes ---------------------------------------------------------------------------------


def test_a_rotated_secret_rewrites_the_credentials_file_and_reloads(run, machine, unit, ctx):
    secret = credentials()
    out = configured(run, machine, unit, secret)
    config_before = machine.paths.main_config.stat()

    rotated = dataclasses.replace(
        secret, latest_content={"access-key-id": "AKIAROTATED000000002", "secret-access-key": "rotated-" + SECRET}
    )
    out = ctx.run(ctx.on.secret_changed(rotated), dataclasses.replace(out, secrets={rotated}))

    rotated_values = ("AKIAROTATED000000002", "rotated-" + SECRET, None)
    assert read_credentials(str(machine.paths.s3_credentials_file)) == rotated_values
    assert machine.paths.main_config.stat().st_ino == config_before.st_ino  # the config did not change
    assert machine.systemd.mutations() == [("service_reload", SERVICE)]  # a reload, never a restart
    assert out.unit_status.name == "active"


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("s3-endpoint-url", "http://10.0.0.9:9000"),
        ("s3-bucket", "other-bucket"),
        ("s3-prefix", "prod/eu"),
        ("s3-region", "us-east-1"),
        ("s3-path-style", False),
    ],
)
def test_a_changed_s3_option_reloads_the_daemon(run, machine, unit, option, value):
    out = configured(run, machine, unit)
    credentials_before = machine.paths.s3_credentials_file.stat()

    run("config_changed", dataclasses.replace(out, config={**out.config, option: value}))

    assert machine.systemd.mutations() == [("service_reload", SERVICE)]
    assert machine.paths.s3_credentials_file.stat().st_ino == credentials_before.st_ino  # not rewritten
    assert yaml.safe_load(machine.paths.main_config.read_text())["sinks"][0]


def test_unsetting_the_endpoint_removes_the_sink_and_the_credentials_file_and_reloads(run, machine, unit):
    out = configured(run, machine, unit)

    config = {key: value for key, value in out.config.items() if key != "s3-endpoint-url"}
    out = run("config_changed", dataclasses.replace(out, config=config))

    main = yaml.safe_load(machine.paths.main_config.read_text())
    assert "sinks" not in main and "spool_dir" not in main
    assert not machine.paths.s3_credentials_file.exists()
    assert machine.systemd.mutations() == [("service_reload", SERVICE)]
    assert out.unit_status.name == "active"


def test_remove_takes_the_credentials_file_away(run, machine, unit):
    out = configured(run, machine, unit)

    run("remove", out)

    assert not machine.paths.s3_credentials_file.exists()


# --- bad values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"s3-bucket": ""}, "s3-bucket must be set when s3-endpoint-url is"),
        ({"s3-bucket": "Harvester_Docs"}, "s3-bucket 'Harvester_Docs' is not a bucket name (3 to 63 lowercase"),
        ({"s3-bucket": "ab"}, "s3-bucket 'ab' is not a bucket name"),
        ({"s3-bucket": "192.168.1.10"}, "s3-bucket '192.168.1.10' is not a bucket name"),
        ({"s3-bucket": "a..b"}, "s3-bucket 'a..b' is not a bucket name"),
        ({"s3-endpoint-url": "ftp://minio:21"}, "s3-endpoint-url must be an http:// or https:// URL with a host"),
        ({"s3-endpoint-url": "minio.example.net"}, "s3-endpoint-url must be an http:// or https:// URL with a host"),
        ({"s3-endpoint-url": "http://minio:99999"}, "s3-endpoint-url 'http://minio:99999' is not a valid URL"),
        ({"s3-endpoint-url": "http://minio:9000/bucket"}, "s3-endpoint-url must be http(s)://host[:port] with no path"),
        (
            {"s3-endpoint-url": "http://admin:hunter2@minio:9000"},
            "s3-endpoint-url must not hold credentials (charm config is readable",
        ),
        ({"s3-prefix": "a/../b"}, "s3-prefix 'a/../b' must be at most 256 letters"),
        ({"s3-prefix": "with space"}, "s3-prefix 'with space' must be at most 256 letters"),
        ({"s3-region": "eu central"}, "s3-region 'eu central' is not a region name"),
        ({"s3-credentials": None}, "s3-credentials must name a Juju secret (juju add-secret, then juju grant-secret)"),
        (
            {"s3-credentials": "secret:" + "b" * 20},
            "the s3-credentials secret secret:bbbbbbbbbbbbbbbbbbbb does not exist or is not granted to "
            "dwellir-harvester",
        ),
    ],
)
def test_a_bad_s3_option_blocks_with_the_reason_and_applies_nothing(run, machine, unit, ctx, config, message):
    out = configured(run, machine, unit)
    before = machine.files()

    changed = {key: value for key, value in {**out.config, **config}.items() if value is not None}
    out = run("config_changed", dataclasses.replace(out, config=changed))

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(message), out.unit_status.message
    assert "\n" not in out.unit_status.message
    assert "hunter2" not in out.unit_status.message
    assert all("hunter2" not in entry.message for entry in ctx.juju_log)
    assert machine.files() == before
    assert machine.systemd.mutations() == []


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ({"secret-access-key": SECRET}, "has no key 'access-key-id'"),
        ({"access-key-id": ACCESS}, "has no key 'secret-access-key'"),
        ({"access-key-id": ACCESS, "secret-access-key": " "}, "key 'secret-access-key' is empty"),
        ({"access-key-id": ACCESS, "secret-access-key": SECRET, "region": "x"}, "has an unknown key 'region'"),
        (
            {"access-key-id": ACCESS, "secret-access-key": SECRET + " " + SECRET},
            "key 'secret-access-key' must be at most 4096 printable characters without spaces",
        ),
        (
            {"access-key-id": ACCESS, "secret-access-key": SECRET, "session-token": "a\x00b"},
            "key 'session-token' must be at most 4096 printable characters",
        ),
    ],
)
def test_a_malformed_credentials_secret_blocks_without_showing_it_and_keeps_the_last_good_files(
    run, machine, unit, ctx, content, reason
):
    secret = credentials()
    out = configured(run, machine, unit, secret)
    before = machine.files()

    broken = dataclasses.replace(secret, latest_content=content)
    out = ctx.run(ctx.on.secret_changed(broken), dataclasses.replace(out, secrets={broken}))

    assert out.unit_status.name == "blocked"
    assert out.unit_status.message.startswith(f"the s3-credentials secret {secret.id} {reason}")
    assert machine.files() == before
    assert machine.systemd.mutations() == []
    logs = "\n".join(entry.message for entry in ctx.juju_log)
    for value in (ACCESS, SECRET):
        assert value not in logs
        assert value not in out.unit_status.message


def test_a_first_install_with_a_missing_secret_writes_nothing(run, machine, unit):
    out = run("install", unit.state(config={**CONFIG, "s3-credentials": "secret:" + "c" * 20}))

    assert out.unit_status.name == "blocked"
    assert not machine.paths.main_config.exists()
    assert not machine.paths.s3_credentials_file.exists()
    assert ("service_start", SERVICE) not in machine.systemd.calls


# --- never shown -----------------------------------------------------------------------------


def test_the_credentials_never_reach_a_log_a_status_or_show_config(run, machine, unit, ctx):
    secret = credentials(**{"session-token": SESSION})
    out = configured(run, machine, unit, secret)
    out = run("config_changed", out)

    ctx.run(ctx.on.action("show-config"), out)
    text = ctx.action_results["config"]
    (sink,) = json.loads(text)["sinks"]
    assert sink["bucket"] == "harvester-docs"
    assert "credentials_file" in sink
    shown = "\n".join([text, *ctx.action_logs, *(entry.message for entry in ctx.juju_log), out.unit_status.message])
    for value in (ACCESS, SECRET, SESSION):
        assert value not in shown
        assert value not in every_text(machine, machine.paths.s3_credentials_file)
