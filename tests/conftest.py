"""Shared fixtures.  Tests run with one numba/BLAS thread unless they say otherwise."""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture
def vm_flags():
    """vm_flags(path): the VmFlags of this process's mapping of a file
    (/proc/self/smaps), e.g. "rr" for MADV_RANDOM."""
    from pathlib import Path

    def flags(path) -> list[str]:
        lines = Path("/proc/self/smaps").read_text().splitlines()
        for i, line in enumerate(lines):
            if line.endswith(str(path)):
                for follow in lines[i + 1:]:
                    if follow.startswith("VmFlags:"):
                        return follow.split()[1:]
        raise AssertionError(f"{path} is not mapped")
    return flags
