"""The quality tables: datasets x methods x baselines, and the PinSage ablations.

Two modes.  --holdouts ROOT (issue 11's table): for every benchmark graph
(`sagewalk holdout --benchmark NAME --root ROOT`; ml-100k, ml-1m, synth-10k,
synth-50k) and every method, run what a user runs, as subprocesses:

    sagewalk train --config F --minutes M      (the real daemons; unset
                                                settings picked from the store)
    sagewalk embed --config F --export DIR

and score the export on the graph's held-out pairs with the code of
`sagewalk evaluate --holdout`, beside item-kNN, exact PPR, SVD and popularity
on the same pairs, in both protocols (all items; beyond the query's
neighbours).  F sets only the store, the item type and the run directory,
plus the method's settings (HOLDOUT_METHODS).

    python benchmarks/quality.py --holdouts /tmp/bench [--graphs a,b] [--methods m,n]
                                 [--minutes 10] [--out DIR] [--set KEY=VALUE ...]
                                 [--seeds 0,1,2]

--set applies to every method (e.g. `--set trainer.id_embedding_buckets=0`:
features only, PinSage's own setting, on synth-10k-feat).  --seeds 0,1,2
trains each method once per seed (trainer.seed and sampler.seed: the
initialisation, the training pairs, the walks) and adds the spread of HR@10
across the runs beside the pair-sampling standard error, which covers the
choice of held-out pairs and not of the training run.  Each graph's
"paired" section gives every method minus every baseline, and every later
method minus the first one named (an ablation's reference), with the
standard error of a difference over the same pairs (per seed with --seeds):
the figure that says whether one beats the other on such pairs.  Every
run's ranks are kept in its out directory (ranks.npz), the baselines' in
the holdout's baseline-ranks.npz.  What the hard-negative window holds on
these graphs: benchmarks/hard_window.py.

Without --holdouts: the PinSage ablation table on MovieLens-1M (DGL's
leave-last-out protocol).

Variants, each trained for the same wall-clock budget by the real daemons
(`sagewalk up`), embedded layer by layer and scored by the same code as the
baselines:

    pinsage-importance        importance pooling, curriculum hard negatives,
                              sampled-softmax loss (the demo's configuration)
    pinsage-uniform           uniform (mean) pooling
    pinsage-no-hard           no hard negatives at any epoch
    pinsage-max-margin        PinSage's max-margin loss instead of the softmax
    multisage                 MultiSage (users as context nodes)

    python benchmarks/quality.py [--minutes 5] [--out DIR] [--quick]

Prints one JSON line: {"variants": {name: {hits@10_valid, hits@10_test, steps}},
"baselines": {...}}.  --quick: 0.5 minute per variant, two variants.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {
    "pinsage-importance": ["trainer.pooling=importance"],
    "pinsage-uniform": ["trainer.pooling=uniform"],
    "pinsage-no-hard": ["trainer.pooling=importance", "trainer.hard_negative_schedule=[0]"],
    "pinsage-max-margin": ["trainer.pooling=importance", "trainer.loss=max_margin"],
    "multisage": ["trainer.model=multisage"],
}


# Method -> settings on top of what `sagewalk train` picks.
HOLDOUT_METHODS = {
    "pinsage": [],
    "pinsage-uniform": ["trainer.pooling=uniform"],
    # GraphSAGE's neighbourhoods: 10 one-hop neighbours sampled uniformly, mean pooling
    "graphsage": ["trainer.pooling=uniform", "sampler.num_walks=10", "sampler.walk_length=1",
                  "sampler.restart_prob=0", "sampler.num_neighbors=10"],
    "pinsage-no-hard": ["trainer.hard_negative_schedule=[0]"],
    "pinsage-paper-layers": ["trainer.convolution=paper"],
    "multisage": ["trainer.model=multisage"],
}
GRAPHS = ("ml-100k", "ml-1m", "synth-10k", "synth-50k")   # the bar's; synth-10k-feat, -nested too
MODES = (("all_items", False), ("beyond_neighbours", True))   # exclude the neighbours?


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdouts", default=None, metavar="ROOT",
                        help="benchmark graphs' root (`sagewalk holdout --benchmark`)")
    parser.add_argument("--graphs", default=",".join(GRAPHS))
    parser.add_argument("--methods", default="pinsage")
    parser.add_argument("--minutes", type=float, default=None,
                        help="training budget per run (default 10 with --holdouts, else 5)")
    parser.add_argument("--out", default="/tmp/sagewalk-quality")
    parser.add_argument("--cache", default=None)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for every method (--holdouts; repeatable)")
    parser.add_argument("--seeds", default="0", type=seed_list,
                        help="training seeds, comma-separated (--holdouts): each method "
                        "runs once per seed, and more than one adds the spread across them")
    args = parser.parse_args()
    if args.holdouts:
        print(json.dumps(holdout_table(Path(args.holdouts), args.graphs.split(","),
                                       args.methods.split(","),
                                       0.5 if args.quick else args.minutes or 10.0,
                                       Path(args.out).resolve(), tuple(args.set),
                                       args.seeds)))
        return
    names = args.variants.split(",")
    minutes = args.minutes or 5.0
    if args.quick:
        names, minutes = names[:2], 0.5
    print(json.dumps(run(Path(args.out).resolve(), args.cache, names, minutes)))


def run(out: Path, cache: str | None, names: list[str], minutes: float) -> dict:
    import contextlib
    import io

    from sagewalk import demo
    from serving import methods as m
    from serving.evaluate import load_held_out
    from serving.movielens import default_cache
    base = demo.DemoPlan(out=out / "shared", cache=Path(cache) if cache else default_cache(),
                         minutes=minutes, dashboard=False)
    (base.out / "logs").mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):   # one JSON line on stdout
        dataset = demo.fetch_dataset(base)
        store, _ = demo.ingest(base, dataset)
    held = load_held_out(dataset)
    report = {"minutes_per_variant": minutes, "variants": {}, "baselines": m.evaluate_methods(
        {n: m.baseline(n, held, dataset) for n in ("popularity", "itemknn", "randomwalk")},
        held)}
    meta = json.loads((dataset / "dataset.json").read_text())
    for name in names:
        plan = demo.DemoPlan(out=out / name, cache=base.cache, minutes=minutes,
                             dashboard=False,
                             overrides=(f"graphstore.path={store}", *VARIANTS[name]))
        (plan.out / "logs").mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with contextlib.redirect_stdout(io.StringIO()):
            config = demo.write_config(plan, meta["items"], dataset)
            summary = demo.train(plan, config)
            demo.embed_and_index(plan, config)
        scores = m.evaluate_methods({name: m.load_export(plan.out / "export", held.item_ids)},
                                    held)[name]
        report["variants"][name] = {**scores, "steps": summary.get("steps"),
                                    "examples": summary.get("examples"),
                                    "seconds": round(time.monotonic() - started, 1)}
        print(f"{name}: {report['variants'][name]}", file=sys.stderr, flush=True)
    return report


def seed_list(text: str) -> tuple[int, ...]:
    """--seeds: distinct non-negative integers, comma-separated."""
    try:
        seeds = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 0,1,2, got {text!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct seeds >= 0, got {text!r}")
    return seeds


def seed_spread(runs: dict, k: int = 10) -> dict:
    """Per protocol, HR@k over the runs of one method with different seeds:
    the mean, the sample standard deviation across runs (the run-to-run
    spread), the standard error of that mean, and the mean pair-sampling SE
    of one run for comparison."""
    out = {}
    for mode, _ in MODES:
        hits = np.array([r[mode][f"hr@{k}"] for r in runs.values()], np.float64)
        pair_se = np.array([r[mode][f"hr@{k}_se"] for r in runs.values()], np.float64)
        sd = float(hits.std(ddof=1)) if len(hits) > 1 else 0.0
        out[mode] = {f"hr@{k}_mean": round(float(hits.mean()), 5),
                     f"hr@{k}_run_sd": round(sd, 5),
                     f"hr@{k}_mean_se": round(sd / np.sqrt(len(hits)), 5),
                     f"hr@{k}_pair_se": round(float(pair_se.mean()), 5)}
    return out


def holdout_table(root: Path, graphs: list[str], methods: list[str], minutes: float,
                  out: Path, common: tuple[str, ...] = (), seeds: tuple[int, ...] = (0,)
                  ) -> dict:
    from benchmarks.holdout_ab import baselines_for
    from serving import holdout as ho
    unknown = [m for m in methods if m not in HOLDOUT_METHODS]
    if unknown:
        sys.exit(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(HOLDOUT_METHODS)}")
    report = {"minutes": minutes, "set": list(common), "graphs": {}}
    for graph in graphs:
        holdout = root / graph / "holdout"
        if not (holdout / "holdout.json").exists():
            sys.exit(f"{holdout}: no holdout; build it with "
                     f"`sagewalk holdout --benchmark {graph} --root {root}`")
        held = ho.load_holdout(holdout)
        entry = {"methods": {}, "baselines": {
            mode: baselines_for(held, exclude) for mode, exclude in MODES}}
        for method in methods:
            entry["methods"][method] = _seeded_runs(held, method, minutes,
                                                    out / graph / method, common, seeds)
        entry["paired"] = paired_section(held, methods, out / graph, seeds)
        for mode, _ in MODES:
            for name, d in entry["paired"][mode].items():
                print(f"{graph} {mode} {name}: HR@10 {d['hr@10_diff']:+.4f} ± "
                      f"{d['hr@10_diff_se']:.4f}", file=sys.stderr, flush=True)
        report["graphs"][graph] = entry
    return report


def _seeded_runs(held, method: str, minutes: float, out: Path, common: tuple[str, ...],
                 seeds: tuple[int, ...]) -> dict:
    """One run (seed 0: what `sagewalk train` picks, nothing added), or one
    per seed with the spread across them."""
    if seeds == (0,):
        result = _train_and_score(held, method, minutes, out, common)
        print(f"{out.parent.name} {method}: {json.dumps(result)}", file=sys.stderr, flush=True)
        return result
    runs = {}
    for seed in seeds:
        runs[str(seed)] = _train_and_score(held, method, minutes, out / f"seed-{seed}",
                                           (*common, f"trainer.seed={seed}",
                                            f"sampler.seed={seed}"))
        print(f"{out.parent.name} {method} seed {seed}: {json.dumps(runs[str(seed)])}",
              file=sys.stderr, flush=True)
    return {"seeds": runs, "spread": seed_spread(runs)}


def _train_and_score(held, method: str, minutes: float, out: Path,
                     common: tuple[str, ...] = ()) -> dict:
    import shutil
    import subprocess

    from serving import holdout as ho
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    config = out / "config.toml"
    config.write_text(f'[graphstore]\npath = "{held.store.path}"\n'
                      f'[sampler]\nitem_type = "{held.item_type}"\n'
                      f'[trainer]\nrun_dir = "{out / "run"}"\n')
    sets = [x for item in (*common, *HOLDOUT_METHODS[method]) for x in ("--set", item)]
    started = time.monotonic()
    for verb in (["train", "--minutes", str(minutes)], ["embed", "--export", str(out / "export"),
                                                         "--no-progress"]):
        with open(out / f"{verb[0]}.log", "w") as log:
            done = subprocess.run([sys.executable, "-m", "sagewalk", verb[0], "--config",
                                   str(config), *sets, *verb[1:]], stdout=log,
                                  stderr=subprocess.STDOUT)
        if done.returncode:
            sys.exit(f"{verb[0]} failed (exit {done.returncode}); see {out / (verb[0] + '.log')}")
    summary = json.loads((out / "run" / "run_summary.json").read_text())
    scorer = {"model": ho.embedding_scorer(held, out / "export")}
    result = {"steps": summary.get("steps"), "seconds": round(time.monotonic() - started, 1)}
    ranks = {}
    for mode, exclude in MODES:
        ranks[mode] = ho.rank_pairs(held, scorer, exclude_neighbours=exclude)["model"]
        result[mode] = ho.metrics(held, {"model": ranks[mode]})["model"].as_dict()
    np.savez(out / "ranks.npz", **ranks)     # for the paired differences (paired_section)
    return result


def paired_section(held, methods: list[str], out: Path, seeds: tuple[int, ...]) -> dict:
    """Per protocol and training seed: each method minus each baseline, and
    each later method minus the first (the reference of an ablation), paired
    over the same held-out pairs (serving.evaluate.paired_difference).  With
    several seeds, also each of those over the seeds' mean (seed i against
    seed i, then each pair's difference averaged over the seeds)."""
    from benchmarks.holdout_ab import baseline_ranks
    from serving.evaluate import paired_difference
    runs = {"": ""} if seeds == (0,) else {f"seed-{s}": f" (seed {s})" for s in seeds}
    section = {}
    for mode, exclude in MODES:
        base = baseline_ranks(held, exclude)
        rows = {}
        per_run = {run: {m: np.load(out / m / run / "ranks.npz")[mode] for m in methods}
                   for run in runs}
        labelled = list(runs.items())
        if len(runs) > 1:       # the seeds' mean: [seeds, pairs] rows, paired seed by seed
            labelled.append(("mean", f" (mean of seeds {', '.join(map(str, seeds))})"))
            per_run["mean"] = {m: np.stack([per_run[run][m] for run in runs]) for m in methods}
        for run, label in labelled:
            ranks = per_run[run]
            for m in methods:
                for b, r in base.items():
                    ref = np.broadcast_to(r, ranks[m].shape)     # a baseline has one run
                    rows[f"{m} - {b}{label}"] = paired_difference(ranks[m], ref).as_dict()
            for m in methods[1:]:
                rows[f"{m} - {methods[0]}{label}"] = paired_difference(
                    ranks[m], ranks[methods[0]]).as_dict()
        section[mode] = rows
    return section


if __name__ == "__main__":
    main()
