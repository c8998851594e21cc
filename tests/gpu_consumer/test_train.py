import copy

import pytest
import torch

from gpu_consumer.optim import learning_rate
from gpu_consumer.pinsage import PinSage
from gpu_consumer.train import Trainer, rng_state, set_rng_state, use_bf16
from sagewalk.config import load
from tests.gpu_consumer.batches import make_batch


def trainer(*overrides, total=100):
    cfg = load(None, ["trainer.warmup_steps=2", "trainer.lr=0.01", *overrides]).trainer
    torch.manual_seed(0)
    model = PinSage(feature_dim=5, hidden_dim=16, embedding_dim=8, num_layers=2)
    return Trainer(model, cfg, total_steps=total, device=torch.device("cpu"))


def test_loss_falls_on_a_repeated_batch():
    t = trainer("trainer.margin=0.5")
    batch = make_batch(0, batch_size=16, easy=10)
    losses = [t.train_step(batch).loss for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    assert t.step == 30


def test_step_result_reports_rate_examples_and_norm():
    t = trainer()
    r = t.train_step(make_batch(1, batch_size=8))
    assert r.examples == 8 and r.lr == pytest.approx(0.005) and r.grad_norm > 0
    assert r.seconds > 0


def test_warmup_then_cosine_decay_to_min_ratio():
    rates = [learning_rate(s, lr=1.0, warmup_steps=4, total_steps=104, decay="cosine",
                           min_ratio=0.1) for s in range(110)]
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(rates[4:], rates[5:]))
    assert rates[104] == pytest.approx(0.1) and rates[109] == pytest.approx(0.1)
    assert learning_rate(50, lr=1.0, warmup_steps=0, total_steps=100, decay="none") == 1.0
    assert learning_rate(50, lr=1.0, warmup_steps=0, total_steps=100, decay="linear",
                         min_ratio=0.0) == pytest.approx(0.5)


def test_gradient_clipping_bounds_the_update():
    t = trainer("trainer.grad_clip=1e-6", "trainer.warmup_steps=0")
    before = copy.deepcopy(t.model.state_dict())
    t.train_step(make_batch(2))
    # Adam normalises step sizes, so clipping shows in the reported pre-clip norm
    # and in the gradients left after the step
    total = torch.sqrt(sum((p.grad ** 2).sum() for p in t.model.parameters()))
    assert total <= 1e-6 * 1.01
    assert any(not torch.equal(before[k], v) for k, v in t.model.state_dict().items())


def test_resume_from_state_continues_exactly():
    batches = [make_batch(s) for s in range(6)]
    straight = trainer()
    for b in batches:
        straight.train_step(b)
    first = trainer()
    for b in batches[:3]:
        first.train_step(b)
    state = copy.deepcopy(first.state_dict())
    resumed = trainer()
    resumed.load_state_dict(state)
    for b in batches[3:]:
        resumed.train_step(b)
    assert resumed.step == 6
    for k, v in straight.model.state_dict().items():
        assert torch.allclose(v, resumed.model.state_dict()[k], atol=1e-6), k


def test_rng_state_round_trip():
    import random

    import numpy as np
    state = rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


def test_precision_choice():
    assert use_bf16("auto", torch.device("cuda")) and not use_bf16("auto", torch.device("cpu"))
    assert use_bf16("bf16", torch.device("cpu")) and not use_bf16("fp32", torch.device("cuda"))


def test_bf16_autocast_step_runs_on_cpu():
    t = trainer("trainer.precision=bf16")
    r = t.train_step(make_batch(3))
    assert t.bf16 and r.loss == r.loss  # not NaN
    assert all(p.dtype == torch.float32 for p in t.model.parameters())


def test_budget_progress_is_the_further_of_steps_and_clock():
    kw = dict(lr=1.0, warmup_steps=0, total_steps=1000, decay="linear", min_ratio=0.1)
    # a slow machine: 10 of 1000 steps at half the budget -> the clock leads
    assert learning_rate(9, elapsed=0.5, **kw) == pytest.approx(0.55)
    # a fast one: the plan is further on than the clock
    assert learning_rate(499, elapsed=0.1, **kw) == pytest.approx(0.55)
    # the step that spends the budget, or ends the plan, gets exactly the final rate
    assert learning_rate(20, elapsed=1.0, **kw) == pytest.approx(0.1)
    assert learning_rate(999, elapsed=0.3, **kw) == pytest.approx(0.1)
    assert learning_rate(20, elapsed=1.0, **dict(kw, decay="cosine")) == pytest.approx(0.1)


def test_budget_warmup_ends_at_its_steps_or_its_share_whichever_first():
    kw = dict(lr=1.0, warmup_steps=100, total_steps=10**6, decay="none", min_ratio=0.1,
              warmup_fraction=0.1)
    assert learning_rate(9, elapsed=0.01, **kw) == pytest.approx(0.1)    # 10 of 100 steps
    assert learning_rate(9, elapsed=0.05, **kw) == pytest.approx(0.5)    # half of 10 %
    assert learning_rate(9, elapsed=0.2, **kw) == 1.0                    # share reached
    assert learning_rate(99, elapsed=0.0, **kw) == 1.0                   # steps reached
    # the decay runs from the warm-up share to the end
    lin = dict(kw, decay="linear", warmup_steps=0)
    assert learning_rate(0, elapsed=0.1, **lin) == pytest.approx(1.0)
    assert learning_rate(0, elapsed=0.55, **lin) == pytest.approx(0.55)
    assert learning_rate(0, elapsed=1.0, **lin) == pytest.approx(0.1)


def test_trainer_follows_the_budget_share_the_session_sets():
    t = trainer("trainer.time_budget_s=60", "trainer.lr_decay=linear", "trainer.min_lr_ratio=0.1",
                "trainer.warmup_steps=0", total=10**6)
    t.elapsed = 1.0
    assert t.train_step(make_batch(3, batch_size=8)).lr == pytest.approx(0.001)
    assert trainer(total=10).elapsed is None      # no budget: a plan in steps, as before


def test_with_candidate_prior_the_step_scores_candidates_with_their_beta():
    from gpu_consumer.loss import ranking_loss
    cfg = load(None, ["trainer.candidate_prior=true", "trainer.margin=0.5"]).trainer
    torch.manual_seed(0)
    model = PinSage(feature_dim=5, hidden_dim=16, embedding_dim=8, num_layers=2,
                    candidate_prior=True)
    with torch.no_grad():
        torch.nn.init.normal_(model.head.prior.weight)
    batch = make_batch(0, batch_size=16, easy=10)
    with torch.no_grad():
        v = model.train()(batch)
        args = (v, batch.queries, batch.positives, batch.easy_negatives, batch.hard_negatives)
        want = ranking_loss("max_margin", *args, margin=0.5, prior=True).loss.item()
        without = ranking_loss("max_margin", *args, margin=0.5).loss.item()
    assert want != pytest.approx(without)
    t = Trainer(model, cfg, total_steps=10, device=torch.device("cpu"))
    assert t.train_step(batch).loss == pytest.approx(want, rel=1e-5)


def test_a_model_built_with_another_prior_setting_is_refused():
    from types import SimpleNamespace

    from gpu_consumer.layers import ModelError
    cfg = load(None, ["trainer.candidate_prior=true"]).trainer
    model = PinSage(feature_dim=5, hidden_dim=16, embedding_dim=8, num_layers=2)
    model.spec = SimpleNamespace(candidate_prior=False)
    with pytest.raises(ModelError, match="candidate_prior"):
        Trainer(model, cfg, total_steps=10, device=torch.device("cpu"))


def test_the_prior_learns_popularity_on_a_skewed_store(tmp_path):
    """Random-walk positives follow popularity, uniform easy negatives do
    not: a few steps make β rank items by their degree (deterministic: fixed
    seeds, one thread; ~2 s)."""
    import numpy as np
    from scipy.stats import spearmanr

    from gpu_consumer.model import build_model
    from gpu_consumer.tensors import TensorBatch
    from graphstore import build_from_arrays
    from worker.assemble import BatchBuilder
    from worker.ticket import Ticket
    rng = np.random.default_rng(0)
    popularity = 1.0 / np.arange(1, 101)               # Zipf over 100 items
    items = rng.choice(100, 3000, p=popularity / popularity.sum())
    store = build_from_arrays(tmp_path / "store",
                              edges={"r": ("item", "user", items, rng.integers(0, 200, 3000))},
                              node_counts={"item": 100, "user": 200})
    cfg = load(None, ["trainer.hidden_dim=16", "trainer.embedding_dim=8",
                      "trainer.candidate_prior=true", "trainer.id_embedding_buckets=100",
                      "trainer.warmup_steps=0", "trainer.lr=0.01", "sampler.batch_size=32",
                      "sampler.num_walks=8", "sampler.walk_length=3",
                      "sampler.num_neighbors=4"])
    builder = BatchBuilder(store, cfg.sampler, model="pinsage")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t = Trainer(build_model(cfg.trainer, store, cfg.sampler), cfg.trainer, total_steps=100,
                    device=torch.device("cpu"))
        per_epoch = builder.num_batches(0)
        for step in range(100):
            ticket = Ticket(0, step % per_epoch, 1_000_003 * step + 7, 0)
            t.train_step(TensorBatch.from_minibatch(builder.build(ticket)))
        batch = TensorBatch.from_minibatch(builder.inference_batch(np.arange(100)))
        beta = t.embed(batch)[batch.queries, -1].numpy()
    finally:
        torch.set_num_threads(threads)
    degree = np.bincount(items, minlength=100)
    assert spearmanr(beta, degree).correlation > 0.4   # 0.69 when written
    popular, rare = degree >= np.quantile(degree, 0.9), degree <= np.median(degree)
    assert beta[popular].mean() > beta[rare].mean()


@pytest.mark.parametrize("in_loss", [False, True])
def test_a_degree_prior_is_scored_in_the_loss_only_when_asked(in_loss):
    from gpu_consumer.loss import ranking_loss
    cfg = load(None, ["trainer.candidate_prior=true", "trainer.prior_source=degree",
                      f"trainer.prior_in_loss={str(in_loss).lower()}", "trainer.margin=0.5"]).trainer
    torch.manual_seed(0)
    model = PinSage(feature_dim=5, hidden_dim=16, embedding_dim=8, num_layers=2,
                    candidate_prior=True, prior_items=200)
    with torch.no_grad():
        model.head.prior_table.copy_(torch.linspace(-2, 2, 200))
    batch = make_batch(0, batch_size=16, easy=10)
    with torch.no_grad():
        v = model.train()(batch)
        args = (batch.queries, batch.positives, batch.easy_negatives, batch.hard_negatives)
        with_beta = ranking_loss("max_margin", v, *args, margin=0.5, prior=True).loss.item()
        cosines = ranking_loss("max_margin", v[:, :-1], *args, margin=0.5).loss.item()
    assert with_beta != pytest.approx(cosines)
    t = Trainer(model, cfg, total_steps=10, device=torch.device("cpu"))
    want = with_beta if in_loss else cosines
    assert t.train_step(batch).loss == pytest.approx(want, rel=1e-5)
    assert t.embed(batch).shape[1] == 9                  # served with β either way


def test_a_model_built_with_another_prior_source_is_refused():
    from types import SimpleNamespace

    from gpu_consumer.layers import ModelError
    cfg = load(None, ["trainer.candidate_prior=true", "trainer.prior_source=degree"]).trainer
    model = PinSage(feature_dim=5, hidden_dim=16, embedding_dim=8, num_layers=2,
                    candidate_prior=True)
    model.spec = SimpleNamespace(candidate_prior=True, prior_source="learned")
    with pytest.raises(ModelError, match="prior_source"):
        Trainer(model, cfg, total_steps=10, device=torch.device("cpu"))


def test_the_softmax_step_subtracts_the_batchs_logq_correction():
    import dataclasses
    import numpy as np
    from gpu_consumer.tensors import TensorBatch
    from tests.gpu_consumer.batches import make_minibatch
    plain = make_minibatch(3, batch_size=8, easy=6, hard=2)
    logq = np.full((8, 6 + 2), 2.0, np.float16)          # as producers send it
    corrected = TensorBatch.from_minibatch(dataclasses.replace(plain, negative_logq=logq))
    assert corrected.negative_logq.dtype == torch.float32
    uncorrected = TensorBatch.from_minibatch(plain)
    assert uncorrected.negative_logq is None
    softmax = [trainer("trainer.loss=softmax").train_step(b).loss
               for b in (corrected, uncorrected)]
    assert softmax[0] < softmax[1]         # every negative's logit lowered by 2
    hinge = [trainer("trainer.loss=max_margin").train_step(b).loss
             for b in (corrected, uncorrected)]
    assert hinge[0] == hinge[1]
