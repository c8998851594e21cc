import errno
import logging
import os

import pytest
import torch

from gpu_consumer import checkpoint
from gpu_consumer.checkpoint import CorruptCheckpoint, list_checkpoints, load_latest, save


def state(step):
    return {"step": step, "model": {"w": torch.full((3, 2), float(step))},
            "config": {"trainer": {"lr": 0.001, "schedule": [0, 1]}},
            "cursor": {"epoch": 1, "done": [1, 2, 3]}, "note": "plain"}


def test_round_trip_plain_data_and_tensors(tmp_path):
    path = save(tmp_path, state(7))
    assert path.name == "checkpoint-000000007.pt"
    back = load_latest(tmp_path)
    assert back["step"] == 7 and back["cursor"] == {"epoch": 1, "done": [1, 2, 3]}
    assert torch.equal(back["model"]["w"], torch.full((3, 2), 7.0))
    assert back["config"]["trainer"]["schedule"] == [0, 1]


def test_empty_run_dir_has_no_checkpoint(tmp_path):
    assert load_latest(tmp_path) is None


def test_keeps_only_the_newest_n(tmp_path):
    for step in range(1, 6):
        save(tmp_path, state(step), keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == [
        "checkpoint-000000004.pt", "checkpoint-000000005.pt"]


@pytest.mark.parametrize("damage", ["truncate", "flip", "empty", "garbage"])
def test_damaged_newest_falls_back_to_previous_with_a_warning(tmp_path, caplog, damage):
    save(tmp_path, state(1))
    newest = save(tmp_path, state(2))
    data = newest.read_bytes()
    if damage == "truncate":
        newest.write_bytes(data[:len(data) // 2])
    elif damage == "flip":
        newest.write_bytes(data[:-100] + bytes([data[-100] ^ 0xFF]) + data[-99:])
    elif damage == "empty":
        newest.write_bytes(b"")
    else:
        newest.write_bytes(b"\x80\x04not a checkpoint")
    with caplog.at_level(logging.WARNING):
        back = load_latest(tmp_path)
    assert back["step"] == 1
    assert "checkpoint-000000002.pt" in caplog.text
    assert "falling back to the older intact checkpoint" in caplog.text
    assert "checkpoint-000000001.pt" in caplog.text  # says which one it used


def test_only_checkpoint_damaged_refuses_naming_the_file_and_the_fix(tmp_path):
    only = save(tmp_path, state(5))
    only.write_bytes(only.read_bytes()[:50])
    with pytest.raises(checkpoint.NoIntactCheckpoint) as err:
        load_latest(tmp_path)
    assert "checkpoint-000000005.pt" in str(err.value) and "--fresh" in str(err.value)


def test_set_aside_moves_every_checkpoint_and_deletes_none(tmp_path):
    assert checkpoint.set_aside(tmp_path) is None
    save(tmp_path, state(1))
    damaged = save(tmp_path, state(2))
    damaged.write_bytes(b"junk")
    dest = checkpoint.set_aside(tmp_path)
    assert sorted(p.name for p in dest.iterdir()) == ["checkpoint-000000001.pt",
                                                       "checkpoint-000000002.pt"]
    assert (dest / "checkpoint-000000002.pt").read_bytes() == b"junk"
    assert list_checkpoints(tmp_path) == [] and load_latest(tmp_path) is None


def test_a_checkpoint_replaced_keeps_its_mode(tmp_path):
    path = tmp_path / "f.pt"
    checkpoint.write_atomically(path, b"one")
    os.chmod(path, 0o600)
    checkpoint.write_atomically(path, b"two")
    assert path.read_bytes() == b"two" and (os.stat(path).st_mode & 0o777) == 0o600


def test_a_streamed_checkpoint_is_the_encoded_bytes(tmp_path):
    """save() streams torch.save into the file and writes the digest in place
    afterwards; the file is byte for byte what encode() gives, and decodes."""
    big = {"step": 4, "w": torch.arange(300_000, dtype=torch.float32), "meta": {"a": [1, 2]}}
    path = save(tmp_path, big)
    data = path.read_bytes()
    assert data == checkpoint.encode(big)
    back = checkpoint.decode(data, str(path))
    assert torch.equal(back["w"], big["w"]) and back["meta"] == {"a": [1, 2]}
    flipped = bytearray(data)
    flipped[-100] ^= 1
    with pytest.raises(CorruptCheckpoint, match="checksum"):
        checkpoint.decode(bytes(flipped), str(path))


def test_write_atomically_takes_a_writer(tmp_path):
    path = tmp_path / "f.bin"
    checkpoint.write_atomically(path, lambda f: (f.write(b"abc"), f.write(memoryview(b"de"))))
    assert path.read_bytes() == b"abcde"

    def half_then_fail(f):
        f.write(b"half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError, match="writer failed"):
        checkpoint.write_atomically(path, half_then_fail)
    assert path.read_bytes() == b"abcde" and sorted(tmp_path.iterdir()) == [path]


def test_full_disk_during_write_leaves_previous_intact(tmp_path, monkeypatch):
    save(tmp_path, state(1))
    calls = {"n": 0}
    real = checkpoint._write_chunk

    def fail_after_first(fd, data):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data[:1000])  # a partial write first, as a nearly full disk does

    monkeypatch.setattr(checkpoint, "_write_chunk", fail_after_first)
    with pytest.raises(OSError, match="No space"):
        save(tmp_path, state(2))
    monkeypatch.undo()
    folder = checkpoint.checkpoint_dir(tmp_path)
    assert [p.name for p in folder.iterdir()] == ["checkpoint-000000001.pt"]  # no temp left
    assert load_latest(tmp_path)["step"] == 1


class Evil:
    """Any class: loading it back would mean unpickling arbitrary code."""


def test_arbitrary_objects_are_refused(tmp_path):
    path = save(tmp_path, {"step": 3, "obj": Evil()})
    with pytest.raises(CorruptCheckpoint, match="does not load"):
        checkpoint.decode(path.read_bytes(), str(path))


def test_a_writer_killed_mid_write_leaves_no_temp_file_past_the_next_save(tmp_path):
    import subprocess
    import sys
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    folder = checkpoint.checkpoint_dir(tmp_path)
    folder.mkdir(parents=True)
    orphan = folder / f".checkpoint-000000007.pt.tmp-{int(dead.stdout)}"  # kill -9's leftover
    orphan.write_bytes(b"half a checkpoint")
    live = folder / f".checkpoint-000000008.pt.tmp-{os.getpid()}"  # a writer still running
    live.write_bytes(b"being written")
    save(tmp_path, state(9))
    assert not orphan.exists() and live.exists()
    assert load_latest(tmp_path)["step"] == 9
