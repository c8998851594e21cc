"""Shared fixtures.  Tests run with one numba/BLAS thread unless they say otherwise."""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "1")
