"""The PinSage ablation table on MovieLens-1M (DGL's leave-last-out protocol).

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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {
    "pinsage-importance": ["trainer.pooling=importance"],
    "pinsage-uniform": ["trainer.pooling=uniform"],
    "pinsage-no-hard": ["trainer.pooling=importance", "trainer.hard_negative_schedule=[0]"],
    "pinsage-max-margin": ["trainer.pooling=importance", "trainer.loss=max_margin"],
    "multisage": ["trainer.model=multisage"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--out", default="/tmp/sagewalk-quality")
    parser.add_argument("--cache", default=None)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    names = args.variants.split(",")
    minutes = args.minutes
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


if __name__ == "__main__":
    main()
