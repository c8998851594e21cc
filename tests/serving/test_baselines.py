import numpy as np
from hypothesis import given, settings, strategies as st

from graphstore.synth import generate
from serving.baselines import (Bipartite, Embeddings, FeatureSimilarity, ItemKNN,
                               PersonalisedPageRank, Popularity, RandomWalk, SVDFactors)


def _graph(pairs, n_items, n_ctx):
    items, ctx = zip(*pairs)
    return Bipartite.from_pairs(np.array(items), np.array(ctx), n_items, n_ctx)


def _dense(pairs, n_items, n_ctx):
    a = np.zeros((n_items, n_ctx))
    for i, c in pairs:
        a[i, c] = 1
    return a


pairs_st = st.sets(st.tuples(st.integers(0, 7), st.integers(0, 5)), min_size=1, max_size=30)


@settings(max_examples=40, deadline=None)
@given(pairs_st)
def test_scorers_match_dense_reference(pairs):
    pairs = sorted(pairs)
    g, a = _graph(pairs, 8, 6), _dense(pairs, 8, 6)
    q = np.arange(8)
    deg_i = np.maximum(a.sum(1), 1)
    deg_c = np.maximum(a.sum(0), 1)
    co = a @ a.T
    cos = co / np.sqrt(np.outer(deg_i, deg_i))
    walk = (a / deg_i[:, None]) @ (a / deg_c[None, :]).T
    np.testing.assert_allclose(ItemKNN(g, cosine=False)(q), co, rtol=1e-5)
    np.testing.assert_allclose(ItemKNN(g)(q), cos, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(RandomWalk(g)(q), walk, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(RandomWalk(g, hops=2)(q), walk @ walk, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(Popularity(g)(q)[3], a.sum(1))


def test_walk_rows_are_distributions_and_features_cosine():
    g = _graph([(0, 0), (1, 0), (1, 1), (2, 1), (3, 2)], 4, 3)
    np.testing.assert_allclose(RandomWalk(g)(np.arange(4)).sum(1), 1.0, rtol=1e-6)
    f = FeatureSimilarity(np.array([[1, 0], [2, 0], [0, 3], [1, 1]]))(np.array([0]))
    np.testing.assert_allclose(f[0], [1, 1, 0, np.sqrt(0.5)], rtol=1e-6)
    e = Embeddings(np.eye(3))(np.array([2, 0]))
    assert e.tolist() == [[0, 0, 1], [1, 0, 0]]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=1, max_size=40))
def test_pair_counts_are_symmetric_counts(pairs):
    from serving.baselines import PairCounts
    q, p = (np.array(x) for x in zip(*pairs))
    ref = np.zeros((7, 7))
    for a, b in pairs:
        ref[a, b] += 1
        ref[b, a] += 1
    np.testing.assert_allclose(PairCounts(q, p, 7)(np.arange(7)), ref)


def test_ppr_matches_dense_reference():
    pairs = [(0, 0), (1, 0), (1, 1), (2, 1), (3, 2), (4, 2), (4, 1), (2, 3)]
    g = Bipartite.from_pairs(*map(np.array, zip(*pairs)), 5, 4)
    a = np.zeros((5, 4))
    for i, c in pairs:
        a[i, c] = 1
    w = (a / a.sum(0)) @ (a / a.sum(1)[:, None]).T     # w[i', i] = P(i -> i')
    ref = 0.15 * np.linalg.inv(np.eye(5) - 0.85 * w)    # column q: PPR from q
    got = PersonalisedPageRank(g, restart=0.15, tol=1e-9)(np.arange(5))
    np.testing.assert_allclose(got, ref.T, atol=1e-6)
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-6)


def test_svd_is_deterministic_unit_vectors():
    g = generate(3000, 200, 300, 5, seed=2)
    graph = Bipartite.from_pairs(g.items, g.users, 200, 300)
    a, b = SVDFactors(graph, dim=16), SVDFactors(graph, dim=16)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    linked = graph.item_degrees() > 0             # an item without edges gets zeros
    np.testing.assert_allclose(np.linalg.norm(a.vectors[linked], axis=1), 1.0, atol=1e-5)
    assert not a.vectors[~linked].any()


def test_from_store_types_pools_contexts_of_both_directions(tmp_path):
    from graphstore import build_from_arrays
    store = build_from_arrays(tmp_path / "s", edges={
        "rated": ("item", "user", np.array([0, 1, 2]), np.array([1, 0, 1])),
        "cast": ("actor", "item", np.array([0, 0]), np.array([2, 0]))},
        node_counts={"item": 3, "user": 2, "actor": 1})
    g = Bipartite.from_store_types(store, "item", ["rated", "cast"])
    assert (g.num_items, g.num_contexts) == (3, 3)      # users 0-1, then actor 0 as 2
    rows = [g.item_indices[g.item_indptr[i]:g.item_indptr[i + 1]].tolist() for i in range(3)]
    assert rows == [[1, 2], [0], [1, 2]]
