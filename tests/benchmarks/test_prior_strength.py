"""benchmarks/prior_strength.py: the degree prior's strength against held-out pairs."""

import argparse

import numpy as np
import pytest

from benchmarks.prior_strength import factor_list, sweep
from tests.benchmarks.small_holdout import small_holdout


@pytest.fixture(scope="module")
def held(tmp_path_factory):
    from serving import holdout as ho
    return ho.load_holdout(small_holdout(tmp_path_factory.mktemp("ps")))


def _components(held, n):
    """Each item's connected component in the graph of held-out pairs."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    links = coo_matrix((np.ones(len(held.queries)), (held.queries, held.positives)), (n, n))
    return connected_components(links, directed=False)[1]


def test_cosines_that_know_every_answer_want_no_prior(held):
    # z puts the items of each connected set of held-out pairs alone on one
    # axis: cosines alone rank every positive among its few set-mates; a strong
    # enough prior lets popular items (all others) overtake.
    n = held.store.node_types[held.item_type]
    label = _components(held, n)
    assert np.bincount(label).max() < 10
    z = np.eye(n, dtype=np.float32)[label]
    beta = np.full(n, 5.0, np.float32)
    beta[np.isin(label, label[held.queries])] = 0.0
    out = sweep(held, z, beta, (0.0, 0.125, 2.0))
    for mode in ("all_items", "beyond_neighbours"):
        assert out[mode]["0"]["hr@10"] == out[mode]["0.125"]["hr@10"] == 1.0
        assert out[mode]["best"] == 0.125                # the tie goes to the factor nearer 1
        assert out[mode]["2"]["hr@10"] == 0.0


def test_cosines_that_know_nothing_take_the_popularity(held):
    # Every cosine equal: only β orders, and every factor above 0 orders alike;
    # the first few positives carry the largest β.
    n = held.store.node_types[held.item_type]
    z = np.ones((n, 4), np.float32) / 2.0
    beta = np.zeros(n, np.float32)
    beta[held.positives[:5]] = 10.0
    out = sweep(held, z, beta, (0.0, 1.0, 1.5))
    mode = out["all_items"]
    assert mode["0"]["hr@10"] == 0.0                    # all tied: the middle rank
    assert mode["1.5"]["minus_1"]["hr@10_diff"] == mode["1.5"]["minus_1"]["hr@10_diff_se"] == 0
    assert mode["0"]["minus_1"]["hr@10_diff"] == -mode["1"]["hr@10"] < 0
    del mode["1"]["minus_1"], mode["1.5"]["minus_1"]
    assert mode["1"] == mode["1.5"] and mode["1"]["hr@10"] > 0
    assert mode["best"] == 1.0        # the tie goes to the factor nearer 1


def test_factors_are_checked():
    assert factor_list("0,0.5,1") == (0.0, 0.5, 1.0)
    for bad in ("", "a", "1,-1"):
        with pytest.raises(argparse.ArgumentTypeError, match="--factors"):
            factor_list(bad)


def test_tau_comes_from_the_run_config(tmp_path):
    from benchmarks.prior_strength import run_temperature
    from sagewalk.config import Config, override, to_toml
    cfg = override(Config(), "trainer.temperature=0.25")
    (tmp_path / "train.toml").write_text(to_toml(cfg))
    assert run_temperature(tmp_path) == 0.25
    with pytest.raises(SystemExit, match="no train.toml"):
        run_temperature(tmp_path / "elsewhere")
