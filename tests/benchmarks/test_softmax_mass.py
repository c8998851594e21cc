"""benchmarks/softmax_mass.py: how concentrated a model's softmax is, and what
the hard-negative window holds of it."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from benchmarks.softmax_mass import hinge_figures, mass_figures, softmax_rows, window_figures
from sampler.negatives import Windows
from tests.benchmarks.small_holdout import small_holdout

ROOT = Path(__file__).resolve().parents[2]


def _unit(rng, n, d):
    z = rng.normal(size=(n, d))
    return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)


def test_identical_vectors_spread_the_mass_evenly():
    n = 101
    p = softmax_rows(np.ones((n, 3), np.float32) / np.sqrt(3), np.array([0, 7]), 0.3)
    assert p[0, 0] == p[1, 7] == 0.0
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    out = mass_figures(p, easy=20, top=(10, 50))
    assert out["top10"] == pytest.approx(0.1) and out["top50"] == pytest.approx(0.5)
    assert out["n_eff"] == pytest.approx(100)
    assert out["uniform_estimate_rel_sd"] == pytest.approx(0.0, abs=1e-6)


def test_one_item_near_the_query_holds_the_mass_at_low_temperature():
    # item 1 is the query's twin; the other 50 are orthogonal to it
    z = np.zeros((52, 52), np.float32)
    z[0, 0] = z[1, 0] = 1.0
    z[np.arange(2, 52), np.arange(2, 52)] = 1.0
    cold, warm = (mass_figures(softmax_rows(z, np.array([0]), t), easy=10) for t in (0.05, 1.0))
    assert cold["top10"] > 0.99 and cold["n_eff"] < 1.01
    assert warm["top10"] == pytest.approx((np.e + 9) / (np.e + 50))
    # a uniform sample of 10 misses the twin 4 times in 5: the estimate's spread
    assert cold["uniform_estimate_rel_sd"] == pytest.approx(np.sqrt((51 - 1) / 10), rel=1e-3)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), tau=st.floats(0.05, 1.0), colder=st.floats(0.3, 0.95))
def test_a_colder_softmax_is_more_concentrated(seed, tau, colder):
    rng = np.random.default_rng(seed)
    z = _unit(rng, 60, 4)
    queries = rng.choice(60, 5, replace=False)
    warm = mass_figures(softmax_rows(z, queries, tau), easy=10, top=(1, 5, 20))
    cold = mass_figures(softmax_rows(z, queries, tau * colder), easy=10, top=(1, 5, 20))
    for k in ("top1", "top5", "top20"):
        assert cold[k] >= warm[k] - 1e-12
    assert cold["n_eff"] <= warm["n_eff"] + 1e-9 <= 59 + 1e-9


def test_the_window_figures_count_what_the_draws_reach():
    # two queries over n = 4 other items; row 0's window holds items 2, 3
    # (mass 0.5 over 2), row 1's is empty
    p = np.array([[0.0, 0.1, 0.2, 0.3, 0.4], [0.25, 0.0, 0.25, 0.25, 0.25]])
    items = np.array([[1, 2, 3, 4], [0, 2, 3, 4]])
    out = window_figures(p, Windows(items, np.array([1, 0]), np.array([3, 0])), easy=2, hard=2)
    assert out["queries_with_window"] == 1 and out["width_median"] == 1.0
    assert out["mass"] == pytest.approx(0.25)                       # (0.5 + 0) / 2
    assert out["mass_per_item_over_mean"] == pytest.approx(0.25 * 4)  # 0.25 an item, 1/4 mean
    assert out["hard_coverage"] == pytest.approx((2 * 0.25 + 0) / 2)
    assert out["uniform_coverage"] == pytest.approx(0.5)


def test_the_hinge_figures_count_the_negatives_within_the_margin():
    # query 0, positive 1 at cosine 0.8; items 2-5 at cosines 0.9, 0.75, 0.6, 0.0:
    # with margin 0.1, items 2 and 3 violate (> 0.7), 4 and 5 do not
    angles = np.arccos([1.0, 0.8, 0.9, 0.75, 0.6, 0.0])
    z = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    window = np.array([[3, 4, 5, 2]])
    out = hinge_figures(z, np.array([0]), np.array([1]), 0.1,
                        Windows(window, np.array([0]), np.array([2])), easy=8, hard=2)
    assert out["violators"] == 2.0
    assert out["uniform_violating_draws"] == pytest.approx(8 * 2 / 4)   # 4 other items
    assert out["hard_violating_draws"] == pytest.approx(2 * 1 / 2)      # window {3, 4}: one
    assert out["window_violating_share"] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def held_dir(tmp_path_factory):
    return small_holdout(tmp_path_factory.mktemp("mass"))


def _cli(*args):
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "softmax_mass.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_the_command_reads_an_ab_runs_vectors(held_dir, tmp_path):
    # vectors with a prior column, as holdout_ab saves them with the candidate prior
    rng = np.random.default_rng(0)
    vectors = np.concatenate([_unit(rng, 200, 8) * 3.0, np.ones((200, 1), np.float32)], axis=1)
    np.save(tmp_path / "v.npy", vectors)
    args = ["--holdout", str(held_dir), "--vectors", str(tmp_path / "v.npy"), "--queries", "10",
            "--set", "trainer.candidate_prior=true", "--set", "trainer.prior_source=degree",
            "--set", "trainer.temperature=0.25", "--set", "sampler.easy_negatives=50"]
    done = _cli(*args)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["temperature"], out["items"], out["queries"], out["easy_negatives"]) == (
        0.25, 200, 10, 50)
    assert 0 < out["top10"] < out["top50"] < out["top200"] <= 1.0 + 1e-9
    assert out["window"]["uniform_coverage"] == pytest.approx(50 / 199)
    assert out["hinge"]["margin"] == 0.1 and out["hinge"]["violators"] >= 0
    # the prior column is not a direction: the unit part alone is what the loss saw
    z = vectors[:, :-1] / 3.0
    from serving import holdout as ho
    held = ho.load_holdout(held_dir)
    pick = np.random.default_rng(0).choice(len(held.queries), 10, replace=False)
    expected = mass_figures(softmax_rows(z, held.queries[pick], 0.25), easy=50)
    assert out["top10"] == pytest.approx(expected["top10"], rel=1e-5)

    np.save(tmp_path / "short.npy", vectors[:150])
    done = _cli("--holdout", str(held_dir), "--vectors", str(tmp_path / "short.npy"))
    assert done.returncode != 0 and "150 rows, but the holdout has 200 items" in done.stderr
