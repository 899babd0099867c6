"""tfrecords_builder.contract.files: files appear whole or not at all, temporaries of killed writers go, one writer per folder."""

import json
import os
import subprocess
import sys

import pytest

from tfrecords_builder.contract import files
from tfrecords_builder.contract.errors import InputError


def test_a_temporary_names_its_owner_and_keeps_the_suffix(tmp_path):
    path = files.temporary_path(tmp_path / "generator.keras", pid=42, host="node-7")
    assert path == tmp_path / ".generator.node-7.42.part.keras"
    match = files.TEMPORARY_RE.match(path.name)
    assert (match["stem"], match["host"], match["pid"], match["suffix"]) == ("generator", "node-7", "42", ".keras")
    folder = files.temporary_path(tmp_path / "1")  # a SavedModel version folder: TF Serving ignores the name
    assert files.TEMPORARY_RE.match(folder.name)["pid"] == str(os.getpid()) and not folder.name.isdigit()


def test_publishing_replaces_the_file_only_when_the_block_succeeds(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("old")
    with pytest.raises(OSError, match="disk full"):
        with files.publishing(path) as temporary:
            temporary.write_text("half")
            raise OSError("disk full")
    assert path.read_text() == "old" and list(tmp_path.iterdir()) == [path]
    files.write_json(path, {"b": 1, "a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2], "b": 1}
    assert path.read_text().index('"a"') < path.read_text().index('"b"')  # keys sorted
    assert list(tmp_path.iterdir()) == [path]


def test_publishing_a_folder(tmp_path):
    target = tmp_path / "export"
    with files.publishing(target) as temporary:
        (temporary / "variables").mkdir(parents=True)
        (temporary / "variables" / "data").write_bytes(b"123")
    assert (target / "variables" / "data").read_bytes() == b"123"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_an_interrupt_leaves_no_temporary(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with files.publishing(tmp_path / "a.nc") as temporary:
            temporary.write_bytes(b"x")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_are_those_of_gone_processes_of_this_host(tmp_path, dead_pid, live_pid):
    stale = [files.temporary_path(tmp_path / name, pid=dead_pid) for name in ("generator.keras", "train.tfrecord.gz")]
    stale.append(files.temporary_path(tmp_path / "1", pid=dead_pid))
    stale[-1].mkdir()
    kept = [
        files.temporary_path(tmp_path / "best.json", pid=live_pid),
        files.temporary_path(tmp_path / "best.json"),  # this process's
        files.temporary_path(tmp_path / "best.json", pid=dead_pid, host=f"other-{files.host_tag()}"),
        tmp_path / ".notes.txt.tmp",  # not a temporary of this project
        tmp_path / "generator.keras",
    ]
    for path in stale[:-1] + kept:
        path.write_text("x")
    assert sorted(files.remove_stale(tmp_path)) == sorted(stale)
    assert sorted(tmp_path.iterdir()) == sorted(kept)


def test_a_second_writer_is_refused_and_a_dead_ones_lock_is_taken_over(tmp_path, dead_pid, caplog):
    with files.FolderLock(tmp_path / "run", command="fit") as lock:
        owner = files.read_lock(tmp_path / "run")
        assert owner["pid"] == os.getpid() and owner["command"] == "fit"
        # Another process asks for it: refused at once, naming the owner.
        probe = (
            "import sys; from tfrecords_builder.contract import files\n"
            "try:\n    files.FolderLock(sys.argv[1]).acquire()\nexcept files.FolderBusy as err:\n    print(err)"
        )
        said = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "run")], capture_output=True, text=True)
        assert f"is in use by process {os.getpid()} since {owner['since']}" in said.stdout, said.stderr
    assert not lock.path.exists()
    assert not (tmp_path / "run").exists()  # made by the lock and left empty: removed with it
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / files.LOCK_NAME).write_text(json.dumps({"host": files.host_tag(), "pid": dead_pid}))
    with caplog.at_level("INFO", logger="tfrecords_builder"), files.FolderLock(tmp_path / "run"):
        assert files.read_lock(tmp_path / "run")["pid"] == os.getpid()
    assert f"from process {dead_pid}, which is gone" in caplog.text
    assert issubclass(files.FolderBusy, InputError)


def test_a_lock_of_another_host_is_trusted(tmp_path):
    (tmp_path / files.LOCK_NAME).write_text(json.dumps({"host": "elsewhere", "pid": 1, "since": "2026-12-01T00:00:00"}))
    with pytest.raises(files.FolderBusy, match="in use by process 1 on host elsewhere since 2026-12-01"):
        files.FolderLock(tmp_path).acquire()


def test_checksum_against_hashlib(tmp_path):
    import hashlib

    data = os.urandom(3 << 20)  # three read chunks
    (tmp_path / "blob").write_bytes(data)
    assert files.sha256_of(tmp_path / "blob") == hashlib.sha256(data).hexdigest()
