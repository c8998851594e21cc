"""`sagewalk embed --engine ray`: the layer-wise job on Ray Data (optional extra).

    pip install 'ray[data]'
    sagewalk embed --config sagewalk.toml --engine ray

The same job as the local engine (serving/embed_job.py; serving/embed.py keeps
the identity, progress.json, memmapped tables and chunk size, and calls
`run_stages_on_ray` for `embed_all(job, engine="ray")`) with only the
executor swapped: each stage is a
Ray Data `map_batches` over a dataset of node-range shards (one row per
shard: start, stop), run by an actor that holds a layerwise.ChunkRunner and
writes the shard's rows of the stage's table.  A shard is named by its range,
so a retried shard rewrites the same rows and the progress record lists it
once: retries cannot duplicate output.  Stages run one after another because
each reads the whole table of the one before.

Ray runs in local mode with ONE CPU (larger pools deadlocked on a 2-core
machine) and is shut down when the job ends, unless the caller had already
started Ray (then its cluster is used and left running; the job directory must
then be on a filesystem every Ray node sees).
"""

from __future__ import annotations

import logging
import warnings

from serving.embed_job import EmbedError, EmbedJob, runner_for

# Ray reserves its object store up front; the shards' rows are a few integers,
# so a small store keeps Ray from claiming memory on a shared machine.
OBJECT_STORE_BYTES = 128 << 20
# A shard whose actor dies (killed, out of memory) is retried this many times;
# a retry rewrites the same rows, so it is safe.
SHARD_RETRIES = 2


def require_ray() -> None:
    """EmbedError naming the extra to install when Ray Data cannot be imported
    (`embed_all(job, engine="ray")` asks before it writes anything)."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError as err:
        raise EmbedError(f"--engine ray needs Ray Data ({err}); install the extra with "
                         "pip install 'ray[data]', or use --engine local (the default), "
                         "which runs N local processes") from None


class _ShardWriter:
    """One Ray actor's share of a stage: loads store, model and tables once, then
    writes the rows of every shard it is given."""

    def __init__(self, job: EmbedJob, stage: str):
        from serving import layerwise
        layerwise.limit_threads()     # the actor holds one CPU: one torch thread
        self.stage = stage
        self.runner = runner_for(job)

    def __call__(self, batch: dict) -> dict:
        for lo, hi in zip(batch["start"].tolist(), batch["stop"].tolist()):
            self.runner.run(self.stage, lo, hi)   # flushes its rows before returning
        return {"start": batch["start"], "stop": batch["stop"]}


def run_stages_on_ray(job: EmbedJob, todo: dict, state: dict, save, progress: bool) -> None:
    """Run the unfinished chunks `todo` ({stage: [(lo, hi)]}, stages in order),
    recording each finished shard in `state["done"]` and calling `save()`."""
    import ray
    from tqdm import tqdm
    if not any(todo.values()):
        return                    # all done: no need to start Ray
    started = _start_ray(ray)
    bar = tqdm(total=sum(len(v) for v in todo.values()), unit="chunk", desc="embed (ray)",
               disable=not progress)
    try:
        for stage, shards in todo.items():
            if shards:
                bar.set_postfix(stage=stage)
                _run_stage(job, stage, shards, state, save, bar.update)
    finally:
        bar.close()
        if started:
            ray.shutdown()


def _start_ray(ray) -> bool:
    import ray.data
    # One bar over chunks, as the local engine shows, instead of Ray Data's
    # per-dataset bars and execution logs (a dozen lines per stage).
    ray.data.DataContext.get_current().enable_progress_bars = False
    # ERROR: Ray Data warns that bars are off; its failures reach us as exceptions.
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    if ray.is_initialized():
        return False
    ray.init(num_cpus=1, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES,
             logging_level=logging.WARNING, configure_logging=False)
    return True


def _run_stage(job: EmbedJob, stage: str, shards: list, state: dict, save, tick) -> None:
    import ray
    import ray.data
    import torch
    rows = [{"start": lo, "stop": hi} for lo, hi in shards]
    with warnings.catch_warnings():
        # Ray Data's own default is unbounded restarts (a shard that kills its actor
        # every time would loop forever); bounding them needs these two remote
        # args, which Ray 2.5x marks deprecated without a named replacement yet.
        warnings.simplefilter("ignore", DeprecationWarning)
        ds = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _ShardWriter, fn_constructor_args=(job, stage), batch_size=1,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=1), num_cpus=1,
            num_gpus=1 if torch.cuda.is_available() else 0,
            max_restarts=SHARD_RETRIES, max_task_retries=SHARD_RETRIES)
    done = state["done"].setdefault(stage, [])
    try:
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for lo, hi in zip(batch["start"].tolist(), batch["stop"].tolist()):
                name = f"{lo}:{hi}"
                if name not in done:    # a retried shard is recorded once
                    done.append(name)
                    tick(1)
            save()
    except Exception as err:   # Ray wraps a shard's error in its own exception types
        raise EmbedError(f"stage {stage!r} failed on Ray: {_last_line(err)}; the shards "
                         f"finished so far are recorded in {job.out_dir}/progress.json, "
                         "rerun the same command to resume") from err
    missing = {f"{lo}:{hi}" for lo, hi in shards} - set(done)
    if missing:
        raise EmbedError(f"stage {stage!r}: Ray returned no result for shards "
                         f"{sorted(missing)[:5]}; rerun the same command to resume")


def _last_line(err: Exception) -> str:
    # Ray's message is a remote traceback; its last line is the shard's own error.
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__

