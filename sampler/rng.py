"""Inline per-walk random numbers for the kernels.

Each walk owns a 64-bit xorshift state seeded by splitmix64 of (seed, key),
where the key names the walk (its start node and walk number).  A walk's
random stream therefore does not depend on which thread runs it, in which
block or in what order, so results are identical for any thread count.

All arithmetic is uint64 with explicit uint64 shift amounts: numba promotes
uint64 op int64 to float64, which would silently break the generator.
"""

from __future__ import annotations

import numba
import numpy as np


def seed64(seed: int) -> np.uint64:
    """Any Python int as the kernels' uint64 seed; negative ones wrap as C's
    uint64 does, so every int is a valid seed."""
    return np.uint64(int(seed) % 2**64)


@numba.njit(nogil=True, cache=True)
def mix64(z):
    """splitmix64 finaliser: a bijective avalanche of a uint64."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(nogil=True, cache=True)
def walk_state(seed, key, walk):
    """Initial state of walk `walk` keyed by `key`; never zero (xorshift's fixed point)."""
    z = mix64(np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(key))
    z = mix64(z + (np.uint64(walk) + np.uint64(1)) * np.uint64(0xD1B54A32D192ED03))
    return z | np.uint64(1)


@numba.njit(nogil=True, cache=True)
def advance(s):
    """xorshift64 (13, 7, 17): one multiply-free step of the walk's stream."""
    s = np.uint64(s)
    s ^= s << np.uint64(13)
    s ^= s >> np.uint64(7)
    s ^= s << np.uint64(17)
    return s


@numba.njit(nogil=True, cache=True)
def below(s, n):
    """An integer in [0, n) from the state's high 32 bits (multiply-shift,
    bias < n / 2**32, negligible for degrees below a few million)."""
    s = np.uint64(s)
    return np.int64(((s >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@numba.njit(nogil=True, cache=True)
def unit(s):
    """A float in [0, 1) from the state's high 53 bits."""
    s = np.uint64(s)
    return np.float64(s >> np.uint64(11)) * (1.0 / 9007199254740992.0)
