"""dwellir_harvester.lib.files: bounded reads, writes only when the content changes, durable removal."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from dwellir_harvester.lib import files
from dwellir_harvester.lib.files import read_bytes, remove, write_if_changed


def identity(path):
    """What a rewrite changes: the inode and the mtime."""
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


# --- read_bytes --------------------------------------------------------------------------------


def test_read_bytes_returns_the_content_or_none_when_missing(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_bytes(b"collectors: [peers]\n")
    assert read_bytes(path) == b"collectors: [peers]\n"
    assert read_bytes(tmp_path / "missing.yaml") is None
    assert read_bytes(path / "below-a-file") is None  # a "directory" that is a file: nothing there
    link = tmp_path / "link.yaml"
    link.symlink_to(path)
    assert read_bytes(link) == b"collectors: [peers]\n"


def test_read_bytes_refuses_a_directory_with_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=rf"^{tmp_path} is a directory, not a regular file$"):
        read_bytes(tmp_path)


def test_read_bytes_refuses_a_fifo_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            read_bytes(fifo)
        except BaseException as err:  # handed to the test thread
            outcome.append(err)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # it blocks in open(): free it before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("read_bytes waited for a writer on a FIFO")
    assert len(outcome) == 1 and isinstance(outcome[0], ValueError)
    assert str(outcome[0]) == f"{fifo} is a FIFO, not a regular file"


def test_read_bytes_refuses_a_file_past_the_limit(tmp_path):
    path = tmp_path / "big"
    path.write_bytes(b"x" * 101)
    assert read_bytes(path, limit=101) == b"x" * 101
    with pytest.raises(ValueError, match=r"big holds 101 bytes, more than the limit of 100$"):
        read_bytes(path, limit=100)


def test_read_bytes_default_limit_is_bounded(tmp_path):
    path = tmp_path / "sparse"
    with open(path, "wb") as f:
        f.truncate(files.READ_LIMIT + 1)  # sparse: no real disk use
    with pytest.raises(ValueError, match="more than the limit"):
        read_bytes(path)


# --- write_if_changed ----------------------------------------------------------------------------


def test_write_if_changed_writes_a_new_file_with_its_mode_and_creates_the_directory(tmp_path):
    path = tmp_path / "config.d" / "app.yaml"
    assert write_if_changed(path, b"a: 1\n", 0o640) is True
    assert path.read_bytes() == b"a: 1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o755 & ~current_umask()
    assert sorted(p.name for p in path.parent.iterdir()) == ["app.yaml"]  # no temporary file left


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_write_if_changed_leaves_the_same_content_alone_and_only_fixes_the_mode(tmp_path):
    path = tmp_path / "app.yaml"
    write_if_changed(path, b"a: 1\n", 0o644)
    before = identity(path)

    assert write_if_changed(path, b"a: 1\n", 0o644) is False
    assert identity(path) == before

    assert write_if_changed(path, b"a: 1\n", 0o600) is False  # a mode change is no rewrite
    assert identity(path)[0] == before[0]
    assert path.read_bytes() == b"a: 1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_if_changed_replaces_different_content_atomically(tmp_path):
    path = tmp_path / "app.yaml"
    write_if_changed(path, b"a: 1\n", 0o644)
    inode = path.stat().st_ino
    assert write_if_changed(path, b"a: 2\n", 0o644) is True
    assert path.read_bytes() == b"a: 2\n"
    assert path.stat().st_ino != inode  # a new file renamed over the old one, never a partial write
    assert write_if_changed(path, b"a: 22\n", 0o644) is True  # same prefix, other length


def test_write_if_changed_sets_the_group(tmp_path):
    path = tmp_path / "app.yaml"
    gid = os.getgid()
    assert write_if_changed(path, b"a\n", 0o640, gid) is True
    assert path.stat().st_gid == gid
    assert write_if_changed(path, b"a\n", 0o640, gid) is False


def test_fixing_the_group_never_widens_access_in_between(tmp_path, monkeypatch):
    """chown to another group needs privileges: record the mode the file has when chown runs."""
    path = tmp_path / "app.yaml"
    write_if_changed(path, b"secret-free but private\n", 0o644)
    seen = []
    monkeypatch.setattr(files.os, "chown", lambda p, uid, gid: seen.append((gid, stat.S_IMODE(os.stat(p).st_mode))))

    assert write_if_changed(path, b"secret-free but private\n", 0o640, 4242) is False
    assert seen == [(4242, 0o640 & 0o644)]  # narrowed before the group changed
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_write_if_changed_over_a_directory_fails_and_leaves_no_temporary_file(tmp_path):
    (tmp_path / "app.yaml").mkdir()
    with pytest.raises(IsADirectoryError):
        write_if_changed(tmp_path / "app.yaml", b"a\n", 0o644)
    assert [p.name for p in tmp_path.iterdir()] == ["app.yaml"]


# --- remove --------------------------------------------------------------------------------------


def test_remove_says_whether_there_was_a_file(tmp_path):
    path = tmp_path / "app.yaml"
    path.write_text("a\n")
    assert remove(path) is True
    assert not path.exists()
    assert remove(path) is False


def test_remove_takes_a_link_away_not_its_target(tmp_path):
    target = tmp_path / "target"
    target.write_text("kept\n")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert remove(link) is True
    assert target.read_text() == "kept\n"


def test_remove_refuses_a_directory(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OSError):
        remove(tmp_path / "d")
    assert (tmp_path / "d").is_dir()
