"""All-node embeddings: layer-wise (serving/embed.py) vs naive per-node recomputation.

A synthetic bipartite store (items rated by users in planted communities), a
freshly initialised PinSage model (weights do not change the cost), then:

- layer-wise: `embed_all` over every item (neighbourhoods, h0, layer 1, layer 2,
  dense head), N processes;
- naive: each node on its own, as a per-node service would: its 2-hop
  computation graph sampled (walks from the node and from each of its
  neighbours: BatchBuilder.inference_batch([node])) and the model's forward
  pass over it; nothing shared between nodes.  Timed on a sample of nodes in
  one process, as nodes/s; the results must equal the layer-wise ones.

    python benchmarks/embed.py [--items 200000] [--processes 2] [--quick]

Prints one JSON line with nodes_per_s (layer-wise, end to end including the
walks), naive_nodes_per_s, and speedup = their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(tmp: Path, items: int, users: int, edges: int, feature_dim: int) -> None:
    import numpy as np

    from gpu_consumer.model import build_model, export_model
    from graphstore import build_from_arrays
    rng = np.random.default_rng(0)
    u = rng.integers(0, users, edges)
    community = rng.integers(0, 64, users)
    i = (community[u] * (items // 64) + rng.zipf(1.5, edges) % (items // 64)) % items
    store = build_from_arrays(tmp / "store", edges={"rates": ("item", "user", i, u)},
                              node_counts={"item": items, "user": users},
                              features={"item": rng.standard_normal((items, feature_dim))
                                        .astype(np.float32)})
    cfg = config()
    export_model(tmp / "run", build_model(cfg.trainer, store, cfg.sampler))


def per_node(tmp: Path, nodes) -> tuple:
    import numpy as np
    import torch

    from gpu_consumer.model import load_model
    from gpu_consumer.tensors import TensorBatch
    from graphstore import open_store
    from worker.assemble import BatchBuilder
    builder = BatchBuilder(open_store(tmp / "store"), config().sampler, model="pinsage")
    model = load_model(tmp / "run")
    start = time.perf_counter()
    with torch.inference_mode():
        out = [model(TensorBatch.from_minibatch(builder.inference_batch(np.array([v]))))
               for v in nodes.tolist()]
    return torch.cat(out).numpy(), time.perf_counter() - start


def config():
    from sagewalk.config import load
    return load(None, ["trainer.hidden_dim=128", "trainer.embedding_dim=64",
                       "sampler.num_neighbors=10", "sampler.num_walks=10",
                       "sampler.walk_length=4"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--naive-sample", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    items = 20_000 if args.quick else args.items
    sample = 300 if args.quick else args.naive_sample
    import numpy as np
    import torch

    from serving.embed import EmbedJob, embed_all
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        build(tmp, items, users=items // 2, edges=items * 20, feature_dim=64)
        job = EmbedJob(str(tmp / "store"), str(tmp / "run"), str(tmp / "job"),
                       config().sampler, chunk_nodes=8192, processes=args.processes)
        result = embed_all(job, progress=False)
        torch.set_num_threads(1)   # naive runs in one process: compare per core below
        nodes = np.random.default_rng(1).choice(items, size=sample, replace=False)
        naive, naive_s = per_node(tmp, nodes)
        vectors = np.asarray(result.embeddings())[nodes]
        max_diff = float(np.abs(naive - vectors).max())
    layer_rate = items / result.seconds
    naive_rate = sample / naive_s
    print(json.dumps({
        "items": items, "processes": args.processes, "seconds": round(result.seconds, 2),
        "nodes_per_s": round(layer_rate, 1), "naive_nodes_per_s": round(naive_rate, 1),
        "naive_sample": sample, "speedup": round(layer_rate / naive_rate, 1),
        "speedup_per_process": round(layer_rate / args.processes / naive_rate, 1),
        "max_abs_diff_vs_naive": max_diff, "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
