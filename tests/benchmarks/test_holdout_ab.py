"""benchmarks/holdout_ab.py: the collapse diagnostic."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from benchmarks.holdout_ab import mean_cosine


def test_one_shared_direction_reads_one_and_random_directions_near_zero():
    rng = np.random.default_rng(1)
    same = np.tile(rng.normal(size=(1, 32)), (500, 1)) * rng.uniform(0.5, 2, (500, 1))
    assert mean_cosine(same) == pytest.approx(1.0, abs=1e-9)
    spread = rng.normal(size=(5000, 32))
    # 1,000 sampled rows: the 1,000 self-pairs give 1/1000, the rest average ~0.
    assert abs(mean_cosine(spread) - 1e-3) < 0.01


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), d=st.integers(1, 8), seed=st.integers(0, 1000))
def test_mean_cosine_is_a_mean_of_cosines(n, d, seed):
    v = np.random.default_rng(seed).normal(size=(n, d)) + 1e-3
    u = v / np.linalg.norm(v, axis=1, keepdims=True)
    # Fewer rows than the sample: every row is used, so it is the exact mean.
    assert mean_cosine(v) == pytest.approx(float((u @ u.T).mean()), abs=1e-9)


def test_paired_rows_subtract_each_baseline_and_the_other_run():
    from benchmarks.holdout_ab import paired_rows
    model = np.array([1, 30, 5, 70])
    minus, against = paired_rows(model, {"ppr": model + 10, "popularity": model},
                                 against=np.array([1, 3, 50, 70]))
    # hits@10: model [1, 0, 1, 0], ppr [0, 0, 0, 0], popularity the model's own
    assert minus["ppr"]["hr@10_diff"] == 0.5
    assert minus["popularity"]["hr@10_diff"] == 0.0
    assert minus["popularity"]["hr@10_diff_se"] == 0.0
    # the other run's hits@10 [1, 1, 0, 0]: the same count, different pairs
    assert against["hr@10_diff"] == 0.0
    assert against["hr@10_diff_se"] > 0
    assert paired_rows(model, {"ppr": model})[1] is None


def test_against_a_file_of_other_pairs_says_what_it_expected(tmp_path):
    from benchmarks.holdout_ab import _load_against
    np.savez(tmp_path / "a.npz", all_items=np.ones(5), beyond_neighbours=np.ones(5))
    assert set(_load_against(tmp_path / "a.npz", 5)) == {"all_items", "beyond_neighbours"}
    with pytest.raises(SystemExit, match="expected 'all_items' ranks of this holdout's 7 pairs"):
        _load_against(tmp_path / "a.npz", 7)
    np.savez(tmp_path / "b.npz", all_items=np.ones(5))
    with pytest.raises(SystemExit, match="found nothing"):
        _load_against(tmp_path / "b.npz", 5)


def test_mean_of_runs_minus_runs_pairs_seed_by_seed(tmp_path):
    from benchmarks.holdout_ab import mean_minus
    from serving.evaluate import paired_difference
    rng = np.random.default_rng(3)
    a = [rng.integers(1, 100, 40) for _ in range(3)]
    b = [rng.integers(1, 100, 40) for _ in range(3)]
    for name, runs in (("a", a), ("b", b)):
        for i, r in enumerate(runs):
            np.savez(tmp_path / f"{name}{i}.npz", all_items=r, beyond_neighbours=r // 2 + 1)
    files = lambda name: [str(tmp_path / f"{name}{i}.npz") for i in range(3)]
    out = mean_minus(files("a"), files("b"))
    assert out["all_items"] == paired_difference(np.stack(a), np.stack(b)).as_dict()
    # one run each is the single paired difference
    one = mean_minus(files("a")[:1], files("b")[:1])
    assert one["beyond_neighbours"] == paired_difference(a[0] // 2 + 1, b[0] // 2 + 1).as_dict()
    with pytest.raises(SystemExit, match="run by run"):
        mean_minus(files("a"), files("b")[:2])
    np.savez(tmp_path / "short.npz", all_items=np.ones(7), beyond_neighbours=np.ones(7))
    with pytest.raises(SystemExit, match="different numbers of pairs"):
        mean_minus(files("a")[:1], [str(tmp_path / "short.npz")])
