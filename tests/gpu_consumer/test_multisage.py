import pytest
import torch

from gpu_consumer.layers import ModelError
from gpu_consumer.loss import max_margin_loss
from gpu_consumer.multisage import ContextEncoder, MultiSage, MultiSageConv
from tests.gpu_consumer.batches import hinge_loss, make_batch


def model(**kw):
    torch.manual_seed(0)
    args = dict(feature_dim=5, hidden_dim=16, embedding_dim=8, num_layers=2,
                context_dims={"board": 3, "user": 0}, attention_heads=4)
    args.update(kw)
    return MultiSage(**args)


def ms_batch(seed=0):
    return make_batch(seed, context_types=2, context_dims=(3, 0))


@pytest.mark.parametrize("form", ["paper", "residual"])
@pytest.mark.parametrize("combine", ["mask", "translation", "concat"])
def test_shapes_unit_norm_and_gradients(combine, form):
    """Zero-initialised layers (the residual form's, the identity start's last
    context layer) pass no gradient to the layer before them until they have
    moved once: after one step, all learn."""
    batch = ms_batch(1)
    m = model(context_combine=combine, convolution=form)
    out = m(batch)
    assert out.shape == (len(batch.node_sets[-1]), 8)
    assert torch.allclose(out.norm(dim=1), torch.ones(len(out)), atol=1e-5)
    if form == "residual" or combine == "mask":
        opt = torch.optim.Adam(m.parameters(), lr=1e-2)
        hinge_loss(m, batch).backward()
        opt.step()
        m.zero_grad()
    hinge_loss(m, batch).backward()
    unused = {"convs.0.join", "convs.1.join"} if combine != "concat" else set()
    for name, p in m.named_parameters():
        if any(name.startswith(u) for u in unused):
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_masking_zeroes_masked_dimensions():
    torch.manual_seed(0)
    conv = MultiSageConv(8, 2, "mask", "importance")
    z = torch.rand(3, 4, 8) + 0.5
    ctx = torch.rand(3, 4, 8)
    ctx[..., [1, 5]] = 0.0
    masked = conv.contextualise(z, ctx)
    assert (masked[..., [1, 5]] == 0).all()
    assert (masked[..., [0, 2, 3, 4, 6, 7]] != 0).all()
    assert torch.equal(conv.contextualise(z, ctx), z * ctx)


def test_residual_layer_starts_as_attention_propagation_of_the_masked_inputs():
    torch.manual_seed(0)
    conv = MultiSageConv(8, 2, "mask", "importance")
    h_self, h_nbrs = torch.randn(3, 8), torch.randn(3, 4, 8)
    ctx = torch.rand(3, 4, 8)
    out = conv(h_self, h_nbrs, torch.full((3, 4), 0.25), ctx)
    # T starts as the identity and W as the identity: z_N is a convex
    # combination (per head) of the masked neighbours h_u * z_c.
    rest = (out - h_self).reshape(3, 2, 4)
    masked = (h_nbrs * ctx).reshape(3, 4, 2, 4)
    lo, hi = masked.min(dim=1).values, masked.max(dim=1).values
    assert ((rest >= lo - 1e-5) & (rest <= hi + 1e-5)).all()
    paper = MultiSageConv(8, 2, "mask", "importance", "paper")
    assert torch.allclose(paper(h_self, h_nbrs, torch.full((3, 4), 0.25), ctx).norm(dim=1),
                          torch.ones(3), atol=1e-5)


def per_pair_attention(conv, h_self, h_nbrs, weights, contexts):
    """Eqs. 6-7 as the paper writes them: W applied to every (ego, context,
    neighbour) triplet, each head's logit a dot product with a_h."""
    n, k, d = h_nbrs.shape
    H = conv.heads
    z_v, z_u = conv.encode(h_self), conv.encode(h_nbrs)
    z_uc = conv.contextualise(z_u, contexts)
    split = (lambda x: x.reshape(*x.shape[:-1], H, d // H))
    wv, wc, wu = split(conv.W(z_v)), split(conv.W(contexts)), split(conv.W(z_uc))
    logits = ((wv * conv.a[:, 0]).sum(-1).unsqueeze(1) + (wc * conv.a[:, 1]).sum(-1)
              + (wu * conv.a[:, 2]).sum(-1))
    logits = torch.nn.functional.leaky_relu(logits, 0.2) + torch.log(
        weights.clamp_min(1e-12)).unsqueeze(-1)
    valid = (weights > 0).unsqueeze(-1)
    alpha = torch.softmax(logits.masked_fill(~valid, -1e9), dim=1) * valid
    z_n = torch.einsum("nkh,nkhe->nhe", alpha, wu).reshape(n, d)
    out = z_v + z_n
    return out if conv.residual else out / out.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@pytest.mark.parametrize("form", ["paper", "residual"])
@pytest.mark.parametrize("combine", ["mask", "translation", "concat"])
def test_attention_applies_w_once_per_ego_and_equals_the_per_pair_equations(combine, form):
    torch.manual_seed(3)
    conv = MultiSageConv(16, 4, combine, "importance", form)
    for p in conv.parameters():          # off the residual form's zero/identity start
        torch.nn.init.normal_(p, std=0.3)
    h_self, h_nbrs = torch.randn(5, 16), torch.randn(5, 6, 16)
    weights = torch.rand(5, 6)
    weights[1, 4:] = 0.0                 # padding
    ctx = torch.rand(5, 6, 16)
    torch.testing.assert_close(conv(h_self, h_nbrs, weights, ctx),
                               per_pair_attention(conv, h_self, h_nbrs, weights, ctx),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("context", [False, True])
def test_block_form_equals_the_gathered_form(context):
    """forward_block encodes each source node and each context row once; the
    layer-wise form (serving) gathers first: the same layer."""
    torch.manual_seed(4)
    conv = MultiSageConv(16, 4, "mask", "importance")
    for p in conv.parameters():
        torch.nn.init.normal_(p, std=0.3)
    h = torch.randn(30, 16)
    index = torch.randint(0, 30, (8, 5))
    weights = torch.rand(8, 5)
    table = torch.rand(12, 16)
    rows = torch.randint(0, 12, (8, 5))
    ego = torch.rand(8, 16) if context else None
    block = conv.forward_block(h, index, weights, table, rows, 8, ego)
    gathered = conv(h[:8], h[index], weights, table[rows], ego)
    torch.testing.assert_close(block, gathered, rtol=1e-4, atol=1e-5)


def test_identity_start_is_importance_pooling_of_unmasked_neighbours_and_then_learns():
    torch.manual_seed(0)
    m = model()
    enc = m.context_encoders[0]
    assert torch.equal(enc(torch.randn(6, 3), torch.arange(6)), torch.ones(6, 16))
    conv = m.convs[0]
    h_self, h_nbrs = torch.randn(3, 16), torch.randn(3, 5, 16)
    w = torch.softmax(torch.randn(3, 5), dim=1)
    out = conv(h_self, h_nbrs, w, torch.ones(3, 5, 16))
    torch.testing.assert_close(out, h_self + torch.einsum("nk,nkd->nd", w, h_nbrs))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    batch = ms_batch(1)
    for _ in range(2):
        opt.zero_grad()
        hinge_loss(m, batch).backward()
        opt.step()
    masks = enc(torch.randn(6, 3), torch.arange(6))
    assert not torch.equal(masks, torch.ones(6, 16)) and (masks >= 0).all()
    assert conv.a.abs().sum() > 0
    with pytest.raises(ModelError, match="context_start"):
        model(context_start="zeros")


def test_context_encoder_masks_have_exact_zeros():
    torch.manual_seed(0)
    enc = ContextEncoder(3, 16, 0, "board")
    out = enc(torch.randn(20, 3), torch.arange(20))
    assert (out >= 0).all() and (out == 0).any()


def test_masked_dimension_of_the_context_does_not_reach_the_attention_values():
    """A neighbour seen through a context that masks every dimension adds nothing."""
    torch.manual_seed(0)
    conv = MultiSageConv(8, 2, "mask", "importance")
    h_self, h_nbrs = torch.randn(1, 8), torch.randn(1, 2, 8)
    weights = torch.tensor([[0.5, 0.5]])
    ctx = torch.ones(1, 2, 8)
    ctx[0, 1] = 0.0  # second neighbour fully masked
    changed = h_nbrs.clone()
    changed[0, 1] = 50.0
    # its masked vector is zero whatever its features, so only attention logits
    # (through the bias-free W of zero) could differ: they do not.
    assert torch.allclose(conv(h_self, h_nbrs, weights, ctx), conv(h_self, changed, weights, ctx))


def test_contextual_embeddings_depend_on_the_context():
    batch = ms_batch(2)
    m = model(context_start="random").eval()     # identity: every context the same at start
    ctx = m.context_vectors(0, torch.randn(2, 3), torch.tensor([3, 4]))
    a, b = m(batch, context=ctx[0]), m(batch, context=ctx[1])
    assert a.shape == b.shape == m(batch).shape
    assert torch.allclose(a.norm(dim=1), torch.ones(len(a)), atol=1e-5)
    assert not torch.allclose(a, b)


def test_featureless_context_type_uses_id_vectors():
    m = model(context_dims={"user": 0})
    out = m.context_vectors(0, None, torch.arange(5))
    assert out.shape == (5, 16) and (out >= 0).all()


def test_heads_must_divide_hidden():
    with pytest.raises(ModelError, match="attention_heads"):
        model(attention_heads=3)


def test_needs_context_types_and_context_batches():
    with pytest.raises(ModelError, match="pinsage"):
        model(context_dims={})
    with pytest.raises(ModelError, match="context"):
        model()(make_batch(3))


def test_embed_in_context_by_type_name_and_node_id():
    batch = ms_batch(4)
    m = model(context_start="random").eval()
    with torch.no_grad():
        a = m.embed_in_context(batch, "board", 3, torch.randn(3))
        b = m.embed_in_context(batch, "user", 7)
    assert a.shape == b.shape == (len(batch.node_sets[-1]), 8)
    assert not torch.allclose(a, b)
    with pytest.raises(ModelError, match="board, user"):
        m.embed_in_context(batch, "venue", 1)


def test_candidate_prior_column_with_zero_start_and_a_gradient():
    batch = ms_batch(1)
    m = model(candidate_prior=True)
    out = m(batch)
    assert out.shape == (len(batch.node_sets[-1]), 9)
    assert torch.allclose(out[:, :-1].norm(dim=1), torch.ones(len(out)), atol=1e-5)
    assert (out[:, -1] == 0).all()
    torch.testing.assert_close(out[:, :-1], model()(batch))
    max_margin_loss(out, batch.queries, batch.positives, batch.easy_negatives,
                    batch.hard_negatives, margin=0.5, prior=True).loss.backward()
    assert m.head.prior.weight.grad.abs().sum() > 0
