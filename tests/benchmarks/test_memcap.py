"""benchmarks/memcap.py: which memory cgroup a cap can use, and a clear refusal."""

import pytest

from benchmarks import memcap


def test_v1_memory_group_is_found_from_proc_self_cgroup(tmp_path):
    (tmp_path / "memory" / "jobs" / "me").mkdir(parents=True)
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    text = "4:memory:/jobs/me\n3:cpu:/\n0::/\n"
    found = memcap.candidates(tmp_path, text)
    assert found[0][0] == "v2" and found[0][1] is None   # no v2 controllers file here
    assert found[1] == ("v1", tmp_path / "memory" / "jobs" / "me", None)


def test_v2_needs_the_memory_controller_delegated(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory io\n")
    (tmp_path / "me").mkdir()
    (tmp_path / "me" / "cgroup.subtree_control").write_text("cpu\n")
    version, parent, why = memcap.candidates(tmp_path, "0::/me\n")[0]
    assert version == "v2" and parent is None and "not enabled" in why
    (tmp_path / "me" / "cgroup.subtree_control").write_text("cpu memory\n")
    assert memcap.candidates(tmp_path, "0::/me\n")[0] == ("v2", tmp_path / "me", None)


def test_a_cap_must_be_positive():
    with pytest.raises(ValueError, match="must be > 0"):
        memcap.MemoryCap(0)
