"""All-node embeddings, layer by layer, chunked, resumable, in N processes.

    result = embed_all(EmbedJob(store_path=..., run_dir=..., out_dir=..., sampler=cfg))

The job and its records are `serving/embed_job.py`; this module schedules
the chunks, in N local processes or (engine "ray") on `serving/ray_engine.py`.

The job directory holds the memmapped tables (serving/layerwise.py) and
`progress.json`: the finished chunks of every stage plus the job's identity
(store digest, model file digest, sampler settings).  A rerun with the same
identity skips finished chunks; a different identity starts afresh, so stale
rows can never mix with new ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing as mp
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from common.errors import ConfigError
from common.schema import to_dict
from gpu_consumer.prior import width
from sampler.config import with_neighbourhoods
from serving import layerwise
from serving.embed_job import (EmbedError, EmbedJob, EmbedResult, neighbourhood_width,
                                runner_for)
from serving.vectors import layout_of, read_layout, write_layout

log = logging.getLogger(__name__)

PROGRESS = "progress.json"
PROGRESS_VERSION = 1
EXPORT_ROWS = 1 << 16   # rows per export chunk (x dim x 4 bytes, twice: read and written)


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _identity(job: EmbedJob, store) -> dict:
    from gpu_consumer.model import MODEL_FILE
    identity = {"version": PROGRESS_VERSION, "store": store.digest,
                "model": _file_digest(Path(job.run_dir) / MODEL_FILE),
                "sampler": to_dict(job.sampler), "chunk_nodes": job.chunk_nodes}
    return json.loads(json.dumps(identity))   # tuples -> lists, as read back from disk


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


# -- worker processes --------------------------------------------------------

_RUNNER = None


def _init_worker(job: EmbedJob) -> None:
    global _RUNNER
    layerwise.limit_threads()
    _RUNNER = runner_for(job)


def _run_chunk(task: tuple[str, int, int]) -> tuple[str, int, int]:
    _RUNNER.run(*task)
    return task


# -- the coordinator ---------------------------------------------------------

def embed_all(job: EmbedJob, *, progress: bool = True, engine: str = "local") -> EmbedResult:
    """Run (or resume) every stage; returns where the embeddings are.  engine "ray"
    runs the same stages and chunks on Ray Data (serving/ray_engine.py)."""
    import time
    from graphstore import open_store
    from gpu_consumer.model import load_model
    if engine == "ray":
        from serving.ray_engine import require_ray
        require_ray()   # before anything is written: a missing extra is a clear error
    start = time.perf_counter()
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    store = open_store(job.store_path)
    model = load_model(job.run_dir)
    job = as_trained(job)
    item_type, configured = model.spec.item_type, job.sampler.item_type
    if item_type not in store.node_types or item_type != configured:
        raise EmbedError(f"the model at {job.run_dir} embeds node type {item_type!r}; the "
                         f"store at {store.path} has {', '.join(store.node_types)} and "
                         f"sampler.item_type is {configured!r}: embed with "
                         "the store and config the model was trained on")
    n = store.node_types[item_type]
    done = _load_progress(out, _identity(job, store), n, job, model)
    layout = layout_of(model.spec)
    write_layout(out, layout)   # so `export` (and its readers) know what the last column is
    chunks = _chunks(n, job.chunk_nodes)
    todo = {s: [c for c in chunks if f"{c[0]}:{c[1]}" not in done["done"].get(s, [])]
            for s in layerwise.stages(model.num_layers)}
    run = sum(len(v) for v in todo.values())
    skipped = len(chunks) * len(todo) - run
    if skipped:
        log.info("resuming %s: %d of %d chunks already done", out, skipped, skipped + run)
    if engine == "ray":
        from serving.ray_engine import run_stages_on_ray
        run_stages_on_ray(job, todo, done, lambda: _save_progress(out, done), progress)

    else:
        _run_stages(job, todo, done, out, progress, total=run)
    return EmbedResult(out, n, layout.dim, run, skipped, time.perf_counter() - start,
                       prior=layout.prior)


def as_trained(job: EmbedJob) -> EmbedJob:
    """`job` with the neighbourhood settings its model was trained with (the
    model's layers pool what those walks select; `sagewalk train` picks them
    from the store, so the config a user embeds with may not hold them)."""
    from gpu_consumer.model import trained_neighbourhoods
    trained = trained_neighbourhoods(job.run_dir)
    if not trained:
        log.warning("%s: the model does not record the neighbourhoods it was trained with "
                    "(exported before they were); embedding with the config's [sampler] "
                    "walks, which must be the training run's", job.run_dir)
        return job
    try:
        sampler, changed = with_neighbourhoods(job.sampler, trained)
    except ConfigError as err:
        raise EmbedError(f"{job.run_dir}: the neighbourhoods model.pt records are not valid "
                         f"sampler settings ({err}); export the model again") from err
    if changed:
        log.info("embedding with the neighbourhoods the model was trained with: %s",
                 "; ".join(changed))
    return dataclasses.replace(job, sampler=sampler)


def _load_progress(out: Path, identity: dict, n: int, job: EmbedJob, model) -> dict:
    path = out / PROGRESS
    if path.exists():
        state = json.loads(path.read_text())
        if state.get("identity") == identity:
            return state
        log.warning("%s: store, model or settings changed since the last run; starting afresh",
                    path)
    kind = model.spec.model
    layerwise.open_tables(out, n, neighbourhood_width(job, kind), model.spec.hidden_dim,
                          width(model.spec), model.num_layers, kind == "multisage", "w+")
    state = {"identity": identity, "done": {}}
    _save_progress(out, state)
    return state


def _save_progress(out: Path, state: dict) -> None:
    tmp = out / (PROGRESS + ".tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, out / PROGRESS)


def _run_stages(job: EmbedJob, todo: dict, state: dict, out: Path, progress: bool,
                total: int) -> None:
    from tqdm import tqdm
    bar = tqdm(total=total, unit="chunk", desc="embed", disable=not progress)
    pool = None
    if job.processes > 1 and total > 1:
        # spawn: a forked child would inherit torch's thread pool and any CUDA state.
        # An executor (not mp.Pool) so a worker that dies raises BrokenProcessPool
        # here instead of hanging the job.
        pool = ProcessPoolExecutor(job.processes, mp.get_context("spawn"),
                                   initializer=_init_worker, initargs=(job,))
    else:
        global _RUNNER
        _RUNNER = runner_for(job)   # in-process: keep torch's own thread count
    try:
        for stage, chunks in todo.items():   # stages in order: each reads the one before
            tasks = [(stage, lo, hi) for lo, hi in chunks]
            results = _unordered(pool, tasks) if pool else map(_run_chunk, tasks)
            for _, lo, hi in results:
                state["done"].setdefault(stage, []).append(f"{lo}:{hi}")
                _save_progress(out, state)
                bar.set_postfix(stage=stage)
                bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def _unordered(pool: ProcessPoolExecutor, tasks: list):
    futures = [pool.submit(_run_chunk, t) for t in tasks]
    try:
        for future in as_completed(futures):
            yield future.result()
    except BrokenProcessPool as err:
        raise EmbedError("an embedding worker process died (out of memory, or killed); "
                         "rerun the same command to resume from the finished chunks") from err


def export(result_dir: Path, store, item_type: str, export_dir: Path) -> Path:
    """embeddings.npy (float32 [n, d]), ids.txt (external ids, row order) and
    vectors.json (whether the last column is the candidate prior β)."""
    from graphstore.pages import drop
    export_dir = Path(export_dir)
    export_dir.mkdir(parents=True, exist_ok=True)
    vectors = np.load(Path(result_dir) / "embeddings.npy", mmap_mode="r")
    layout = read_layout(result_dir, vectors.shape[1])
    out = np.lib.format.open_memmap(export_dir / "embeddings.npy", "w+", np.float32,
                                    vectors.shape)
    idmap = store.ids(item_type)
    with open(export_dir / "ids.txt", "w", encoding="utf-8") as ids:
        for lo in range(0, len(vectors), EXPORT_ROWS):   # a chunk at a time: bounded memory
            hi = min(lo + EXPORT_ROWS, len(vectors))
            out[lo:hi] = vectors[lo:hi]
            drop(out, lo, hi)
            drop(vectors, lo, hi)
            ids.write("".join(f"{i}\n" for i in idmap.to_external(np.arange(lo, hi))))
    out.flush()
    write_layout(export_dir, layout)
    return export_dir
