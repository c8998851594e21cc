"""What the columns of an embeddings.npy are: vectors.json beside it.

A model trained with trainer.candidate_prior exports [z ‖ β] (one column
more than embedding_dim, gpu_consumer/prior.py); the width alone cannot say
whether the last column is a prior or one more dimension, and readers that
only get a directory (`sagewalk index`, `sagewalk evaluate --embeddings`)
must score queries as [z ‖ 1] exactly when it is.  So every directory that
holds embeddings.npy (the embed job, the export, the index) also holds

    vectors.json   {"format": "sagewalk-vectors", "version": 1,
                    "dim": 9, "embedding_dim": 8, "prior": true}

A directory without it was written before the prior existed (or by hand):
its vectors are plain unit vectors.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from common.errors import SagewalkError

VECTORS_FILE = "vectors.json"
VECTORS_FORMAT = "sagewalk-vectors"
VECTORS_VERSION = 1


class VectorsError(SagewalkError):
    """vectors.json is unreadable or disagrees with embeddings.npy."""


@dataclass(frozen=True)
class VectorLayout:
    dim: int          # columns of embeddings.npy
    prior: bool       # the last column is β (queries score as [z ‖ 1])

    @property
    def embedding_dim(self) -> int:
        """Width of the unit part z."""
        return self.dim - 1 if self.prior else self.dim


def layout_of(spec) -> VectorLayout:
    """The layout a model (its spec) writes."""
    from gpu_consumer.prior import width
    return VectorLayout(width(spec), bool(getattr(spec, "candidate_prior", False)))


def write_layout(directory: str | os.PathLike, layout: VectorLayout) -> Path:
    """directory/vectors.json, written atomically (gpu_consumer.checkpoint's
    temp file, fsync and rename)."""
    from gpu_consumer.checkpoint import write_atomically
    path = Path(directory) / VECTORS_FILE
    payload = {"format": VECTORS_FORMAT, "version": VECTORS_VERSION, "dim": layout.dim,
               "embedding_dim": layout.embedding_dim, "prior": layout.prior}
    write_atomically(path, (json.dumps(payload, indent=2) + "\n").encode())
    return path


def read_layout(directory: str | os.PathLike, dim: int) -> VectorLayout:
    """The layout of directory/embeddings.npy, whose width is `dim`; without
    vectors.json, plain unit vectors of that width."""
    path = Path(directory) / VECTORS_FILE
    if not path.exists():
        return VectorLayout(int(dim), False)
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise VectorsError(f"{path}: unreadable ({err}); re-export with "
                           "`sagewalk embed --export`") from err
    if meta.get("format") != VECTORS_FORMAT or meta.get("version") != VECTORS_VERSION:
        raise VectorsError(f"{path}: format {meta.get('format')!r} version "
                           f"{meta.get('version')!r}, expected {VECTORS_FORMAT!r} version "
                           f"{VECTORS_VERSION}; re-export with `sagewalk embed --export`")
    layout = VectorLayout(int(meta["dim"]), bool(meta["prior"]))
    if layout.dim != int(dim):
        raise VectorsError(f"{path}: says {layout.dim} columns but embeddings.npy has {dim}; "
                           "the two come from different exports, re-export with "
                           "`sagewalk embed --export`")
    return layout
