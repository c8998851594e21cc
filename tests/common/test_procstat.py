"""common/procstat.py: memory figures of a process from /proc."""

import os
import subprocess
import sys

import numpy as np
import pytest

from common.procstat import peak_rss_bytes, rss_bytes, status_bytes


def test_figures_of_this_process_follow_what_it_touches():
    before = rss_bytes()
    block = np.ones(64 << 20, np.uint8)         # 64 MiB, every page written
    assert rss_bytes() - before > 48 << 20
    assert peak_rss_bytes() >= rss_bytes() >= before
    del block
    got = status_bytes(os.getpid(), "VmRSS", "RssAnon", "NoSuchField")
    assert set(got) == {"VmRSS", "RssAnon"} and got["RssAnon"] <= got["VmRSS"]


def test_another_process_and_one_that_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        assert 0 < rss_bytes(child.pid) <= peak_rss_bytes(child.pid)
    finally:
        child.communicate(b"")
    with pytest.raises(OSError):
        rss_bytes(child.pid)


def test_an_exited_child_not_yet_reaped_reads_zero():
    # A poller sees this between a child's exit and its wait(): the zombie's
    # status file is still there, without memory lines.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)   # exited, left unreaped
    try:
        assert status_bytes(child.pid, "VmHWM", "VmRSS") == {}
        assert peak_rss_bytes(child.pid) == 0 and rss_bytes(child.pid) == 0
    finally:
        child.wait()
