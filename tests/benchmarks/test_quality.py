"""benchmarks/quality.py: the seeds and the run-to-run spread across them."""

import argparse

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from benchmarks.quality import MODES, seed_list, seed_spread


def _run(all_items: float, beyond: float, se: float = 0.004) -> dict:
    return {"all_items": {"hr@10": all_items, "hr@10_se": se},
            "beyond_neighbours": {"hr@10": beyond, "hr@10_se": 2 * se}}


def test_seeds_parse_and_bad_lists_say_what_is_expected():
    assert seed_list("0,1,2") == (0, 1, 2)
    assert seed_list("7") == (7,)
    for bad in ("", "a", "1,1", "-1", "0,,1"):
        with pytest.raises(argparse.ArgumentTypeError, match="seeds"):
            seed_list(bad)


def test_spread_of_three_runs():
    runs = {"0": _run(0.06, 0.24), "1": _run(0.05, 0.26), "2": _run(0.07, 0.25)}
    spread = seed_spread(runs)
    assert spread["all_items"]["hr@10_mean"] == pytest.approx(0.06)
    assert spread["all_items"]["hr@10_run_sd"] == pytest.approx(0.01)
    assert spread["all_items"]["hr@10_mean_se"] == pytest.approx(0.01 / np.sqrt(3), abs=1e-5)
    assert spread["all_items"]["hr@10_pair_se"] == pytest.approx(0.004)
    assert spread["beyond_neighbours"]["hr@10_mean"] == pytest.approx(0.25)
    assert spread["beyond_neighbours"]["hr@10_pair_se"] == pytest.approx(0.008)


def test_one_run_has_no_spread():
    spread = seed_spread({"3": _run(0.06, 0.24)})
    assert spread["all_items"]["hr@10_run_sd"] == 0.0
    assert spread["all_items"]["hr@10_mean"] == pytest.approx(0.06)


@settings(max_examples=50, deadline=None)
@given(hits=st.lists(st.floats(0, 1), min_size=2, max_size=8), shift=st.floats(-0.5, 0.5))
def test_spread_moves_with_a_shift_and_its_sd_does_not(hits, shift):
    runs = {str(i): _run(h, h) for i, h in enumerate(hits)}
    moved = {str(i): _run(h + shift, h + shift) for i, h in enumerate(hits)}
    a, b = seed_spread(runs), seed_spread(moved)
    for mode, _ in MODES:
        assert b[mode]["hr@10_mean"] == pytest.approx(a[mode]["hr@10_mean"] + shift, abs=2e-5)
        assert b[mode]["hr@10_run_sd"] == pytest.approx(a[mode]["hr@10_run_sd"], abs=2e-5)
