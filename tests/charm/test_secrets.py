"""Secrets never reach a file others can read, the snapshot, the action's output or its log.

One table of realistic charm options drives the snapshot and action tests: each secret is
redacted (by its name, or by its value when that is key material), URLs lose their credentials,
and harmless options are reported as they are.
"""

from __future__ import annotations

import grp
import json
import stat
from typing import Any, ClassVar

import ops
import pytest
from ops import testing

from dwellir_harvester.charm import Harvester
from dwellir_harvester.charm.testing import Sandbox, subclass

REDACTED = "<redacted>"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "-----END PRIVATE KEY-----\n"
)
HEX_KEY = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

#: (option, value): every one of these is a secret and must come back as <redacted>.
SECRETS = [
    ("db-pass", "s3cret-Pass!"),
    ("db_password", "hunter2-hunter2"),
    ("seed-phrase", "legal winner thank year wave sausage worth useful legal winner thank yellow"),
    ("mnemonic", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"),
    ("jwt-secret", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJub2RlIn0.c2lnbmF0dXJlLXZhbHVl"),
    ("auth-header", "Basic YWxpY2U6cGE1NXcwcmQ="),
    ("wallet-key", "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"),
    ("node-key", HEX_KEY),
    ("private-key", PEM),
    ("validator-id", "0x" + HEX_KEY[::-1]),  # a harmless name, but the value is key material
]
#: (option, value, as reported): URLs keep everything but their credentials.
URLS = [
    ("rpc-url", "https://alice:pa55w0rd@rpc.example.com:8545/v1", f"https://{REDACTED}@rpc.example.com:8545/v1"),
    (
        "ws-url",
        "wss://rpc.example.com/ws?api_token=tok-123456&chain=dot",
        f"wss://rpc.example.com/ws?api_token={REDACTED}&chain=dot",
    ),
]
#: (option, value): harmless, reported as they are.
HARMLESS = [
    ("port", 9944),
    ("network", "polkadot"),
    ("log-level", "info"),
    ("peers-wanted", 25),
    ("pruning", False),
    ("bootnodes", "/dns/boot.example.com/tcp/30333/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"),
    ("chain-id", "0x1"),
]
LEAKS = [value for _, value in SECRETS] + ["pa55w0rd", "tok-123456"]


def table_meta(kit):
    meta = kit.metadata()
    options = meta["config"]["options"]
    for name, value in [*SECRETS, *((n, v) for n, v, _ in URLS), *HARMLESS]:
        kind = {bool: "boolean", int: "int", str: "string"}[type(value)]
        options[name] = {"type": kind, "default": value}
    return meta


def expected_config():
    reported = {name: REDACTED for name, _ in SECRETS}
    reported.update({name: shown for name, _, shown in URLS})
    reported.update(dict(HARMLESS))
    return reported


@pytest.fixture
def table_ctx(kit, sandbox, charm_root):
    charm = kit.sandboxed(kit.make_charm(), sandbox)
    with testing.Context(charm, meta=table_meta(kit), charm_root=charm_root) as ctx:
        yield ctx


def test_the_snapshot_redacts_every_secret_and_keeps_every_harmless_option(table_ctx, sandbox, kit):
    table_ctx.run(table_ctx.on.config_changed(), kit.state())
    config = sandbox.read_snapshot(kit.APP)["config"]
    for name, value in expected_config().items():
        assert config[name] == value, name
    text = sandbox.snapshot_path(kit.APP).read_text()
    for leak in LEAKS:
        assert leak not in text and json.dumps(leak)[1:-1] not in text, leak


def test_the_action_output_and_log_hold_no_secret(table_ctx, kit):
    table_ctx.run(table_ctx.on.action("run-collectors"), kit.state())
    results = table_ctx.action_results
    live = json.loads(results["output"])["collectors"]["juju-charm"]["data"]["applications"][kit.APP]["config"]
    for name, value in expected_config().items():
        assert live[name] == value, name
    shown = json.dumps(results) + "\n".join(table_ctx.action_logs)
    shown += "\n".join(line.message for line in table_ctx.juju_log)
    for leak in LEAKS:
        assert leak not in shown and json.dumps(leak)[1:-1] not in shown, leak


def test_a_collector_error_that_quotes_a_secret_reaches_the_action_log_redacted(context, sandbox, charm_root, kit):
    kit.write_collector(
        charm_root / "collectors",
        "leaky",
        """
        from dwellir_harvester.lib import GenericCollector

        class LeakyCollector(GenericCollector):
            NAME = "leaky"

            def collect(self):
                raise RuntimeError("cannot reach https://alice:pa55w0rd@node:9944 (password=pa55w0rd)")
        """,
    )
    ctx = context()
    ctx.run(ctx.on.action("run-collectors", params={"collectors": "leaky"}), kit.state())
    lines = [line for line in ctx.action_logs if line.startswith("leaky: failed: ")]
    assert len(lines) == 1
    assert "pa55w0rd" not in lines[0]


# --- the drop-in: never readable by others when it holds a secret ------------------------------

AUTHED = """
from dwellir_harvester.lib import GenericCollector

class AuthedCollector(GenericCollector):
    NAME = "authed"

    def __init__(self, rpc_url: str = "http://127.0.0.1:8545", rpc_password: str = "", headers=None):
        self.rpc_url, self.rpc_password, self.headers = rpc_url, rpc_password, headers or {}

    def collect(self):
        return {"configured": True}
"""


@pytest.mark.parametrize(
    ("options", "secret"),
    [
        ({"rpc_url": "http://127.0.0.1:8545"}, False),
        ({"rpc_url": "https://alice:pa55w0rd@node:8545"}, True),  # credentials in a value
        ({"rpc_password": "pa55w0rd"}, True),  # a sensitive name
        ({"rpc_password": ""}, True),  # by name, even when empty: the rule errs on the side of hiding
        ({"headers": {"x-api-key": "k"}}, True),  # nested
        ({"headers": {"accept": PEM}}, True),  # key material under a harmless name
        ({"headers": {"accept": "application/json"}}, False),
    ],
)
def test_a_dropin_that_holds_a_secret_is_readable_only_by_the_harvesters_group(
    context, sandbox, charm_root, kit, options, secret
):
    kit.write_collector(charm_root / "collectors", "authed", AUTHED)
    ctx = context(collector_options={"authed": options})
    ctx.run(ctx.on.install(), kit.state())

    st = sandbox.dropin_path(kit.APP).stat()
    if secret:
        assert stat.S_IMODE(st.st_mode) == 0o640
        assert st.st_gid == grp.getgrnam(sandbox.group).gr_gid
    else:
        assert stat.S_IMODE(st.st_mode) == 0o644
    assert sandbox.read_dropin(kit.APP)["collector_options"] == {"authed": options}  # the daemon needs them


@pytest.mark.parametrize("group", [None, "no-such-group-for-dwellir-tests"])
def test_without_the_harvesters_group_a_secret_dropin_is_root_only(context, tmp_path, charm_root, kit, group):
    box = Sandbox(tmp_path / "box", group=group)
    ctx = context(sandbox=box, collector_options={"peers": {"rpc_url": "https://alice:pa55w0rd@node:9944"}})
    ctx.run(ctx.on.install(), kit.state())

    assert stat.S_IMODE(box.dropin_path(kit.APP).stat().st_mode) == 0o600
    warnings = [line.message for line in ctx.juju_log if line.level == "WARNING"]
    assert any("holds a secret" in m and "mode 0600" in m for m in warnings)
    assert not any("pa55w0rd" in line.message for line in ctx.juju_log)


def test_the_mode_follows_the_options_both_ways(context, sandbox, kit):
    path = sandbox.dropin_path(kit.APP)
    for url, mode in (("https://a:b@node:1", 0o640), ("https://node:1", 0o644), ("https://a:c@node:1", 0o640)):
        ctx = context(collector_options={"peers": {"rpc_url": url}})
        ctx.run(ctx.on.config_changed(), kit.state())
        assert stat.S_IMODE(path.stat().st_mode) == mode, url


class GuideCharm(ops.CharmBase):
    """The guide's example: an option from the charm's config, credentials and all."""

    harvester_args: ClassVar[dict[str, Any]] = {}

    def __init__(self, framework: ops.Framework):
        super().__init__(framework)
        options = {"peers": {"rpc_url": str(self.config["rpc-url"])}}
        self.harvester = Harvester(self, collector_options=options, **self.harvester_args)


def test_the_guides_example_keeps_rpc_credentials_from_other_users(sandbox, charm_root, kit):
    charm = subclass(GuideCharm, harvester_args=sandbox.harvester_args())
    with testing.Context(charm, meta=kit.metadata(), charm_root=charm_root) as ctx:
        ctx.run(ctx.on.config_changed(), kit.state(config={"rpc-url": "https://alice:pa55w0rd@node:9944"}))
    mode = stat.S_IMODE(sandbox.dropin_path(kit.APP).stat().st_mode)
    assert mode & 0o007 == 0  # nothing for other users
    assert "pa55w0rd" not in json.dumps(sandbox.read_snapshot(kit.APP))


def test_a_dropin_whose_group_appears_later_is_fixed_and_the_service_reloaded(context, tmp_path, kit):
    """Installed before the harvester: 0600; once its group exists, the next hook makes it 0640 and reloads."""
    options = {"peers": {"rpc_url": "https://alice:pa55w0rd@node:9944"}}
    early = Sandbox(tmp_path / "box", services={"dwellir-harvester": "active"}, group=None)
    ctx = context(sandbox=early, collector_options=options)
    ctx.run(ctx.on.install(), kit.state())
    path = early.dropin_path(kit.APP)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    inode = path.stat().st_ino

    later = Sandbox(tmp_path / "box", services={"dwellir-harvester": "active"})  # the group exists now
    ctx = context(sandbox=later, collector_options=options)
    ctx.run(ctx.on.config_changed(), kit.state())
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.stat().st_ino == inode  # the content was not rewritten
    assert later.systemd.called("service_reload") == [("dwellir-harvester",)]
