"""A/B of trainer settings on MovieLens-1M at a fixed number of steps.

    python3 benchmarks/offline_ab.py --config OUT/sagewalk.toml [--steps 3000]
                                     [--set trainer.loss=softmax ...] [--threads 1] [--quick]

OUT is a finished `sagewalk demo --out OUT` (its store and config).  One
process samples each batch with the producers' BatchBuilder and trains it
with the trainer's Trainer, for exactly --steps steps (the cosine decay spans
them), then embeds every item and scores the DGL protocol with the same code
as the demo.  No daemons, so two settings can run side by side on two cores
with the same number of steps, whatever the load: a fair A/B of the model and
loss, not of the pipeline's throughput.  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="OUT/sagewalk.toml of a demo run")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--dataset", default=None,
                        help="converted dataset dir (default: the demo cache's ml-1m)")
    parser.add_argument("--quick", action="store_true", help="300 steps")
    args = parser.parse_args()
    if args.quick:
        args.steps = 300
    print(json.dumps(run(args)), flush=True)


def run(args) -> dict:
    from pathlib import Path

    import numpy as np
    import torch

    from graphstore.store import open_store
    from sagewalk import config as configuration
    from serving import methods
    from serving.evaluate import load_held_out
    from serving.movielens import default_cache

    torch.set_num_threads(args.threads)
    cfg = configuration.load(args.config, args.set)
    store = open_store(cfg.graphstore.path)
    started = time.perf_counter()
    vectors, ids, losses, train_s = train_and_embed(cfg, store, args.steps)
    held = load_held_out(Path(args.dataset) if args.dataset else default_cache() / "ml-1m")
    scores = methods.evaluate_methods(
        {"model": methods.CatalogueEmbeddings(vectors, ids, held.item_ids,
                                              prior=cfg.trainer.candidate_prior)},
        held)["model"]
    return {"set": args.set, "steps": args.steps, **scores,
            "final_loss": round(float(np.mean(losses[-300:])), 4),
            "train_seconds": round(train_s, 1),
            "total_seconds": round(time.perf_counter() - started, 1)}


def train_and_embed(cfg, store, steps: int):
    """Train `steps` steps on the producers' batches in this process (the cosine
    decay spans them), then embed every item: (vectors [n, d], external ids,
    per-step losses, training seconds).  Shared with holdout_ab.py."""
    import numpy as np
    import torch

    from gpu_consumer.loss import hard_negatives_for
    from gpu_consumer.model import build_model
    from gpu_consumer.tensors import TensorBatch
    from gpu_consumer.train import Trainer
    from worker.assemble import BatchBuilder
    from worker.ticket import Ticket

    builder = BatchBuilder(store, cfg.sampler, model=cfg.trainer.model)
    trainer = Trainer(build_model(cfg.trainer, store, cfg.sampler), cfg.trainer,
                      total_steps=steps, device=torch.device("cpu"))
    per_epoch = cfg.trainer.batches_per_epoch or builder.num_batches(0)
    available = builder.num_batches(0)
    train_s, losses = 0.0, []
    for step in range(steps):
        epoch = step // per_epoch
        level = hard_negatives_for(epoch, cfg.trainer.hard_negative_schedule)
        batch = builder.build(Ticket(epoch, step % available, 1_000_003 * step + 7, level))
        tick = time.perf_counter()
        losses.append(trainer.train_step(TensorBatch.from_minibatch(batch)).loss)
        train_s += time.perf_counter() - tick
    item = cfg.sampler.item_type
    n = store.node_types[item]
    vectors = np.concatenate([
        trainer.embed(TensorBatch.from_minibatch(
            builder.inference_batch(np.arange(s, min(n, s + 512))))).numpy()
        for s in range(0, n, 512)])
    ids = [str(x) for x in store.ids(item).to_external(np.arange(n))]
    return vectors, ids, losses, train_s


if __name__ == "__main__":
    main()
