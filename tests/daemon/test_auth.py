"""Auth in every variant, against the real daemon; and a token file that cannot be trusted stops it."""

from __future__ import annotations

import json
import re
import signal
import socket
import threading

import pytest

from .conftest import exchange, statuses

SECRET_A, SECRET_B, REVOKED = "tok-alpha-7f3c9d", "tok-bravo-91e2aa", "tok-revoked-55d0"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def write_token_file(path, entries, mode=0o600, as_yaml=False):
    if as_yaml:
        import yaml

        path.write_text(yaml.safe_dump(entries))
    else:
        path.write_text(json.dumps(entries))
    path.chmod(mode)
    return path


def assert_refused(daemon, path, headers):
    reply = daemon.request(path, headers=headers)
    assert reply.status == 401, (path, headers, reply.body)
    assert reply.headers["www-authenticate"].startswith("Bearer")
    body = reply.json()
    assert body["error"] == "unauthorized"
    return reply


def test_no_tokens_means_open(start_daemon):
    daemon = start_daemon("--collectors", "null")
    assert daemon.wait_document().status == 200
    assert daemon.request("/metrics").status == 200


def test_single_token_guards_metadata_and_metrics_but_not_healthz(start_daemon):
    daemon = start_daemon("--collectors", "null", "--auth-token", SECRET_A)
    daemon.wait_document(headers=bearer(SECRET_A))
    for path in ("/metadata", "/metrics"):
        assert_refused(daemon, path, {})
        assert_refused(daemon, path, bearer("wrong"))
        assert daemon.request(path, headers=bearer(SECRET_A)).status == 200
        assert daemon.request(path, headers={"X-Auth-Token": SECRET_A}).status == 200
    assert daemon.request("/healthz").status == 200
    assert daemon.request("/healthz").body == b"ok\n"
    assert SECRET_A not in daemon.log


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer    "},
        {"Authorization": f"Basic {SECRET_A}"},
        {"Authorization": SECRET_A},
        {"Authorization": f"Token {SECRET_A}"},
        {"X-Auth-Token": ""},
        {"Authorization": f"Bearer {SECRET_A}x"},
        {"Authorization": f"Bearer {SECRET_A[:-1]}"},
    ],
)
def test_malformed_headers_and_wrong_schemes_are_refused(start_daemon, headers):
    daemon = start_daemon("--collectors", "null", "--auth-token", SECRET_A)
    assert_refused(daemon, "/metadata", headers)


def test_scheme_is_case_insensitive(start_daemon):
    daemon = start_daemon("--collectors", "null", "--auth-token", SECRET_A)
    daemon.wait_document(headers={"Authorization": f"bearer {SECRET_A}"})


def test_tokens_from_flags_env_config_and_file_all_count(start_daemon, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("auth_tokens: [tok-from-config]\n")
    config.chmod(0o600)
    token_file = write_token_file(tmp_path / "tokens.json", [{"token": "tok-from-file", "label": "ci"}])
    daemon = start_daemon(
        "--collectors",
        "null",
        "--config",
        str(config),
        "--auth-token",
        "tok-from-flag",
        "--auth-token-file",
        str(token_file),
        env={"DAEMON_AUTH_TOKENS": "tok-from-env-1, tok-from-env-2"},
    )
    daemon.wait_document(headers=bearer("tok-from-flag"))
    for token in ("tok-from-config", "tok-from-file", "tok-from-env-1", "tok-from-env-2"):
        assert daemon.request("/metadata", headers=bearer(token)).status == 200, token
    assert_refused(daemon, "/metadata", bearer("tok-from-nowhere"))


def test_token_file_labels_revocation_and_logs(start_daemon, tmp_path):
    token_file = write_token_file(
        tmp_path / "tokens.yaml",
        [
            {"token": SECRET_A, "label": "grafana", "enabled": True},
            {"token": SECRET_B, "label": "inventory"},
            {"token": REVOKED, "label": "old-laptop", "enabled": False},
        ],
        as_yaml=True,
    )
    daemon = start_daemon("--collectors", "null", "--auth-token-file", str(token_file), "--log-level", "DEBUG")
    daemon.wait_document(headers=bearer(SECRET_A))
    assert daemon.request("/metadata", headers=bearer(SECRET_B)).status == 200
    reply = assert_refused(daemon, "/metadata", bearer(REVOKED))
    assert b"old-laptop" not in reply.body  # a 401 never reveals a label
    # The log names both (its lines reach the test through a pipe, so they may trail the replies).
    daemon.wait_for(lambda: "revoked token (label old-laptop)" in daemon.log, what="the revocation log line")
    daemon.wait_for(lambda: "by inventory" in daemon.log, what="the access log line")
    for secret in (SECRET_A, SECRET_B, REVOKED):
        assert secret not in daemon.log


def test_sighup_reloads_tokens_and_a_bad_token_file_keeps_the_old_ones(start_daemon, tmp_path):
    token_file = write_token_file(tmp_path / "tokens.json", [{"token": SECRET_A, "label": "a"}])
    daemon = start_daemon("--collectors", "null", "--auth-token-file", str(token_file))
    daemon.wait_document(headers=bearer(SECRET_A))

    write_token_file(
        token_file, [{"token": SECRET_B, "label": "b"}, {"token": SECRET_A, "label": "a", "enabled": False}]
    )
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda: daemon.request("/metadata", headers=bearer(SECRET_B)).status == 200, what="new token")
    assert_refused(daemon, "/metadata", bearer(SECRET_A))

    token_file.write_text("[]")  # no enabled token: the reload fails, B keeps working
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda: "reload failed" in daemon.log, what="the failed reload")
    assert daemon.request("/metadata", headers=bearer(SECRET_B)).status == 200


@pytest.mark.parametrize(
    ("content", "mode", "expected"),
    [
        (None, 0o600, "does not exist"),
        ("{not json: [", 0o600, "neither JSON nor YAML"),
        ('{"token": "abc"}', 0o600, "expected a list"),
        ("[]", 0o600, "no enabled token"),
        ("", 0o600, "expected a list"),
        ('[{"token": "abc", "enabled": false}]', 0o600, "no enabled token"),
        ('[{"token": "abc", "enabled": "false"}]', 0o600, "enabled must be true or false"),
        ('[{"token": ""}]', 0o600, "token must be a non-empty string"),
        ('[{"token": "abc", "lable": "x"}]', 0o600, "unknown key 'lable'"),
        ('["abc"]', 0o600, "expected a mapping"),
        ('[{"token": "abc"}]', 0o644, "readable by every user"),
        ('[{"token": "abc"}]', 0o602, "cannot be trusted"),  # any user could add a token
        ('[{"token": "abc"}]', 0o622, "cannot be trusted"),
    ],
)
def test_untrustworthy_token_file_stops_startup(run_cli, tmp_path, content, mode, expected):
    token_file = tmp_path / "tokens.json"
    if content is not None:
        token_file.write_text(content)
        token_file.chmod(mode)
    result = run_cli(
        "serve", "--port", "0", "--output", "", "--collectors", "null", "--auth-token-file", str(token_file)
    )
    assert result.returncode == 2, result
    assert str(token_file) in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert "listening" not in result.stderr


def test_token_file_from_environment_is_checked_too(run_cli, tmp_path):
    token_file = tmp_path / "tokens.json"
    token_file.write_text("{}")
    token_file.chmod(0o600)
    result = run_cli(
        "serve", "--port", "0", "--output", "", "--collectors", "null", env={"DAEMON_AUTH_TOKEN_FILE": str(token_file)}
    )
    assert result.returncode == 2
    assert str(token_file) in result.stderr


def test_token_file_that_is_a_directory_stops_startup(run_cli, tmp_path):
    result = run_cli("serve", "--port", "0", "--output", "", "--auth-token-file", str(tmp_path))
    assert result.returncode == 2
    assert "not a regular file" in result.stderr


def test_a_token_file_in_a_directory_other_users_can_write_stops_startup(run_cli, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    token_file = write_token_file(shared / "tokens.json", [{"token": SECRET_A}])
    shared.chmod(0o777)  # anyone could replace the file (no sticky bit)
    result = run_cli("serve", "--port", "0", "--output", "", "--auth-token-file", str(token_file))
    assert result.returncode == 2, result
    assert "cannot be trusted" in result.stderr and str(shared) in result.stderr
    assert "listening" not in result.stderr


def test_a_reload_keeps_the_old_tokens_when_the_token_file_became_writable_by_others(start_daemon, tmp_path):
    token_file = write_token_file(tmp_path / "tokens.json", [{"token": SECRET_A, "label": "a"}])
    daemon = start_daemon("--collectors", "null", "--auth-token-file", str(token_file))
    daemon.wait_document(headers=bearer(SECRET_A))
    write_token_file(token_file, [{"token": SECRET_B, "label": "intruder"}], mode=0o602)
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda: "reload failed" in daemon.log, what="the refused reload")
    assert "cannot be trusted" in daemon.log
    assert daemon.request("/metadata", headers=bearer(SECRET_A)).status == 200
    assert_refused(daemon, "/metadata", bearer(SECRET_B))


# --- credentials never reach the log -------------------------------------------------------------

CREDENTIAL = "tok-c0ffee-d00d-7a11"
PIECES = (CREDENTIAL[:7], CREDENTIAL[4:12], CREDENTIAL[-7:], "c0ffee", "d00d")


@pytest.mark.parametrize(
    "fields",
    [
        [f"Authorization: {CREDENTIAL}", f"Authorization: Bearer\t{CREDENTIAL}", f"Authorization: Bearer{CREDENTIAL}"],
        [f"Authorization: Basic {CREDENTIAL}", f"Authorization: {CREDENTIAL} Bearer", f"X-Auth-Token: {CREDENTIAL}"],
        [f"Authorization: bearer  {CREDENTIAL}", f"Authorization: Token {CREDENTIAL}"],
    ],
)
def test_no_part_of_a_credential_field_is_ever_logged(start_daemon, fields):
    daemon = start_daemon("--collectors", "null", "--auth-token", SECRET_A, "--log-level", "DEBUG")
    for field in fields:
        reply = exchange(
            daemon.port, f"GET /metadata HTTP/1.1\r\nHost: x\r\n{field}\r\nConnection: close\r\n\r\n".encode()
        )
        assert statuses(reply) == [401], (field, reply)
    daemon.wait_for(lambda: daemon.count("refused GET /metadata") >= len(fields), what="the refusal lines")
    for piece in PIECES:
        assert piece not in daemon.log, piece
    assert "malformed Authorization header" in daemon.log or "unsupported Authorization scheme" in daemon.log


# --- refusals: a summary line per interval, counts in /metrics -----------------------------------


def test_refusals_are_rate_limited_in_the_log_and_counted_in_metrics(start_daemon):
    daemon = start_daemon(limits={"log_interval": 1.0}, flags={"collectors": ["null"], "auth_tokens": [SECRET_A]})
    daemon.wait_document(headers=bearer(SECRET_A))
    count = 10_000
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sender = threading.Thread(
            target=sock.sendall, args=(b"GET /metadata HTTP/1.1\r\nHost: x\r\n\r\n" * count,), daemon=True
        )
        sender.start()
        received = b""
        while received.count(b" 401 ") < count:
            chunk = sock.recv(1 << 20)
            assert chunk, "the connection closed early"
            received += chunk
        sender.join(5)
    key = ("dwellir_harvester_http_refused_requests_total", (("reason", "no_token"),))
    daemon.wait_for(lambda: daemon.metrics(headers=bearer(SECRET_A)).get(key) == count, what="the refusal count")
    daemon.wait_for(lambda: "in the last" in daemon.log, what="the summary line")
    # The first 5 refusals of an interval are logged one by one, then one summary line per interval
    # counts them all by reason and client (the requests may straddle two intervals).
    assert 5 <= daemon.count("refused GET /metadata") <= 10
    summarized = [
        int(n) for n in re.findall(r"refused (\d+) request\(s\) \(no token: \1 from 127\.0\.0\.1\)", daemon.log)
    ]
    assert 1 <= len(summarized) <= 2 and count - 10 <= sum(summarized) <= count, summarized
    assert len(daemon.log) < 5000  # 10,000 refusals used to write 1.1 MB of log


# --- auth cannot be switched off by a reload, unless the main config says so ----------------------


def test_a_reload_that_would_turn_auth_off_is_refused_unless_the_main_config_allows_it(start_daemon, tmp_path):
    etc = tmp_path / "etc"
    (etc / "config.d").mkdir(parents=True)
    config = etc / "config.yaml"
    config.write_text("collectors: ['null']\n")
    token_file = write_token_file(tmp_path / "tokens.json", [{"token": SECRET_A, "label": "a"}])
    dropin = etc / "config.d" / "20-charm.yaml"
    dropin.write_text(f"auth_token_file: {token_file}\n")
    daemon = start_daemon("--config", str(config))
    daemon.wait_document(headers=bearer(SECRET_A))

    dropin.unlink()  # the drop-in that named the token file disappears
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda: "reload refused" in daemon.log, what="the refused reload")
    assert "ERROR" in next(line for line in daemon.lines if "reload refused" in line)
    assert "would turn auth off" in daemon.log and str(config) in daemon.log
    assert_refused(daemon, "/metadata", {})
    assert daemon.request("/metadata", headers=bearer(SECRET_A)).status == 200

    (etc / "config.d" / "30-sneaky.yaml").write_text("auth: optional\n")  # a drop-in cannot allow it
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda: daemon.count("reload refused") == 2, what="the second refused reload")
    assert_refused(daemon, "/metadata", {})

    config.write_text("collectors: ['null']\nauth: optional\n")  # the main config can
    daemon.signal(signal.SIGHUP)
    daemon.wait_for(lambda: daemon.request("/metadata").status == 200, what="auth to be off")
    assert "auth is off" in daemon.log
    samples = daemon.metrics()
    assert samples[("dwellir_harvester_config_reloads_total", (("result", "failed"),))] == 2
    assert samples[("dwellir_harvester_config_reloads_total", (("result", "ok"),))] == 1


def test_auth_required_refuses_to_start_without_a_token(run_cli, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("auth: required\n")
    result = run_cli("serve", "--port", "0", "--output", "", "--collectors", "null", "--config", str(config))
    assert result.returncode == 2, result
    assert "'auth'" in result.stderr and "no token" in result.stderr
