"""File-based service discovery: Prometheus's format, atomic replacement."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitoring.discovery import DiscoveryError, read_sd_file, write_sd_file


def test_writes_prometheus_file_sd_format(tmp_path):
    path = tmp_path / "sd" / "producers.json"
    write_sd_file(path, ["127.0.0.1:9761", ("127.0.0.1", 9760)], labels={"cluster": "a"})
    assert json.loads(path.read_text()) == [
        {"targets": ["127.0.0.1:9760", "127.0.0.1:9761"], "labels": {"cluster": "a"}}]
    assert read_sd_file(path) == [("127.0.0.1:9760", {"cluster": "a"}),
                                  ("127.0.0.1:9761", {"cluster": "a"})]


def test_empty_target_list_and_missing_file(tmp_path):
    path = tmp_path / "producers.json"
    assert read_sd_file(path) == []
    write_sd_file(path, [])
    assert json.loads(path.read_text()) == []
    assert list(tmp_path.iterdir()) == [path], "temp file left behind"


@given(st.lists(st.integers(1, 65535), max_size=20))
def test_round_trip(ports):
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/sd.json"
        write_sd_file(path, [("127.0.0.1", p) for p in ports])
        assert [t for t, _ in read_sd_file(path)] == sorted(f"127.0.0.1:{p}" for p in set(ports))


def test_readers_never_see_a_partial_file(tmp_path):
    path = tmp_path / "producers.json"
    write_sd_file(path, [("127.0.0.1", 1)])
    stop = threading.Event()

    def writer():
        n = 0
        while not stop.is_set():
            n += 1
            write_sd_file(path, [("127.0.0.1", p) for p in range(1, 2 + n % 300)])
    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(300):
            assert len(read_sd_file(path)) >= 1  # raises DiscoveryError on a torn read
    finally:
        stop.set()
        thread.join()


@pytest.mark.parametrize("bad", ["localhost", ":9760", "host:port"])
def test_bad_target_is_named(tmp_path, bad):
    with pytest.raises(DiscoveryError, match="expected host:port"):
        write_sd_file(tmp_path / "sd.json", [bad])


def test_corrupt_file_is_reported(tmp_path):
    path = tmp_path / "sd.json"
    path.write_text("{not json")
    with pytest.raises(DiscoveryError, match="sd.json: not a Prometheus file-SD"):
        read_sd_file(path)
