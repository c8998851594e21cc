"""The small planted-community store and config the `sagewalk train` e2e tests share."""

from __future__ import annotations

import numpy as np


def write_store_and_config(tmp_path, extra_trainer: str = "") -> "Path":
    """200 items (4-d features) rated by 400 users in 4 communities, and a
    config training it with one producer at width 16; returns the config path."""
    from graphstore import build_from_arrays
    from graphstore.synth import generate
    g = generate(3000, 200, 400, 4, seed=1, p_in=0.95)
    build_from_arrays(tmp_path / "store", edges={"rates": ("item", "user", g.items, g.users)},
                      node_counts={"item": 200, "user": 400},
                      features={"item": np.random.default_rng(0).standard_normal(
                          (200, 4)).astype(np.float32)})
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[graphstore]\npath = "{tmp_path / "store"}"\n[worker]\nproducers = 1\n'
                   f'[trainer]\nrun_dir = "{tmp_path / "run"}"\nhidden_dim = 16\n'
                   f'embedding_dim = 16\n{extra_trainer}'
                   '[serving]\nprocesses = 1\n')
    return cfg
