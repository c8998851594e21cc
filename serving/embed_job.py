"""The embedding job and its records, shared by both engines.

    job = EmbedJob(store_path=..., run_dir=..., out_dir=..., sampler=config.sampler)

`serving/embed.py` (the coordinator and its local process pool) and
`serving/ray_engine.py` (the same stages on Ray Data) both import this
module and neither imports the other's internals: a job runs its chunks
through `runner_for` whichever engine schedules them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import SagewalkError
from sampler.config import ModelKind, SamplerConfig
from gpu_consumer.prior import width
from serving import layerwise


class EmbedError(SagewalkError):
    """An embedding job cannot run as asked."""


@dataclass(frozen=True)
class EmbedJob:
    store_path: str
    run_dir: str          # holds model.pt (gpu_consumer.model.export_model)
    out_dir: str          # job directory: tables, progress, exports
    sampler: SamplerConfig = field(default_factory=SamplerConfig)  # the [sampler] section
    chunk_nodes: int = 65536
    processes: int = 2


@dataclass(frozen=True)
class EmbedResult:
    out_dir: Path
    num_nodes: int
    dim: int
    chunks_run: int
    chunks_skipped: int
    seconds: float
    prior: bool = False   # dim counts the β column (serving/vectors.py)

    def embeddings(self) -> np.ndarray:
        return np.load(self.out_dir / "embeddings.npy", mmap_mode="r")


def neighbourhood_width(job: EmbedJob, model_kind: str) -> int:
    cfg = job.sampler
    return cfg.multisage_num_neighbors if model_kind == ModelKind.MULTISAGE else cfg.num_neighbors


def make_neighbourhood_fn(store, job: EmbedJob, model_kind: str):
    """seeds -> Neighbourhoods: exactly the ones the trainer's inference batches use
    (BatchBuilder.neighbourhoods, fixed inference seed), so serving embeds what
    training validated."""
    from worker.assemble import BatchBuilder
    return BatchBuilder(store, job.sampler, model=model_kind).neighbourhoods


def runner_for(job: EmbedJob, mode: str = "r+") -> layerwise.ChunkRunner:
    """What one process (a pool worker or a Ray actor) runs chunks with: the
    store, the model and the job's tables, opened once."""
    from graphstore import open_store
    from gpu_consumer.model import load_model
    store = open_store(job.store_path)
    model = load_model(job.run_dir)
    kind = model.spec.model
    n = store.node_types[model.spec.item_type]
    tables = layerwise.open_tables(Path(job.out_dir), n, neighbourhood_width(job, kind),
                                   model.spec.hidden_dim, width(model.spec),
                                   model.num_layers, kind == ModelKind.MULTISAGE, mode)
    fn = make_neighbourhood_fn(store, job, kind)
    return layerwise.ChunkRunner(store, model, tables, fn, model.spec.item_type)
