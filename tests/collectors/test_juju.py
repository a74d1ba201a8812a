"""``juju`` on real agent.conf files (Juju 3.x and 2.9 format) written into ``tmp_path``."""

from __future__ import annotations

import json
import textwrap

import pytest

from dwellir_harvester.collectors.juju import JujuCollector, parse_tag
from dwellir_harvester.lib.testing import run_collector

CONTROLLER = "8f6b3c1e-5d4a-4f0e-9a7b-2c1d0e9f8a7b"
MODEL = "4a5f6e7d-8c9b-4a1e-b2c3-d4e5f6a7b8c9"

CA_CERT = """\
-----BEGIN CERTIFICATE-----
MIIEEzCCAnugAwIBAgIVAKSECRETCAx0Zm9yIGp1anUtY2EgdGVzdHMgb25seTAN
BgkqhkiG9w0BAQsFADAhMQ0wCwYDVQQKEwRqdWp1MRAwDgYDVQQDEwdqdWp1LWNh
-----END CERTIFICATE-----
"""
PRIVATE_KEY = """\
-----BEGIN RSA PRIVATE KEY-----
MIIEpAIBAAKCAQEAzSECRETKEYbXlKZXkgZm9yIHRlc3RzIG9ubHkgbm90IHJlYWwK
-----END RSA PRIVATE KEY-----
"""

#: Every value that must never appear in the collector's entry.
SECRETS = [
    "SECRET-apipassword-m0",
    "SECRET-oldpassword-m0",
    "SECRET-statepassword-m0",
    "SECRET-sharedsecret",
    "SECRET-values-token",
    "SECRET-apipassword-u0",
    "SECRET-oldpassword-u0",
    "SECRET-apipassword-u1",
    "SECRET-oldpassword-u1",
    "SECRETCA",
    "SECRETKEY",
    "BEGIN",
    "2f0f1f7e-nonce",
]


def _indent(pem: str) -> str:
    return textwrap.indent(pem, "  ")


MACHINE_0 = f"""\
# format 2.0
tag: machine-0
datadir: /var/lib/juju
transient-datadir: /var/run/juju
logdir: /var/log/juju
metricsspooldir: /var/lib/juju/metricspool
nonce: machine-0:2f0f1f7e-nonce
jobs:
- JobHostUnits
upgradedToVersion: 3.5.4
cacert: |
{_indent(CA_CERT)}controller: controller-{CONTROLLER}
model: model-{MODEL}
apiaddresses:
- 10.10.0.2:17070
- 252.0.2.1:17070
oldpassword: SECRET-oldpassword-m0
loggingconfig: <root>=INFO
values:
  AGENT_SERVICE_NAME: jujud-machine-0
  CONTAINER_TYPE: ""
  NAMESPACE: ""
  PROVIDER_TYPE: openstack
  deployed-units: polkadot/0,grafana-agent/0
  CHARMHUB_AUTH_TOKEN: SECRET-values-token
  nested:
    tls:
      servercert: |
{textwrap.indent(CA_CERT, "        ")}apipassword: SECRET-apipassword-m0
statepassword: SECRET-statepassword-m0
sharedsecret: SECRET-sharedsecret
controllercert: |
{_indent(CA_CERT)}controllerkey: |
{_indent(PRIVATE_KEY)}caprivatekey: |
{_indent(PRIVATE_KEY)}systemidentity: |
{_indent(PRIVATE_KEY)}apiport: 17070
stateport: 37017
"""


def unit_conf(app: str, number: int, secret_suffix: str) -> str:
    return f"""\
# format 2.0
tag: unit-{app}-{number}
datadir: /var/lib/juju
transient-datadir: /var/run/juju
logdir: /var/log/juju
metricsspooldir: /var/lib/juju/metricspool
upgradedToVersion: 3.5.4
cacert: |
{_indent(CA_CERT)}controller: controller-{CONTROLLER}
model: model-{MODEL}
apiaddresses:
- 10.10.0.2:17070
oldpassword: SECRET-oldpassword-{secret_suffix}
loggingconfig: <root>=WARNING;unit=DEBUG
values:
  CONTAINER_TYPE: ""
  NAMESPACE: ""
apipassword: SECRET-apipassword-{secret_suffix}
"""


@pytest.fixture
def agents_dir(tmp_path):
    directory = tmp_path / "agents"
    for name, text in {
        "machine-0": MACHINE_0,
        "unit-polkadot-0": unit_conf("polkadot", 0, "u0"),
        "unit-grafana-agent-0": unit_conf("grafana-agent", 0, "u1"),
    }.items():
        (directory / name).mkdir(parents=True)
        (directory / name / "agent.conf").write_text(text)
        (directory / name / "agent.conf").chmod(0o600)
    return directory


def test_a_machine_with_two_units(agents_dir):
    entry = run_collector(JujuCollector, {"agents_dir": str(agents_dir)})

    assert entry["meta"]["status"] == "success", entry
    data = entry["data"]
    assert data["controller"] == CONTROLLER
    assert data["model"] == MODEL
    assert data["machine"] == {"tag": "machine-0", "id": "0", "version": "3.5.4"}
    assert data["juju_version"] == "3.5.4"
    assert data["deployed_units"] == ["grafana-agent/0", "polkadot/0"]
    assert "note" not in data
    machine, grafana, polkadot = data["agents"]
    assert machine == {
        "tag": "machine-0",
        "kind": "machine",
        "name": "0",
        "version": "3.5.4",
        "controller": CONTROLLER,
        "model": MODEL,
        "api_addresses": ["10.10.0.2:17070", "252.0.2.1:17070"],
        "values": {
            "AGENT_SERVICE_NAME": "jujud-machine-0",
            "CONTAINER_TYPE": "",
            "NAMESPACE": "",
            "PROVIDER_TYPE": "openstack",
            "deployed-units": "polkadot/0,grafana-agent/0",
        },
        "jobs": ["JobHostUnits"],
    }
    assert (grafana["tag"], grafana["kind"], grafana["name"]) == ("unit-grafana-agent-0", "unit", "grafana-agent/0")
    assert (polkadot["kind"], polkadot["name"], polkadot["version"]) == ("unit", "polkadot/0", "3.5.4")
    assert polkadot["api_addresses"] == ["10.10.0.2:17070"]
    assert polkadot["controller"] == CONTROLLER and polkadot["model"] == MODEL
    assert "jobs" not in polkadot


def test_no_secret_ever_leaves_the_collector(agents_dir):
    entry = run_collector(JujuCollector, {"agents_dir": str(agents_dir)})

    serialized = json.dumps(entry)
    leaked = [secret for secret in SECRETS if secret in serialized]
    assert leaked == []
    for word in ("password", "cacert", "privatekey", "secret", "token", "cert"):
        assert word not in serialized.lower(), word


def test_a_missing_agents_dir_is_a_success_with_a_note(tmp_path):
    missing = tmp_path / "no-juju-here"

    entry = run_collector(JujuCollector, {"agents_dir": str(missing)})

    assert entry["meta"]["status"] == "success", entry
    assert entry["data"]["agents"] == []
    assert entry["data"]["deployed_units"] == []
    assert entry["data"]["machine"] is None
    assert str(missing) in entry["data"]["note"]


def test_an_empty_agents_dir_is_a_success_with_a_note(tmp_path):
    (tmp_path / "agents" / "stray-dir").mkdir(parents=True)  # a directory without agent.conf is not an agent

    entry = run_collector(JujuCollector, {"agents_dir": str(tmp_path / "agents")})

    assert entry["meta"]["status"] == "success", entry
    assert entry["data"]["agents"] == []
    assert str(tmp_path / "agents") in entry["data"]["note"]


def test_a_malformed_agent_conf_is_partial_naming_the_file_and_keeping_the_others(agents_dir):
    broken = agents_dir / "unit-polkadot-0" / "agent.conf"
    broken.write_text("tag: unit-polkadot-0\napipassword: SECRET-in-broken-file\n  values: [unclosed\n")

    entry = run_collector(JujuCollector, {"agents_dir": str(agents_dir)})

    assert entry["meta"]["status"] == "partial", entry
    [error] = entry["meta"]["errors"]
    assert str(broken) in error and "not valid YAML" in error and "line 3" in error
    assert [a["tag"] for a in entry["data"]["agents"]] == ["machine-0", "unit-grafana-agent-0"]
    assert entry["data"]["deployed_units"] == ["grafana-agent/0", "polkadot/0"]  # the machine agent still says so
    assert "SECRET" not in json.dumps(entry)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- just\n- a list\n", "holds a list, not a mapping"),
        ("", "holds nothing, not a mapping"),
        ("machine-0\n", "holds a scalar, not a mapping"),
        ("tag: [unclosed\n", "not valid YAML"),
        (b"tag: machine-0\nnonce: \xc3\x28\n", "not valid YAML"),
    ],
)
def test_agent_confs_that_are_not_mappings(agents_dir, content, message):
    path = agents_dir / "unit-grafana-agent-0" / "agent.conf"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)

    entry = run_collector(JujuCollector, {"agents_dir": str(agents_dir)})

    assert entry["meta"]["status"] == "partial", entry
    [error] = entry["meta"]["errors"]
    assert error.startswith(f"{path}: ") and message in error
    assert len(entry["data"]["agents"]) == 2


def test_an_unreadable_agent_conf_is_partial(agents_dir):
    path = agents_dir / "unit-grafana-agent-0" / "agent.conf"
    path.unlink()
    path.mkdir()  # not a file it can read, even as root

    entry = run_collector(JujuCollector, {"agents_dir": str(agents_dir)})

    assert entry["meta"]["status"] == "partial", entry
    [error] = entry["meta"]["errors"]
    assert error == f"{path}: is a directory, not a regular file"


def test_a_fifo_in_place_of_an_agent_conf_is_refused_without_waiting(agents_dir):
    import os

    path = agents_dir / "unit-grafana-agent-0" / "agent.conf"
    path.unlink()
    os.mkfifo(path)  # nobody ever writes to it: reading would wait for ever

    entry = run_collector(JujuCollector, {"agents_dir": str(agents_dir)}, timeout=5)

    assert entry["meta"]["status"] == "partial", entry
    assert entry["meta"]["errors"] == [f"{path}: is a FIFO, not a regular file"]


def test_an_agents_dir_that_is_a_file_fails(tmp_path):
    path = tmp_path / "agents"
    path.write_text("not a directory")

    entry = run_collector(JujuCollector, {"agents_dir": str(path)})

    assert entry["meta"]["status"] == "failed", entry
    assert entry["meta"]["errors"] == [f"agents_dir {path} is not a directory"]


def test_a_juju_2_9_container_machine(tmp_path):
    agent = tmp_path / "machine-0-lxd-3"
    agent.mkdir()
    (agent / "agent.conf").write_text(
        f"# format 2.0\ntag: machine-0-lxd-3\nupgradedToVersion: 2.9.49\njobs: [JobHostUnits]\n"
        f"controller: controller-{CONTROLLER}\nmodel: model-{MODEL}\napiaddresses: ['10.0.0.5:17070']\n"
        f"values:\n  CONTAINER_TYPE: lxd\n  deployed-units: ''\napipassword: SECRET-x\n"
    )

    entry = run_collector(JujuCollector, {"agents_dir": str(tmp_path)})

    assert entry["meta"]["status"] == "success", entry
    assert entry["data"]["machine"] == {"tag": "machine-0-lxd-3", "id": "0/lxd/3", "version": "2.9.49"}
    assert entry["data"]["juju_version"] == "2.9.49"
    assert entry["data"]["deployed_units"] == []
    assert "SECRET" not in json.dumps(entry)


@pytest.mark.parametrize(
    ("tag", "kind", "name"),
    [
        ("machine-0", "machine", "0"),
        ("machine-12-lxd-3", "machine", "12/lxd/3"),
        ("unit-polkadot-0", "unit", "polkadot/0"),
        ("unit-grafana-agent-11", "unit", "grafana-agent/11"),
        ("controller-0", "controller", "0"),
        ("application-polkadot", "application", "polkadot"),
    ],
)
def test_agent_tags(tag, kind, name):
    assert parse_tag(tag) == (kind, name)


def test_juju_through_the_command(run_cli, agents_dir, validate_document):
    result = run_cli("collect", "juju", "--option", f"juju.agents_dir={agents_dir}")

    assert result.returncode == 0, result
    document = result.json()
    validate_document(document)
    assert document["collectors"]["juju"]["data"]["deployed_units"] == ["grafana-agent/0", "polkadot/0"]
    assert not [secret for secret in SECRETS if secret in result.stdout + result.stderr]


# --- hostile agent.conf files: each fails only itself ------------------------------------------------

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
tag: unit-grafana-agent-0
"""


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(BILLION_LAUGHS, "uses a YAML alias at line 2, column 8 (refused)", id="billion-laughs"),
        pytest.param("tag: x\nvalues:\n  n: " + "9" * 1000 + "\n", "larger than 2**1024", id="1000-digits"),
        pytest.param(
            "tag: x\nvalues:\n  n: " + "9" * 5000 + "\n", "holds a value that cannot be read", id="5000-digits"
        ),
        pytest.param("tag: x\nv: " + "[" * 2000 + "]" * 2000 + "\n", "nested more than 64 levels", id="deep-flow"),
        pytest.param(
            "tag: x\n" + "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "v: 1\n",
            "nested more than 64 levels",
            id="deep-block",
        ),
        pytest.param("tag: x\n1: numeric key\n", "has a key of type int", id="non-string-key"),
    ],
)
def test_a_hostile_agent_conf_makes_the_entry_partial_naming_the_file(agents_dir, content, message):
    path = agents_dir / "unit-grafana-agent-0" / "agent.conf"
    path.write_text(content)

    entry = run_collector(JujuCollector, {"agents_dir": str(agents_dir)})

    assert entry["meta"]["status"] == "partial", entry
    [error] = entry["meta"]["errors"]
    assert error.startswith(f"{path}: ") and message in error, error
    assert [a["tag"] for a in entry["data"]["agents"]] == ["machine-0", "unit-polkadot-0"]


def test_urls_lose_their_credentials_and_new_secret_words_are_dropped(agents_dir):
    path = agents_dir / "machine-0" / "agent.conf"
    path.write_text(
        "tag: machine-0\n"
        "apiaddresses:\n- https://admin:SECRET-pw@10.0.0.2:17070\n"
        "values:\n"
        "  PROXY: http://proxyuser:SECRET-proxy@proxy:3128\n"
        "  db_pass: SECRET-db\n  pwd: SECRET-pwd\n  auth: SECRET-auth\n  jwt: SECRET-jwt\n"
        "  seed: SECRET-seed\n  mnemonic: SECRET-mnemonic\n  wallet: SECRET-wallet\n"
        "  SOMETHING: " + "ab" * 32 + "\n"
        "  PROVIDER_TYPE: lxd\n"
    )

    entry = run_collector(JujuCollector, {"agents_dir": str(agents_dir)})

    text = json.dumps(entry)
    assert "SECRET" not in text and "ab" * 32 not in text
    machine = next(a for a in entry["data"]["agents"] if a["tag"] == "machine-0")
    assert machine["api_addresses"] == ["https://<redacted>@10.0.0.2:17070"]
    assert machine["values"] == {"PROXY": "http://<redacted>@proxy:3128", "PROVIDER_TYPE": "lxd"}
