"""Metrics that compare explanations: faithfulness, localisation, sparsity and sanity."""

from jaxplain.metrics.faithfulness import EXACT, FAST, PROTOCOLS, Protocol, auc, batch_deletion_insertion, deletion_insertion
from jaxplain.metrics.localisation import boxes_to_mask, mean_intensity, pointing_game, pointing_hit
from jaxplain.metrics.sanity import randomise_params, rank_correlation

__all__ = [
    "EXACT", "FAST", "PROTOCOLS", "Protocol", "auc", "batch_deletion_insertion", "boxes_to_mask",
    "deletion_insertion", "mean_intensity", "pointing_game", "pointing_hit", "randomise_params",
    "rank_correlation",
]
