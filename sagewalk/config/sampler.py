"""[sampler]: random-walk neighbourhoods, training pairs and negatives."""

from __future__ import annotations

from dataclasses import dataclass

from sagewalk.config.schema import non_negative, positive, probability, setting


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
    easy_negatives: int = setting(500, "Negatives drawn per batch and shared by every "
                                  "example (PinSage: ~500).", check=non_negative)
    negative_distribution: str = setting("uniform", "Easy negatives: 'uniform' or 'degree' "
                                         "(proportional to degree^0.75).")
    hard_negative_rank: tuple[int, ...] = setting(
        [2000, 5000], "Rank range of hard negatives by personalised PageRank from the query; "
        "scaled down on catalogues too small for it.")
    positives: str = setting("cooccurrence", "Where positive pairs come from: 'cooccurrence' "
                             "(items sharing a context) or a path to a pair file of external ids.")
    seed: int = setting(0, "Base seed; every ticket derives its own seed from it.",
                        check=non_negative)
