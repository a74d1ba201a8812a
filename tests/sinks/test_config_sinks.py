"""The ``sinks`` config: checked strictly in the main file, a bad drop-in left out, fuzzed."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dwellir_harvester.config import ConfigError, load_settings, read_config_file


def _write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_names_paths_and_defaults(tmp_path):
    main = _write(
        tmp_path / "etc" / "config.yaml",
        {
            "spool_dir": "spool",
            "sinks": [
                {"type": "file", "directory": "out"},
                {"type": "s3", "bucket": "b-1", "credentials_file": "c.yaml"},
                {"type": "s3", "bucket": "b-2", "name": "backup"},
            ],
        },
    )
    _write(tmp_path / "etc" / "config.d" / "10-x.yaml", {"sinks": [{"type": "file", "directory": "/srv/out"}]})
    s = load_settings({"config": str(main)})
    assert [(x.name, x.type) for x in s.sinks] == [
        ("file-1", "file"),
        ("s3", "s3"),
        ("backup", "s3"),
        ("file-2", "file"),
    ]
    assert s.sinks[0].settings["directory"] == str(tmp_path / "etc" / "out")
    assert s.sinks[1].settings["credentials_file"] == str(tmp_path / "etc" / "c.yaml")
    assert s.spool_dir == str(tmp_path / "etc" / "spool")
    assert (s.spool_max_documents, s.spool_max_bytes) == (1000, 100 * 1024 * 1024)
    assert load_settings({"config": str(_write(tmp_path / "o" / "config.yaml", {}))}).spool_dir == (
        "/var/lib/dwellir-harvester/spool"
    )


@pytest.mark.parametrize(
    ("sink", "key", "message"),
    [
        ({"type": "s3"}, "sinks.0", "a s3 sink needs 'bucket'"),
        ({"type": "file"}, "sinks.0", "a file sink needs 'directory'"),
        ({"directory": "x"}, "sinks.0", "missing key 'type'"),
        ({"type": "file", "directory": "x", "region": "r"}, "sinks.0.region", "not a key of a file sink"),
        ({"type": "kafka", "brokers": "x"}, "sinks.0.brokers", "under 'options'"),
        ({"type": "s3", "bucket": "bbb", "endpoint_url": "http://k:s@h:9"}, "sinks.0.endpoint_url", "credentials"),
        ({"type": "s3", "bucket": "bbb", "endpoint_url": "ftp://h"}, "sinks.0.endpoint_url", "http(s)://host"),
        ({"type": "s3", "bucket": "bbb", "endpoint_url": "http://h/b"}, "sinks.0.endpoint_url", "no path"),
        ({"type": "s3", "bucket": "bbb", "access_key": "x"}, "sinks.0.access_key", "unknown key"),
        ({"type": "file", "directory": "x", "prefix": "a/../b"}, "sinks.0.prefix", "'..'"),
        ({"type": "file", "directory": "x", "retry_initial": 9, "retry_max": 1}, "sinks.0.retry_max", "retry_initial"),
        ({"type": "file", "directory": "x", "name": "a b"}, "sinks.0.name", "must match"),
    ],
)
def test_a_bad_sink_names_file_and_key_in_the_main_file_and_leaves_a_dropin_out(tmp_path, sink, key, message):
    main = _write(tmp_path / "config.yaml", {"sinks": [sink]})
    with pytest.raises(ConfigError) as caught:
        load_settings({"config": str(main)})
    assert caught.value.file == str(main) and caught.value.key == key and message in str(caught.value)
    assert "\n" not in str(caught.value)
    _write(main, {"sinks": [{"type": "file", "directory": "good"}]})
    bad = _write(tmp_path / "config.d" / "50-bad.yaml", {"sinks": [sink]})
    settings_ = load_settings({"config": str(main)})
    assert [s.name for s in settings_.sinks] == ["file"]
    [problem] = settings_.problems
    assert problem.where == str(bad) and message in problem.problem


def test_a_dropin_sink_named_like_another_is_left_out(tmp_path):
    main = _write(tmp_path / "config.yaml", {"sinks": [{"type": "file", "directory": "a", "name": "x"}]})
    other = _write(tmp_path / "config.d" / "10.yaml", {"sinks": [{"type": "file", "directory": "b", "name": "x"}]})
    s = load_settings({"config": str(main)})
    assert [x.settings["directory"] for x in s.sinks] == [str(tmp_path / "a")]
    assert s.problems[0].where == str(other) and "already configured" in s.problems[0].problem
    _write(
        main,
        {"sinks": [{"type": "file", "directory": "a", "name": "x"}, {"type": "file", "directory": "c", "name": "x"}]},
    )
    with pytest.raises(ConfigError, match="already configured"):
        load_settings({"config": str(main)})


_KEYS = [
    "type",
    "name",
    "prefix",
    "endpoint_url",
    "bucket",
    "region",
    "path_style",
    "credentials_file",
    "directory",
    "options",
    "timeout",
    "retry_initial",
    "retry_max",
    "other",
]
_VALUES = st.one_of(
    st.sampled_from(["s3", "file", "x", "http://127.0.0.1:9", "bkt", "a/b", "..", "", "ftp://h", "http://u:p@h"]),
    st.text(max_size=80),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=8), max_size=3), st.one_of(st.none(), _VALUES)
)
def test_fuzz_sinks_config_is_accepted_whole_or_refused_in_one_line(sinks, spool_dir):
    data = {"sinks": sinks} if spool_dir is None else {"sinks": sinks, "spool_dir": spool_dir}
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.yaml"
        path.write_text(json.dumps(data))
        try:
            checked = read_config_file(path)
        except ConfigError as err:
            assert "\n" not in str(err) and str(path) in str(err)
            return
    for sink in checked["sinks"]:
        assert isinstance(sink["type"], str) and sink["type"]
        if sink["type"] == "s3":
            assert isinstance(sink["bucket"], str)
        if sink["type"] == "file":
            assert isinstance(sink["directory"], str)
        for key in ("timeout", "retry_initial", "retry_max"):
            assert key not in sink or (isinstance(sink[key], (int, float)) and sink[key] > 0)
