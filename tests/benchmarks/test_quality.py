"""benchmarks/quality.py: the seeds, the run-to-run spread across them, and the
paired differences over the same held-out pairs."""

import argparse

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from benchmarks.quality import MODES, paired_section, seed_list, seed_spread


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


class _Held:
    """What paired_section reads of a holdout: where its baseline ranks are cached."""

    def __init__(self, path):
        self.path = path


def test_paired_section_pairs_methods_with_baselines_and_the_reference(tmp_path):
    ranks = {"all_items": np.array([1, 30, 5, 70]), "beyond_neighbours": np.array([2, 3, 4, 5])}
    np.savez(tmp_path / "baseline-ranks.npz",
             **{f"{mode}/ppr": r + 10 for mode, r in ranks.items()})
    for m, shift in (("pinsage", 0), ("pinsage-uniform", 9)):
        for seed in ("seed-0", "seed-1"):
            (tmp_path / "out" / m / seed).mkdir(parents=True)
            np.savez(tmp_path / "out" / m / seed / "ranks.npz",
                     **{mode: r + shift for mode, r in ranks.items()})
    section = paired_section(_Held(tmp_path), ["pinsage", "pinsage-uniform"],
                             tmp_path / "out", (0, 1))
    rows = section["all_items"]
    assert set(rows) == {f"{m} - {ref} ({run})" for run in ("seed 0", "seed 1",
                                                             "mean of seeds 0, 1")
                         for m, ref in (("pinsage", "ppr"), ("pinsage-uniform", "ppr"),
                                        ("pinsage-uniform", "pinsage"))}
    # ranks 1, 30, 5, 70 against 11, 40, 15, 80: hits@10 [1, 0, 1, 0] - [0, 0, 0, 0]
    assert rows["pinsage - ppr (seed 0)"]["hr@10_diff"] == 0.5
    # uniform's 10, 39, 14, 79: one hit fewer than pinsage's two
    assert rows["pinsage-uniform - pinsage (seed 1)"]["hr@10_diff"] == -0.25
    assert section["beyond_neighbours"]["pinsage - ppr (seed 0)"]["hr@10_diff"] == 1.0
    # both seeds' ranks are the same here, so their mean is either seed's
    mean = rows["pinsage-uniform - pinsage (mean of seeds 0, 1)"]
    assert mean == rows["pinsage-uniform - pinsage (seed 0)"]
