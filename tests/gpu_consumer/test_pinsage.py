import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from gpu_consumer.layers import InputEncoder, ModelError, gather_neighbours, hash_ids
from gpu_consumer.loss import max_margin_loss, ranking_loss
from gpu_consumer.pinsage import PinSage, PinSageConv
from tests.gpu_consumer.batches import hinge_loss, make_batch


def model(**kw):
    torch.manual_seed(0)
    args = dict(feature_dim=5, hidden_dim=16, embedding_dim=8, num_layers=2)
    args.update(kw)
    return PinSage(**args)


def test_forward_shapes_and_unit_sphere():
    batch = make_batch(1)
    out = model()(batch)
    assert out.shape == (len(batch.node_sets[-1]), 8)
    assert torch.allclose(out.norm(dim=1), torch.ones(len(out)), atol=1e-5)


@pytest.mark.parametrize("form", ["paper", "residual"])
def test_every_parameter_gets_a_gradient(form):
    """The residual form's zero-initialised last layers pass no gradient to
    the layer before them until they have moved once: after one step, every
    parameter learns."""
    batch = make_batch(2)
    m = model(id_embedding_buckets=64, convolution=form)
    if form == "residual":
        opt = torch.optim.Adam(m.parameters(), lr=1e-2)
        hinge_loss(m, batch).backward()
        opt.step()
        m.zero_grad()
    hinge_loss(m, batch).backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_residual_form_starts_as_importance_propagation_of_the_inputs():
    torch.manual_seed(0)
    conv = PinSageConv(4, 4, "importance")
    h_self, h_nbrs = torch.randn(3, 4), torch.randn(3, 5, 4)
    weights = torch.softmax(torch.randn(3, 5), 1)
    expected = h_self + (weights.unsqueeze(-1) * h_nbrs).sum(1)
    assert torch.allclose(conv(h_self, h_nbrs, weights), expected, atol=1e-6)
    with pytest.raises(ModelError, match="width"):
        PinSageConv(4, 6, "importance")


def _mean_cosine(z):
    z = torch.nn.functional.normalize(z, dim=1)
    return float((z @ z.T).mean())


def test_residual_form_keeps_id_only_items_apart_where_the_paper_form_collapses():
    """docs/quality.md: untrained on id embeddings alone, Algorithm 1's ReLUs
    and biases embed every item alike; the residual form does not."""
    batch = make_batch(3)
    kw = dict(feature_dim=0, hidden_dim=32, embedding_dim=32, id_embedding_buckets=1000)
    paper = _mean_cosine(model(convolution="paper", **kw)(batch).detach())
    residual = _mean_cosine(model(convolution="residual", **kw)(batch).detach())
    assert paper > 0.5
    assert residual < 0.3


def test_conv_matches_algorithm_1_for_both_poolings():
    torch.manual_seed(0)
    h_self, h_nbrs = torch.randn(3, 4), torch.randn(3, 5, 4)
    weights = torch.tensor([[0.7, 0.2, 0.1, 0.0, 0.0],
                            [1.0, 0.0, 0.0, 0.0, 0.0],
                            [0.2, 0.2, 0.2, 0.2, 0.2]])
    for pooling in ("importance", "uniform"):
        conv = PinSageConv(4, 6, pooling, "paper")
        nbr = torch.relu(conv.Q(h_nbrs))
        alpha = weights if pooling == "importance" else (weights > 0).float() / (
            (weights > 0).sum(1, keepdim=True))
        gamma = (alpha.unsqueeze(-1) * nbr).sum(1)
        z = torch.relu(conv.W(torch.cat([h_self, gamma], 1)))
        expected = z / z.norm(dim=1, keepdim=True)
        assert torch.allclose(conv(h_self, h_nbrs, weights), expected, atol=1e-6)


def test_importance_and_uniform_pooling_differ_only_for_unequal_weights():
    torch.manual_seed(0)
    imp, uni = PinSageConv(4, 4, "importance"), PinSageConv(4, 4, "uniform")
    uni.load_state_dict(imp.state_dict())
    h_self, h_nbrs = torch.randn(2, 4), torch.randn(2, 3, 4)
    skewed = torch.tensor([[0.9, 0.05, 0.05], [0.6, 0.4, 0.0]])
    assert not torch.allclose(imp(h_self, h_nbrs, skewed), uni(h_self, h_nbrs, skewed))
    equal = torch.tensor([[1 / 3] * 3, [0.5, 0.5, 0.0]])
    assert torch.allclose(imp(h_self, h_nbrs, equal), uni(h_self, h_nbrs, equal), atol=1e-6)


def test_padding_contributes_nothing():
    torch.manual_seed(0)
    conv = PinSageConv(4, 4, "importance")
    h_self, h_nbrs = torch.randn(1, 4), torch.randn(1, 3, 4)
    weights = torch.tensor([[0.5, 0.5, 0.0]])
    changed = h_nbrs.clone()
    changed[0, 2] = 100.0
    for pooling in ("importance", "uniform"):
        conv.pooling = pooling
        assert torch.allclose(conv(h_self, h_nbrs, weights), conv(h_self, changed, weights))


def test_isolated_node_gets_a_finite_embedding():
    conv = PinSageConv(4, 4, "uniform")
    out = conv(torch.randn(1, 4), torch.randn(1, 3, 4), torch.zeros(1, 3))
    assert torch.isfinite(out).all()


def test_layerwise_api_reproduces_forward():
    batch = make_batch(3)
    m = model().eval()
    h = m.input_vectors(batch.features, batch.node_sets[0])
    for k in range(m.num_layers):
        h = m.convolve(k, h[:batch.num_dst[k]], gather_neighbours(h, batch.nbr_index[k]),
                       batch.nbr_weight[k])
    assert torch.allclose(m.finalize(h), m(batch), atol=1e-6)


def test_float16_features_are_cast():
    batch = make_batch(4)
    assert batch.features.dtype == torch.float16
    assert model()(batch).dtype == torch.float32


def test_id_embeddings_only_for_a_featureless_type():
    batch = make_batch(5, feature_dim=0)
    out = model(feature_dim=0, id_embedding_buckets=32)(batch)
    assert torch.isfinite(out).all()


def test_no_features_and_no_ids_is_a_clear_error():
    with pytest.raises(ModelError, match="id_embedding_buckets"):
        InputEncoder(0, 8, 0, what="user")


def test_wrong_layer_count_is_a_clear_error():
    with pytest.raises(ModelError, match="num_layers"):
        model(num_layers=3)(make_batch(6))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 2**40), min_size=1, max_size=50), st.integers(1, 10_000))
def test_hash_ids_in_range_and_deterministic(ids, buckets):
    t = torch.tensor(ids)
    a, b = hash_ids(t, buckets), hash_ids(t.clone(), buckets)
    assert torch.equal(a, b)
    assert int(a.min()) >= 0 and int(a.max()) < buckets


def test_id_table_is_collision_free_when_large_enough_and_even_otherwise():
    assert len(np.unique(hash_ids(torch.arange(1000), 1000).numpy())) == 1000
    load = np.bincount(hash_ids(torch.arange(1000), 300).numpy(), minlength=300)
    assert load.min() == 3 and load.max() == 4


@pytest.mark.parametrize("form", ["paper", "residual"])
def test_candidate_prior_adds_a_zero_beta_column_and_leaves_z_as_it_was(form):
    batch = make_batch(5)
    plain, with_prior = model(convolution=form), model(convolution=form, candidate_prior=True)
    out = with_prior(batch)
    assert out.shape == (len(batch.node_sets[-1]), 9)
    assert torch.allclose(out[:, :-1].norm(dim=1), torch.ones(len(out)), atol=1e-5)
    assert (out[:, -1] == 0).all()                    # training starts at cosine-only
    # The same seed draws the same z weights: the prior changes nothing else.
    assert torch.allclose(out[:, :-1], plain(batch), atol=1e-6)


def test_layerwise_api_reproduces_forward_with_the_prior():
    batch = make_batch(3)
    m = model(candidate_prior=True).eval()
    with torch.no_grad():
        torch.nn.init.normal_(m.head.prior.weight)    # a β that is not zero
        m.head.prior.bias.fill_(0.3)
    h = m.input_vectors(batch.features, batch.node_sets[0])
    for k in range(m.num_layers):
        h = m.convolve(k, h[:batch.num_dst[k]], gather_neighbours(h, batch.nbr_index[k]),
                       batch.nbr_weight[k])
    layerwise, forward = m.finalize(h), m(batch)
    assert forward[:, -1].std() > 0
    assert torch.allclose(layerwise, forward, atol=1e-5)


def test_the_prior_learns_from_the_loss():
    batch = make_batch(2)
    m = model(candidate_prior=True)
    v = m(batch)
    max_margin_loss(v, batch.queries, batch.positives, batch.easy_negatives,
                    batch.hard_negatives, margin=0.5, prior=True).loss.backward()
    assert m.head.prior.weight.grad.abs().sum() > 0 and m.head.prior.bias.grad is not None


def test_a_degree_prior_reads_beta_from_its_table_by_target_id_and_is_not_trained():
    batch = make_batch(4)                             # node ids below 200
    plain, m = model(), model(candidate_prior=True, prior_items=200)
    assert m.head.prior is None
    with torch.no_grad():
        m.head.prior_table.copy_(torch.linspace(-1, 2, 200))
    out = m(batch)
    targets = batch.node_sets[-1]
    torch.testing.assert_close(out[:, -1], m.head.prior_table[targets])
    assert torch.allclose(out[:, :-1], plain(batch), atol=1e-6)   # z as without a prior
    softmax_loss = ranking_loss("softmax", out, batch.queries, batch.positives,
                                batch.easy_negatives, batch.hard_negatives, margin=0.1,
                                temperature=0.3, prior=True).loss
    softmax_loss.backward()
    assert "prior_table" not in dict(m.named_parameters())        # a buffer: fixed
    assert "head.prior_table" in m.state_dict()                   # saved with the weights
    h = m.input_vectors(batch.features, batch.node_sets[0])
    for k in range(m.num_layers):
        h = m.convolve(k, h[:batch.num_dst[k]], gather_neighbours(h, batch.nbr_index[k]),
                       batch.nbr_weight[k])
    torch.testing.assert_close(m.finalize(h, targets), out)
