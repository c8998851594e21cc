import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from gpu_consumer.model import ModelSpec
from gpu_consumer.prior import as_queries, prior_part, queries_for, unit_part, width


def vectors(seed, n, d):
    """[n, d + 1] candidate vectors: unit z and a β in cosine units."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    beta = rng.uniform(-2, 2, (n, 1))
    return np.concatenate([z, beta], axis=1).astype(np.float32)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 7), st.integers(1, 9))
def test_query_form_adds_the_candidates_beta_to_the_cosine(seed, n, d):
    v = vectors(seed, n, d)
    want = unit_part(v) @ unit_part(v).T + prior_part(v)[None, :]
    np.testing.assert_allclose(as_queries(v) @ v.T, want, rtol=1e-5, atol=1e-5)
    t = torch.from_numpy(v)
    torch.testing.assert_close(as_queries(t) @ t.T, torch.from_numpy(want))


def test_as_queries_copies_and_sets_only_the_last_column():
    v = vectors(0, 3, 4)
    before = v.copy()
    q = as_queries(v)
    assert q.dtype == v.dtype and q.shape == v.shape
    np.testing.assert_array_equal(v, before)          # not mutated
    np.testing.assert_array_equal(q[:, :-1], v[:, :-1])
    assert (q[:, -1] == 1.0).all()
    t = torch.from_numpy(before).requires_grad_()
    tq = as_queries(t)
    assert (tq[:, -1] == 1).all() and torch.equal(t.detach(), torch.from_numpy(before))
    tq.sum().backward()                               # gradients reach z, not β
    assert (t.grad[:, :-1] == 1).all() and (t.grad[:, -1] == 0).all()


def test_as_queries_reads_a_memmap_without_writing_it(tmp_path):
    np.save(tmp_path / "v.npy", vectors(1, 5, 3))
    v = np.load(tmp_path / "v.npy", mmap_mode="r")
    assert (as_queries(v[1:3])[:, -1] == 1).all()
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"), vectors(1, 5, 3))


def test_queries_for_leaves_vectors_without_a_prior_alone():
    v = vectors(2, 4, 3)
    assert queries_for(v, False) is v
    np.testing.assert_array_equal(queries_for(v, True), as_queries(v))


def test_width_follows_the_spec():
    spec = ModelSpec(model="pinsage", feature_dim=3, hidden_dim=16, embedding_dim=8,
                     num_layers=2, id_embedding_buckets=0, pooling="importance",
                     dense_layers=2, item_type="item")
    assert width(spec) == 8
    from dataclasses import replace
    assert width(replace(spec, candidate_prior=True)) == 9


def test_degree_scale_is_tau_less_what_the_negatives_sample_already():
    from gpu_consumer.prior import degree_scale
    assert degree_scale(0.3, "uniform") == pytest.approx(0.3)
    assert degree_scale(0.2, "degree") == pytest.approx(0.05)     # negatives ∝ degree^0.75


def test_item_degrees_count_every_edge_type_touching_the_item_type(tmp_path):
    from gpu_consumer.prior import degree_prior, item_degrees
    from graphstore import build_from_arrays
    store = build_from_arrays(
        tmp_path / "s",
        edges={"rated": ("item", "user", np.array([0, 0, 1, 3]), np.array([0, 1, 1, 0])),
               "tagged": ("tag", "item", np.array([0, 1]), np.array([3, 3])),
               "similar": ("item", "item", np.array([0]), np.array([2]))},
        node_counts={"item": 4, "user": 2, "tag": 2})
    # item 0: 2 ratings + 1 similar (as source); item 2: 1 similar (as target);
    # item 3: 1 rating + 2 tags.
    np.testing.assert_array_equal(item_degrees(store, "item"), [3, 1, 1, 3])
    np.testing.assert_allclose(degree_prior(store, "item", 0.5),
                               0.5 * np.log1p([3, 1, 1, 3]), rtol=1e-6)
