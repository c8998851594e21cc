"""The small planted-community holdout the benchmark tests share."""

from __future__ import annotations

from pathlib import Path


def small_holdout(tmp: Path) -> Path:
    """200 items rated by 400 users in 4 communities, 20 held-out pairs; the
    `sagewalk holdout` directory."""
    from graphstore import build_from_arrays
    from graphstore.synth import generate
    from serving import holdout as ho
    g = generate(3000, 200, 400, 4, seed=1, p_in=0.95)
    build_from_arrays(tmp / "src", edges={"rates": ("item", "user", g.items, g.users)},
                      node_counts={"item": 200, "user": 400})
    return ho.split_store(tmp / "src", tmp / "ho", pairs=20, seed=1)
