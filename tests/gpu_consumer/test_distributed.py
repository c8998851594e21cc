"""Two gloo ranks, each on its own batches, end with the weights one process
gets by averaging the two batches' gradients at every step (and, in an uneven
last round where rank 1 idles, the one batch's gradient); two ranks of a
TrainingSession split every epoch exactly, also across a restart."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from gpu_consumer import distributed
from gpu_consumer.loss import max_margin_loss
from gpu_consumer.optim import learning_rate, make_optimizer, set_learning_rate
from gpu_consumer.pinsage import PinSage
from gpu_consumer.train import Trainer
from sagewalk.config import load

STEPS = 4


def config():
    return load(None, ["trainer.warmup_steps=2", "trainer.lr=0.01", "trainer.grad_clip=0.5",
                       "trainer.margin=0.5"]).trainer


def fresh_model(seed):
    torch.manual_seed(seed)
    return PinSage(feature_dim=5, hidden_dim=16, embedding_dim=8, num_layers=2)


def batches():
    from tests.gpu_consumer.batches import make_batch
    return [make_batch(s, batch_size=8, easy=6, hard=1) for s in range(2 * STEPS + 1)]


def rank_main(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    me = distributed.from_environment()
    distributed.init(me, torch.device("cpu"))
    # different seeds per rank: the broadcast from rank 0 must make them equal
    trainer = Trainer(fresh_model(rank), config(), total_steps=STEPS + 1,
                      device=torch.device("cpu"))
    data = batches()
    for i in range(STEPS):
        trainer.train_step(data[2 * i + rank])
    # an uneven last round: only rank 0 has a batch, rank 1 idles in lockstep
    if rank == 0:
        trainer.train_step(data[2 * STEPS])
    else:
        trainer.idle_step()
    torch.save(trainer.model.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    distributed.shutdown()


def single_process_reference():
    cfg = config()
    model = fresh_model(0)
    optimizer = make_optimizer(model, cfg)
    data = batches()
    for step in range(STEPS + 1):
        optimizer.zero_grad()
        round_ = data[2 * step:2 * step + 2]  # the last round holds one batch
        for b in round_:
            out = model(b)
            loss = max_margin_loss(out, b.queries, b.positives, b.easy_negatives,
                                   b.hard_negatives, cfg.margin).loss
            (loss / len(round_)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        set_learning_rate(optimizer, learning_rate(step, lr=cfg.lr, warmup_steps=cfg.warmup_steps,
                                                   total_steps=STEPS + 1, decay=cfg.lr_decay,
                                                   min_ratio=cfg.min_lr_ratio))
        optimizer.step()
    return model.state_dict()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two spawned processes importing torch: ~12 s on 2 cores
def test_two_gloo_ranks_equal_single_process_training(tmp_path):
    mp.start_processes(rank_main, args=(2, free_port(), str(tmp_path)), nprocs=2,
                       join=True, start_method="spawn")
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    reference = single_process_reference()
    for name, value in reference.items():
        assert torch.equal(rank0[name], rank1[name]), f"ranks diverged at {name}"
        assert torch.allclose(rank0[name], value, atol=1e-5, rtol=1e-4), name
    # and training did move the weights away from the start
    start = fresh_model(0).state_dict()
    assert any(not torch.allclose(start[k], rank0[k]) for k in start)


class LedgerBatches:
    """A rank's plan through the real Ledger, batches built right here by the
    real BatchBuilder (the socket path is tests/e2e); records what it trained."""

    def __init__(self, builder, plan, cursor=None):
        from gpu_consumer.ledger import Ledger
        self.builder, self.ledger, self.trained = builder, Ledger(plan, cursor), []

    def __iter__(self):
        from gpu_consumer.tensors import TensorBatch
        while (ticket := self.ledger.next_ticket("in-process")) is not None:
            assert self.ledger.accept(ticket) == "accepted"
            yield TensorBatch.from_minibatch(self.builder.build(ticket))

    def done(self, ticket):
        self.ledger.mark_done(ticket)
        self.trained.append(ticket)

    def state_dict(self):
        return self.ledger.state_dict()


EPOCHS, BATCHES = 2, 5  # 5 batches over 2 ranks: rank 1 idles once per epoch


def session_config(run_dir, *overrides):
    return load(None, [
        "trainer.hidden_dim=16", "trainer.embedding_dim=8", f"trainer.epochs={EPOCHS}",
        f"trainer.batches_per_epoch={BATCHES}", "trainer.validate_every=0",
        "trainer.warmup_steps=1", "trainer.checkpoint_every_s=1000", "trainer.device=\"cpu\"",
        "trainer.hard_negative_schedule=[0, 1]",
        f"trainer.run_dir=\"{run_dir}\"", "sampler.batch_size=8", "sampler.easy_negatives=8",
        "sampler.num_walks=4", "sampler.walk_length=4", "sampler.num_neighbors=4", *overrides])


def session_rank_main(rank, world, port, store_path, out_dir):
    """Phase 1 stops at max_steps=2 (checkpoint); phase 2 resumes to the end."""
    import torch.distributed as dist

    from gpu_consumer.session import TrainingSession
    from graphstore import open_store
    from worker.assemble import BatchBuilder
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    me = distributed.from_environment()
    distributed.init(me, torch.device("cpu"))
    store, phases = open_store(store_path), []
    for overrides in (["trainer.max_steps=2"], []):
        config = session_config(os.path.join(out_dir, "run"), *overrides)
        builder = BatchBuilder(store, config.sampler)
        torch.manual_seed(rank)  # different initial weights: the broadcast makes them equal
        session = TrainingSession(config, store, builder, rank=me)
        resumed = session.restore()
        stream = LedgerBatches(builder, session.plan, session.run_state.cursor)
        session.run(stream)
        session.finish(export=False)
        dist.barrier()  # rank 0's checkpoint is written before anyone restores it
        phases.append({"resumed": resumed, "step": session.trainer.step,
                       "stop_reason": session.stop_reason,
                       "trained": [[t.epoch, t.batch, t.seed, t.hard_negatives]
                                   for t in stream.trained]})
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(phases, f)
    torch.save(session.trainer.model.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    distributed.shutdown()


@pytest.mark.slow  # two spawned processes, a store and a BatchBuilder each: ~20 s on 2 cores
def test_two_session_ranks_train_each_epoch_exactly_once_across_a_restart(tmp_path):
    import numpy as np

    from gpu_consumer.ledger import EpochPlan
    from graphstore import build_from_arrays
    from graphstore.synth import generate
    g = generate(2000, 80, 150, 3, seed=4, p_in=0.9)
    build_from_arrays(tmp_path / "store", edges={"rates": ("item", "user", g.items, g.users)},
                      node_counts={"item": 80, "user": 150},
                      features={"item": np.random.default_rng(0).standard_normal(
                          (80, 4)).astype(np.float32)})
    mp.start_processes(session_rank_main, args=(2, free_port(), str(tmp_path / "store"),
                                                str(tmp_path)),
                       nprocs=2, join=True, start_method="spawn")
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    trained = [tuple(t) for phases in ranks for phase in phases for t in phase["trained"]]
    # the one-process plan: same base seed, every batch of every epoch
    single = EpochPlan(EPOCHS, num_batches=lambda e: BATCHES, hard_negatives=lambda e: e,
                       base_seed=session_config(tmp_path).sampler.seed)
    expected = [(t.epoch, t.batch, t.seed, t.hard_negatives) for t in
                (single.ticket(e, b) for e in range(EPOCHS) for b in range(BATCHES))]
    assert len(trained) == len(set(trained)), "a batch was trained twice"
    assert sorted(trained) == expected
    for r, phases in enumerate(ranks):
        assert all(t[1] % 2 == r for phase in phases for t in phase["trained"])
        first, second = phases
        assert (first["resumed"], first["step"], first["stop_reason"]) == (False, 2, "max_steps")
        assert len(first["trained"]) == 2  # one batch per step on both ranks
        # 3 steps per epoch on both ranks: rank 1 (2 batches per epoch) idles twice
        assert (second["resumed"], second["step"], second["stop_reason"]) == (
            True, 2 * 3, "completed")
    weights = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_single_process_helpers_are_no_ops():
    assert distributed.from_environment().world_size in (1, int(os.environ.get("WORLD_SIZE", 1)))
    assert distributed.consensus(True, False) == (True, False)
    assert distributed.all_gather_json({"a": [1, 2]}) == [{"a": [1, 2]}]
    assert not distributed.active()
