"""How strong a degree prior a graph's held-out pairs want.

An exported model (`sagewalk embed --export`, trained with the candidate
prior on a `sagewalk holdout` store) scores z_q·z_c + β_c.  This replaces its
β column with f·τ·log(1 + training degree) for f from 0 (cosines alone) to 2
(`--factors`) and ranks the held-out pairs at each f, by the same code as
`sagewalk evaluate --holdout`, in both protocols:

    python benchmarks/prior_strength.py --holdout DIR --export EXPORT [--run RUN_DIR]
                                        [--temperature 0.3] [--factors 0,0.25,...,2]

With --run (a `sagewalk train` run_dir: its train.toml and model.pt), the
factor that run's trainer picked on its own held-out pairs
(`trainer.calibrate_prior`, run_summary.json) is printed, and beside it the
factor the trainer's code in this tree picks for the same model and sample
(`Validator.calibrate_prior`; the search runs after training, so the trained
weights are the same whatever it picks), with its held-out figures.  τ is
the run's softmax temperature: --temperature if given, else the one --run's
train.toml records, else 0.3 (what `sagewalk train` picks).  Prints one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FACTORS = tuple(i / 4 for i in range(9))


def factor_list(text: str) -> tuple[float, ...]:
    try:
        factors = tuple(float(x) for x in text.split(","))
    except ValueError:
        factors = ()
    if not factors or any(f < 0 for f in factors):
        raise argparse.ArgumentTypeError(
            f"--factors: expected comma-separated factors >= 0 such as 0,0.5,1; got {text!r}")
    return factors


def sweep(held, z, beta, factors=FACTORS) -> dict:
    """Per protocol, HR@10 and scaled MRR (each with its SE) of z_q·z_c +
    f·β_c at each factor f, each factor minus factor 1 paired over the same
    pairs (when 1 is among them), and the f with the highest HR@10 (ties:
    nearer 1).  z: unit vectors [items, d] in the holdout's item order; beta [items]."""
    from serving import holdout as ho
    from serving.evaluate import paired_difference

    def scorer(f):
        return lambda q: z[q] @ z.T + f * beta[None, :]

    out = {"factors": list(factors)}
    for mode, exclude in (("all_items", False), ("beyond_neighbours", True)):
        ranks = ho.rank_pairs(held, {f: scorer(f) for f in factors}, exclude_neighbours=exclude)
        rows = {f: m.as_dict() for f, m in ho.metrics(held, ranks).items()}
        best = max(factors, key=lambda f: (rows[f]["hr@10"], -abs(f - 1.0)))
        out[mode] = {"best": best,
                     **{f"{f:g}": {k: rows[f][k] for k in ("hr@10", "hr@10_se", "mrr", "mrr_se")}
                        for f in factors}}
        if 1.0 in ranks:
            for f in factors:
                d = paired_difference(ranks[f], ranks[1.0]).as_dict()
                out[mode][f"{f:g}"]["minus_1"] = {k: d[k] for k in (
                    "hr@10_diff", "hr@10_diff_se", "mrr_diff", "mrr_diff_se")}
    return out


def run_config(run_dir):
    """The resolved config a `sagewalk train` run saved (run_dir/train.toml)."""
    from sagewalk import config as configuration
    path = Path(run_dir) / "train.toml"
    if not path.is_file():
        raise SystemExit(f"--run {run_dir}: no train.toml; point at the run_dir `sagewalk train` "
                         "wrote (it saves the resolved config there)")
    return configuration.load(str(path), [])


def run_temperature(run_dir) -> float:
    return float(run_config(run_dir).trainer.temperature)


def calibrate_run(run_dir) -> dict | None:
    """The trainer's prior calibration, by the code in this tree, for the model
    a `sagewalk train` run exported (its config from run_dir/train.toml)."""
    import torch
    from graphstore import open_store
    from gpu_consumer.model import load_model
    from gpu_consumer.prior import degree_prior, degree_scale
    from gpu_consumer.validator import Validator
    from worker.assemble import BatchBuilder
    cfg = run_config(run_dir)
    store = open_store(cfg.graphstore.path)
    item = cfg.sampler.item_type
    model = load_model(run_dir)
    beta = degree_prior(store, item, degree_scale(cfg.trainer.temperature,
                                                  cfg.sampler.negative_distribution))

    def embed(batch):
        with torch.no_grad():
            return model(batch).float()

    validator = Validator(BatchBuilder(store, cfg.sampler), store.node_types[item], cfg.trainer)
    return validator.calibrate_prior(embed, beta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--holdout", required=True, help="`sagewalk holdout` directory")
    parser.add_argument("--export", required=True, help="`sagewalk embed --export` directory")
    parser.add_argument("--run", default=None, help="the run's run_dir (its picked factor)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="τ of the run (default: --run's train.toml, else 0.3)")
    parser.add_argument("--factors", type=factor_list, default=FACTORS)
    args = parser.parse_args()
    import numpy as np
    from gpu_consumer.prior import degree_prior, unit_part
    from serving import holdout as ho
    from serving.methods import load_export
    held = ho.load_holdout(args.holdout)
    scorer = load_export(Path(args.export), held.item_ids)
    if not scorer.prior:
        raise SystemExit(f"{args.export}: the export has no candidate prior column; train with "
                         "trainer.candidate_prior = true (what `sagewalk train` picks)")
    z = np.ascontiguousarray(unit_part(scorer.vectors), np.float32)
    tau = args.temperature
    if tau is None:
        tau = run_temperature(args.run) if args.run else 0.3
    beta = degree_prior(held.store, held.item_type, tau)
    report = {"holdout": args.holdout, "export": args.export, "temperature": tau,
              **sweep(held, z, beta, args.factors)}
    if args.run:
        summary = json.loads((Path(args.run) / "run_summary.json").read_text())
        report["picked_in_training"] = (summary.get("prior_calibration") or {}).get("factor")
        now = calibrate_run(args.run)
        report["picked_now"] = None if now is None else now["factor"]
        if now is not None:
            held_out = sweep(held, z, beta, (now["factor"], 1.0))
            report["at_picked_now"] = {m: held_out[m] for m in ("all_items", "beyond_neighbours")}
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
