"""[sampler]: random-walk neighbourhoods, training pairs and negatives."""

from __future__ import annotations

from dataclasses import dataclass

from common.schema import (Choice, build, in_range, non_negative, one_of, positive, probability,
                           setting, to_dict)


class ModelKind(Choice):
    """The model batches are sampled for ([trainer].model): MultiSage batches
    carry each neighbour's context node.  Defined here, in the leftmost stage
    that branches on it, so the sampler, the producers, the trainer and serving
    share one definition."""

    PINSAGE = "pinsage"
    MULTISAGE = "multisage"


def _rank_range(value) -> str | None:
    if len(value) != 2 or not 0 <= value[0] < value[1]:
        return "must be [lo, hi] with 0 <= lo < hi"
    return None


@dataclass(frozen=True, kw_only=True)
class SamplerConfig:
    item_type: str = setting("item", "Node type whose embeddings are trained (the 'items').")
    context_weights: dict[str, float] = setting(
        {}, "Probability of stepping through each context node type (edge type name -> weight); "
        "empty means every edge type touching item_type, equally.")
    num_walks: int = setting(10, "Random walks T started from each seed (PinSage: 10).",
                             check=positive)
    walk_length: int = setting(50, "Item->context->item steps per walk L (PinSage: 50).",
                               check=positive)
    restart_prob: float = setting(0.0, "Probability a walk restarts at its seed after each "
                                  "step (DGL's example: 0.5).", check=probability)
    num_neighbors: int = setting(25, "Top-K visited items kept as the neighbourhood "
                                 "(PinSage: 25; DGL's example: 3).", check=positive)
    num_layers: int = setting(2, "Graph convolution layers K of the computation graph.",
                              check=positive)
    batch_size: int = setting(512, "Training examples (query, positive) per minibatch.",
                              check=positive)
    paged_walks: str = setting("auto", "Walks for a store not in memory: 'on' requests each "
                               "step's pages from the disk at once (sampler/paging.py), "
                               "'off' faults them in one at a time; 'auto': where the "
                               "walk arrays exceed half the memory this process may use, "
                               "both are measured as they run and the faster one walks.",
                               check=one_of("auto", "on", "off"))
    resident_bytes: int = setting(0, "With paged walks: bytes of the CSR locked in memory "
                                  "(the offsets, then the highest-degree contexts' rows).",
                                  check=non_negative)
    easy_negatives: int = setting(500, "Negatives drawn per batch and shared by every "
                                  "example (PinSage: ~500).", check=non_negative)
    negative_distribution: str = setting("uniform", "Easy negatives: 'uniform' or 'degree' "
                                         "(proportional to degree^0.75).",
                                         check=one_of("uniform", "degree"))
    hard_negative_rank: tuple[int, ...] = setting(
        [2000, 5000], "Rank range of hard negatives by personalised PageRank from the query; "
        "scaled down on catalogues too small for it.", check=_rank_range)
    hard_negative_full_catalogue: int = setting(
        50_000, "Catalogue size (items) from which hard_negative_rank applies as given; "
        "on smaller catalogues both ends scale down in proportion.", check=positive)
    hard_negative_walks: int = setting(200, "Walks from each query whose visit counts rank "
                                       "hard-negative candidates (personalised PageRank).",
                                       check=positive)
    hard_negative_walk_length: int = setting(50, "Steps of each hard-negative walk.",
                                             check=positive)
    hard_negative_restart_prob: float = setting(0.15, "Restart probability of the "
                                                "hard-negative walks (PageRank teleport).",
                                                check=probability)
    hard_negative_correction: bool = setting(
        True, "Send each negative's log-proposal correction with the batch, so the sampled "
        "softmax subtracts it and hard negatives do not bias its objective (the hinge "
        "loss ignores it).")
    positives: str = setting("cooccurrence", "Where positive pairs come from: 'cooccurrence' "
                             "(items sharing a context), 'walks' (endpoints of short random "
                             "walks with restart from each item: personalised-PageRank "
                             "samples) or a path to a pair file of external ids.")
    pairs_per_item: int = setting(2, "Co-occurrence or walk positives drawn once per item "
                                  "with at least one context (a fixed, deterministic set).",
                                  check=positive)
    positive_restart_prob: float = setting(
        0.5, "positives = 'walks': probability a positive's walk stops after each step "
        "(the PageRank teleport; 0.5 means two steps on average).", check=probability)
    positive_max_steps: int = setting(8, "positives = 'walks': most steps of a positive's walk.",
                                      check=positive)
    validation_fraction: float = setting(0.05, "Share of the drawn pairs held out for "
                                         "validation, by item pair: every copy of a held-out "
                                         "pair, either way round, stays out of training.",
                                         check=in_range(0.0, 0.5))
    multisage_num_neighbors: int = setting(20, "Neighbours kept per node for MultiSage "
                                           "(its Algorithm 2: s = 20).", check=positive)
    multisage_num_walks: int = setting(0, "Walks from each node for MultiSage's "
                                       "neighbourhoods; 0: num_walks.", check=non_negative)
    multisage_walk_length: int = setting(0, "Item->context->item steps of each of MultiSage's "
                                         "walks; 0: walk_length.", check=non_negative)
    multisage_restart_prob: float = setting(0.1, "Restart probability of MultiSage's walks "
                                            "(its Algorithm 2: 0.1).", check=probability)
    seed: int = setting(0, "Base seed; every ticket derives its own seed from it.",
                        check=non_negative)


# The settings that decide a node's neighbourhood (BatchBuilder.neighbourhoods:
# the walk graph, the walks, the neighbours kept, the inference seed), and so
# what a trained model's layers pool.  A model is exported with them, and
# serving embeds with the model's, not with whatever a config says later.
# item_type is not among them: the model's spec carries it, and serving refuses
# a config that names another (serving/embed.py).
NEIGHBOURHOOD_SETTINGS = (
    "context_weights", "num_layers", "num_walks", "walk_length", "restart_prob",
    "num_neighbors", "multisage_num_walks", "multisage_walk_length", "multisage_restart_prob",
    "multisage_num_neighbors", "seed")


def neighbourhood_settings(cfg: SamplerConfig) -> dict:
    """The NEIGHBOURHOOD_SETTINGS of `cfg` as plain data."""
    plain = to_dict(cfg)
    return {name: plain[name] for name in NEIGHBOURHOOD_SETTINGS}


def with_neighbourhoods(cfg: SamplerConfig, trained: dict) -> tuple[SamplerConfig, list[str]]:
    """`cfg` with the neighbourhood settings a model was trained with, and one
    line per setting that differed ("sampler.walk_length = 2 (the config has
    50)").  Settings `trained` lacks keep cfg's value."""
    plain = to_dict(cfg)
    changed = []
    for name in NEIGHBOURHOOD_SETTINGS:
        if name in trained and trained[name] != plain[name]:
            changed.append(f"sampler.{name} = {trained[name]!r} (the config has {plain[name]!r})")
            plain[name] = trained[name]
    return build(SamplerConfig, plain, "sampler"), changed
