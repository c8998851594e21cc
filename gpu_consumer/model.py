"""Build a model from config + store, export it for serving, load it back.

A model is rebuilt from a small plain-data *spec* (config values and the
input widths read from the store), so serving needs only the run directory:

    model = load_model(run_dir)            # run_dir/model.pt, written by the trainer
    model.input_vectors / convolve / finalize / num_layers
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from gpu_consumer.config import PriorSource
from gpu_consumer.layers import ModelError
from gpu_consumer.prior import degree_prior, degree_scale
from sampler.config import ModelKind
from gpu_consumer.multisage import MultiSage
from gpu_consumer.pinsage import PinSage

log = logging.getLogger(__name__)

MODEL_FILE = "model.pt"
_AUTO_BUCKETS = 1 << 18
MODEL_FORMAT = "sagewalk-model"
MODEL_VERSION = 2              # 2: the layer form (spec.convolution)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the module's architecture (not its weights)."""

    model: str
    feature_dim: int
    hidden_dim: int
    embedding_dim: int
    num_layers: int
    id_embedding_buckets: int
    pooling: str
    dense_layers: int
    item_type: str
    context_dims: dict[str, int] = field(default_factory=dict)
    attention_heads: int = 4
    context_combine: str = "mask"
    context_start: str = "random"  # exports before it existed started from random masks
    convolution: str = "residual"
    candidate_prior: bool = False  # exported vectors are [z ‖ β] (gpu_consumer/prior.py)
    prior_source: str = "learned"  # β: 'learned' from h, or 'degree' (a fixed table)
    prior_scale: float = 0.0       # 'degree': β = prior_scale·log(1 + degree)
    num_items: int = 0             # 'degree': rows of the β table


def context_types(store, sampler_cfg) -> list[str]:
    """Context node types in the order the sampler numbers them (the type ids
    in a batch's `context_types`): the walk graph's slot order."""
    from sampler.graph import WalkGraph
    graph = WalkGraph.from_store(store, sampler_cfg.item_type, dict(sampler_cfg.context_weights))
    return list(graph.context_types)


def spec_from(trainer_cfg, store, sampler_cfg) -> ModelSpec:
    item = sampler_cfg.item_type
    if item not in store.node_types:
        raise ModelError(f"sampler.item_type: {item!r} is not a node type of the store at "
                         f"{store.path}; it has {', '.join(store.node_types)}")
    feats = store.features(item)
    buckets = trainer_cfg.id_embedding_buckets
    if feats is None and buckets == 0:
        # Featureless items can only be told apart by id: turn id embeddings on.
        buckets = min(store.node_types[item], _AUTO_BUCKETS)
        log.warning("node type %r has no features: using hashed id embeddings with %d "
                    "buckets (set trainer.id_embedding_buckets to choose)", item, buckets)
    context_dims = {}
    if trainer_cfg.model == "multisage":
        for name in context_types(store, sampler_cfg):
            f = store.features(name)
            context_dims[name] = 0 if f is None else int(f.shape[1])
    return ModelSpec(
        model=str(trainer_cfg.model), feature_dim=0 if feats is None else int(feats.shape[1]),
        hidden_dim=trainer_cfg.hidden_dim, embedding_dim=trainer_cfg.embedding_dim,
        num_layers=sampler_cfg.num_layers, id_embedding_buckets=buckets,
        pooling=str(trainer_cfg.pooling), dense_layers=trainer_cfg.dense_layers, item_type=item,
        context_dims=context_dims, attention_heads=trainer_cfg.attention_heads,
        context_combine=trainer_cfg.context_combine, context_start=trainer_cfg.context_start,
        convolution=str(trainer_cfg.convolution),
        candidate_prior=bool(trainer_cfg.candidate_prior),
        prior_source=str(trainer_cfg.prior_source),
        prior_scale=degree_scale(trainer_cfg.temperature, sampler_cfg.negative_distribution),
        num_items=int(store.node_types[item]))


def build_from_spec(spec: ModelSpec) -> nn.Module:
    common = dict(feature_dim=spec.feature_dim, hidden_dim=spec.hidden_dim,
                  embedding_dim=spec.embedding_dim, num_layers=spec.num_layers,
                  id_embedding_buckets=spec.id_embedding_buckets, pooling=spec.pooling,
                  dense_layers=spec.dense_layers, item_type=spec.item_type,
                  candidate_prior=spec.candidate_prior,
                  prior_items=spec.num_items if _degree_prior(spec) else 0)
    if spec.model == "pinsage":
        model = PinSage(**common, convolution=spec.convolution)
    elif spec.model == "multisage":
        model = MultiSage(**common, context_dims=dict(spec.context_dims),
                          attention_heads=spec.attention_heads,
                          context_combine=spec.context_combine,
                          context_start=spec.context_start, convolution=spec.convolution)
    else:
        raise ModelError(f"trainer.model: unknown model {spec.model!r}; "
                         f"expected {' or '.join(map(repr, ModelKind.values()))}")
    model.spec = spec
    return model


def build_model(trainer_cfg, store, sampler_cfg) -> nn.Module:
    """The configured model for `store`'s item type; parameters are seeded by
    trainer.seed so every rank and every rerun starts from the same weights."""
    spec = spec_from(trainer_cfg, store, sampler_cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(trainer_cfg.seed)
        model = build_from_spec(spec)
    if _degree_prior(spec):
        table = degree_prior(store, spec.item_type, spec.prior_scale)
        model.head.prior_table.copy_(torch.from_numpy(table))
    return model


def _degree_prior(spec: ModelSpec) -> bool:
    return bool(spec.candidate_prior) and spec.prior_source == PriorSource.DEGREE


def export_model(run_dir: str | os.PathLike, model: nn.Module, extra: dict | None = None,
                 *, neighbourhoods: dict | None = None) -> Path:
    """Write run_dir/model.pt (spec + float32 weights, tensors and plain data
    only) through a temp file and rename, so a reader never sees half a file.
    `neighbourhoods`: the sampler settings the model was trained with
    (sampler.config.neighbourhood_settings), which serving embeds with."""
    from gpu_consumer.checkpoint import write_atomically
    state = {k: v.detach().float().cpu() if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    payload = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "spec": asdict(model.spec),
               "state_dict": state, "extra": extra or {},
               "neighbourhoods": neighbourhoods or {}}
    path = Path(run_dir) / MODEL_FILE
    write_atomically(path, lambda file: torch.save(payload, file))
    return path


def load_model(run_dir: str | os.PathLike, map_location: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the exported model of a run from run_dir/model.pt, in eval mode,
    on `map_location` (float32 weights; use bf16 autocast for inference on CUDA)."""
    payload = _read_export(run_dir, map_location)
    model = build_from_spec(ModelSpec(**payload["spec"]))
    model.load_state_dict(payload["state_dict"])
    return model.to(map_location).eval()


def trained_neighbourhoods(run_dir: str | os.PathLike) -> dict:
    """The sampler's neighbourhood settings the exported model was trained
    with ({} for an export made before models carried them).  The file is
    memory-mapped, so its weights are not read."""
    return dict(_read_export(run_dir, "cpu", mmap=True).get("neighbourhoods") or {})


def _read_export(run_dir, map_location, mmap: bool = False) -> dict:
    path = Path(run_dir) / MODEL_FILE
    if not path.exists():
        raise ModelError(f"{path}: no exported model; train first (`sagewalk trainer`) or "
                         "point at the run directory the trainer wrote")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises several types for a damaged zip
        raise ModelError(f"{path}: unreadable model file ({err}); re-export it") from err
    if payload.get("format") != MODEL_FORMAT or payload.get("version") != MODEL_VERSION:
        raise ModelError(f"{path}: format {payload.get('format')!r} version "
                         f"{payload.get('version')!r}, expected {MODEL_FORMAT!r} version "
                         f"{MODEL_VERSION}; re-export with this sagewalk version")
    return payload
