import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

import math

from gpu_consumer.loss import hard_negatives_for, max_margin_loss, ranking_loss


def unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_zero_when_margin_holds_and_positive_when_violated():
    z = unit([1, 0], [1, 0.05], [0, 1], [-1, 0])
    args = dict(queries=torch.tensor([0]), positives=torch.tensor([1]),
                easy_negatives=torch.tensor([2]), hard_negatives=torch.tensor([[3]]))
    assert max_margin_loss(z, **args, margin=0.1).loss.item() == 0.0
    # z_q.z_p = 0.99875; easy z_q.z_n = 0 is violated by a margin of 1.5, the
    # hard one (z_q.z_n = -1) is not: mean over the two triplets
    parts = max_margin_loss(z, **args, margin=1.5)
    assert parts.loss.item() == pytest.approx((1.5 - 0.998752) / 2, abs=1e-5)
    assert parts.violated_ratio == 0.5


def negatives_of(b, q, p, easy, hard, in_batch):
    """Example b's negatives: shared easy ones that are not its own positive or
    query (accidental hits), its hard ones, and optionally the batch's positives."""
    negs = [n for n in easy if n not in (p[b], q[b])] + [n for n in hard[b] if n >= 0]
    if in_batch:
        negs += [p[j] for j in range(len(q)) if p[j] not in (p[b], q[b])]
    return negs


def dot(z):
    return lambda a, b: float(z[a] @ z[b])


def reference(z, q, p, easy, hard, margin, in_batch=False, score=None):
    score = score or dot(z)
    total, count = 0.0, 0
    for b in range(len(q)):
        pos = score(q[b], p[b])
        for n in negatives_of(b, q, p, easy, hard, in_batch):
            total += max(0.0, score(q[b], n) - pos + margin)
            count += 1
    return total / max(1, count)


def corrections_of(b, q, p, easy, hard, in_batch, logq):
    """What the softmax subtracts from each of negatives_of's logits: logq
    [B][N + h] holds the easy columns, then the hard; in-batch negatives none."""
    out = [logq[b][j] for j, n in enumerate(easy) if n not in (p[b], q[b])]
    out += [logq[b][len(easy) + k] for k, n in enumerate(hard[b]) if n >= 0]
    if in_batch:
        out += [0.0 for j in range(len(q)) if p[j] not in (p[b], q[b])]
    return out


def softmax_reference(z, q, p, easy, hard, temperature, in_batch=False, score=None,
                      logq=None):
    score = score or dot(z)
    total = 0.0
    for b in range(len(q)):
        negs = negatives_of(b, q, p, easy, hard, in_batch)
        minus = (corrections_of(b, q, p, easy, hard, in_batch, logq) if logq is not None
                 else [0.0] * len(negs))
        logits = [score(q[b], p[b]) / temperature]
        logits += [score(q[b], n) / temperature - c for n, c in zip(negs, minus)]
        top = max(logits)
        total += -(logits[0] - top - math.log(sum(math.exp(x - top) for x in logits)))
    return total / len(q)


def random_batch(seed, batch, easy, hard):
    """Unit embeddings of 12 items and a batch's positions into them (at least
    one negative; -1 pads the hard ones)."""
    if easy == 0 and hard == 0:
        easy = 1
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(12, 4, generator=g), dim=1)
    q = torch.randint(0, 12, (batch,), generator=g)
    p = torch.randint(0, 12, (batch,), generator=g)
    e = torch.randint(0, 12, (easy,), generator=g)
    h = torch.randint(-1, 12, (batch, hard), generator=g)
    if hard and (h >= 0).sum() == 0 and easy == 0:
        h[0, 0] = 0
    return z, q, p, e, h


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(0, 5), st.integers(0, 3),
       st.floats(0.01, 1.0), st.booleans())
def test_matches_a_triplet_by_triplet_reference(seed, batch, easy, hard, margin, in_batch):
    z, q, p, e, h = random_batch(seed, batch, easy, hard)
    got = max_margin_loss(z, q, p, e, h, margin, in_batch=in_batch).loss.item()
    assert got == pytest.approx(reference(z, q.tolist(), p.tolist(), e.tolist(), h.tolist(),
                                          margin, in_batch), abs=1e-5)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(0, 5), st.integers(0, 3),
       st.floats(0.02, 1.0), st.booleans())
def test_softmax_matches_a_per_example_reference(seed, batch, easy, hard, temperature,
                                                 in_batch):
    z, q, p, e, h = random_batch(seed, batch, easy, hard)
    got = ranking_loss("softmax", z, q, p, e, h, margin=0.1, temperature=temperature,
                       in_batch=in_batch).loss.item()
    assert got == pytest.approx(softmax_reference(z, q.tolist(), p.tolist(), e.tolist(),
                                                  h.tolist(), temperature, in_batch),
                                rel=1e-4, abs=1e-5)


def test_softmax_keeps_pushing_after_the_hinge_is_satisfied():
    # Every negative is more than the margin below the positive: the hinge has
    # no gradient left, the softmax still pulls the positive closer.
    z = unit([1, 0], [0.8, 0.6], [0, 1], [-1, 0]).requires_grad_()
    args = dict(queries=torch.tensor([0]), positives=torch.tensor([1]),
                easy_negatives=torch.tensor([2, 3]),
                hard_negatives=torch.zeros(1, 0, dtype=torch.long), margin=0.1)
    hinge = ranking_loss("max_margin", z, **args)
    assert hinge.loss.item() == 0.0
    soft = ranking_loss("softmax", z, **args, temperature=0.1)
    assert soft.loss.item() > 0
    soft.loss.backward()
    # moving the positive toward the query lowers the loss
    assert float(z.grad[1] @ (z[0] - z[1]).detach()) < 0


def test_a_shared_negative_that_is_the_positive_is_not_a_negative():
    z = unit([1, 0], [0.8, 0.6], [-1, 0])
    none = torch.zeros(1, 0, dtype=torch.long)
    with_hit = ranking_loss("max_margin", z, torch.tensor([0]), torch.tensor([1]),
                            torch.tensor([1, 2]), none, margin=0.5)
    without = ranking_loss("max_margin", z, torch.tensor([0]), torch.tensor([1]),
                           torch.tensor([2]), none, margin=0.5)
    assert with_hit.loss.item() == without.loss.item() == 0.0


def test_unknown_loss_is_a_clear_error():
    z = unit([1, 0], [0, 1])
    with pytest.raises(ValueError, match="max_margin, softmax"):
        ranking_loss("triplet", z, torch.tensor([0]), torch.tensor([1]), torch.tensor([1]),
                     torch.zeros(1, 0, dtype=torch.long), margin=0.1)


def test_in_batch_negatives_are_other_examples_positives():
    # example 0: query 0, positive 1; example 1: query 2, positive 3.  Item 3 is
    # a near-copy of item 0, so as example 0's in-batch negative it violates
    # the margin; item 1 as example 1's in-batch negative does not.
    z = unit([1, 0], [0.8, 0.6], [0.99, 0.14], [1, 0.01], [-1, 0])
    args = dict(queries=torch.tensor([0, 2]), positives=torch.tensor([1, 3]),
                easy_negatives=torch.tensor([4]), hard_negatives=torch.zeros((2, 0), dtype=torch.long))
    plain = max_margin_loss(z, **args, margin=0.1)
    mixed = max_margin_loss(z, **args, margin=0.1, in_batch=True)
    assert plain.loss.item() == 0.0
    expected = (float(z[0] @ z[3]) - float(z[0] @ z[1]) + 0.1) / 4   # 4 triplets, one violated
    assert mixed.loss.item() == pytest.approx(expected, abs=1e-6)
    assert mixed.violated_ratio == 0.25


def test_hard_negatives_raise_the_loss_when_they_are_close():
    z = unit([1, 0], [0.8, 0.6], [0, 1], [0.9, 0.44])
    base = dict(queries=torch.tensor([0]), positives=torch.tensor([1]),
                easy_negatives=torch.tensor([2]))
    easy_only = max_margin_loss(z, **base, hard_negatives=torch.zeros(1, 0, dtype=torch.long),
                                margin=0.1)
    with_hard = max_margin_loss(z, **base, hard_negatives=torch.tensor([[3]]), margin=0.1)
    assert easy_only.loss.item() == 0.0 and with_hard.loss.item() > 0 and with_hard.hard > 0


def test_no_negatives_is_a_clear_error():
    z = unit([1, 0], [0, 1])
    with pytest.raises(ValueError, match="easy_negatives"):
        max_margin_loss(z, torch.tensor([0]), torch.tensor([1]), torch.zeros(0, dtype=torch.long),
                        torch.zeros(1, 0, dtype=torch.long), 0.1)


def test_curriculum_adds_one_hard_negative_per_epoch():
    # PinSage: epoch n (1-based) uses n-1 hard negatives per example
    assert [hard_negatives_for(e) for e in range(5)] == [0, 1, 2, 3, 4]


def test_configured_schedule_overrides_and_holds_its_last_value():
    assert [hard_negatives_for(e, (0, 2, 5)) for e in range(6)] == [0, 2, 5, 5, 5, 5]
    with pytest.raises(ValueError):
        hard_negatives_for(-1)


def with_prior(z, seed):
    """[z ‖ β]: a random β per item, in cosine units."""
    g = torch.Generator().manual_seed(seed + 1)
    return torch.cat([z, torch.rand(len(z), 1, generator=g) * 2 - 1], dim=1)


def prior_score(v):
    """score(q, c) = z_q·z_c + β_c, by hand."""
    return lambda q, c: float(v[q, :-1] @ v[c, :-1]) + float(v[c, -1])


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(0, 5), st.integers(0, 3),
       st.floats(0.01, 1.0), st.booleans())
def test_with_a_prior_every_candidates_beta_adds_to_its_score(seed, batch, easy, hard, margin,
                                                              in_batch):
    z, q, p, e, h = random_batch(seed, batch, easy, hard)
    v = with_prior(z, seed)
    args = (q.tolist(), p.tolist(), e.tolist(), h.tolist())
    got = ranking_loss("max_margin", v, q, p, e, h, margin=margin, in_batch=in_batch,
                       prior=True).loss.item()
    assert got == pytest.approx(reference(v, *args, margin, in_batch,
                                          score=prior_score(v)), abs=1e-5)
    got = ranking_loss("softmax", v, q, p, e, h, margin=margin, temperature=0.2,
                       in_batch=in_batch, prior=True).loss.item()
    assert got == pytest.approx(softmax_reference(v, *args, 0.2, in_batch,
                                                  score=prior_score(v)), rel=1e-4, abs=1e-5)


def test_a_large_beta_turns_a_negative_into_a_violation():
    # Without the prior the negative (orthogonal) is far below the positive;
    # its β of 1.5 lifts it above.  The query's own β plays no part.
    v = torch.tensor([[1.0, 0.0, 9.0], [0.8, 0.6, 0.0], [0.0, 1.0, 1.5]])
    args = dict(queries=torch.tensor([0]), positives=torch.tensor([1]),
                easy_negatives=torch.tensor([2]),
                hard_negatives=torch.zeros(1, 0, dtype=torch.long), margin=0.1)
    assert ranking_loss("max_margin", v[:, :2], **args).loss.item() == 0.0
    parts = ranking_loss("max_margin", v, **args, prior=True)
    assert parts.loss.item() == pytest.approx(1.5 - 0.8 + 0.1, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 5), st.integers(0, 3),
       st.floats(0.05, 1.0), st.booleans())
def test_the_softmax_subtracts_each_negatives_correction(seed, batch, easy, hard, temperature,
                                                         in_batch):
    z, q, p, e, h = random_batch(seed, batch, easy, hard)
    logq = torch.rand(batch, easy + hard, generator=torch.Generator().manual_seed(seed)) * 3
    got = ranking_loss("softmax", z, q, p, e, h, margin=0.1, temperature=temperature,
                       in_batch=in_batch, negative_logq=logq).loss.item()
    assert got == pytest.approx(softmax_reference(z, q.tolist(), p.tolist(), e.tolist(),
                                                  h.tolist(), temperature, in_batch,
                                                  logq=logq.tolist()),
                                rel=1e-4, abs=1e-5)
    hinge = dict(margin=0.1, in_batch=in_batch)
    assert ranking_loss("max_margin", z, q, p, e, h, negative_logq=logq, **hinge).loss.item() \
        == ranking_loss("max_margin", z, q, p, e, h, **hinge).loss.item()


def test_a_correction_of_the_wrong_width_is_a_clear_error():
    z, q, p, e, h = random_batch(0, 2, 3, 1)
    with pytest.raises(ValueError, match="negative_logq has 6 columns"):
        ranking_loss("softmax", z, q, p, e, h, margin=0.1, negative_logq=torch.zeros(2, 6))


def _learnt_distribution(correct: bool, steps: int = 1500):
    """Free logits θ over items 1..V-1 (item 0, the query, scores q·z_c = θ_c)
    trained by the sampled softmax on positives drawn from `target`, with
    uniform easy negatives and hard negatives from a window of the most
    likely items; returns softmax(θ) and the target."""
    import numpy as np
    from sampler import negatives as neg
    v, batch, n_easy, n_hard = 40, 16, 16, 4
    rng = np.random.default_rng(0)
    target = np.exp(rng.normal(0, 1.0, v - 1))
    target[:10] *= 6                      # items 1..10: the query's related ones
    target /= target.sum()
    window = neg.Windows(np.tile(np.arange(1, 11), (batch, 1)), np.zeros(batch, np.int64),
                         np.full(batch, 10, np.int64))
    rates = neg.easy_rates(v, n_easy)
    theta = torch.zeros(v, 1, requires_grad=True)
    optim = torch.optim.Adam([theta], lr=0.05)
    query = torch.ones(1, 1)
    for step in range(steps):
        pos = rng.choice(np.arange(1, v), batch, p=target)
        easy = rng.choice(v, n_easy, replace=False)
        hard = rng.integers(1, 11, (batch, n_hard))
        logq = neg.logq_correction(window, hard, v, easy, rates) if correct else None
        z = torch.cat([query, theta[1:]])
        loss = ranking_loss("softmax", z, torch.zeros(batch, dtype=torch.long),
                            torch.from_numpy(pos), torch.from_numpy(easy), torch.from_numpy(hard),
                            margin=0.1, temperature=1.0,
                            negative_logq=None if logq is None else torch.from_numpy(logq)).loss
        optim.zero_grad()
        loss.backward()
        optim.step()
    learnt = torch.softmax(theta.detach()[1:, 0], 0).numpy()
    return learnt, target


def test_corrected_hard_negatives_learn_what_the_data_says():
    # Uncorrected, the hard negatives weigh the window's items more in the
    # partition function than the catalogue holds them: the model learns to
    # put them below where the data does.  Corrected, it learns the data's
    # distribution, as uniform negatives alone would.
    corrected, target = _learnt_distribution(True)
    biased, _ = _learnt_distribution(False)
    in_window = slice(0, 10)
    assert biased[in_window].sum() < 0.85 * target[in_window].sum()
    assert abs(corrected[in_window].sum() - target[in_window].sum()) < 0.1 * target[in_window].sum()
    assert abs(corrected - target).sum() < 0.5 * abs(biased - target).sum()
