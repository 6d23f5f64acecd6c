"""Metrics that compare explanations: faithfulness, localisation, sparsity and sanity."""

from jaxplain.metrics.faithfulness import EXACT, FAST, PROTOCOLS, Protocol, auc, batch_deletion_insertion, deletion_insertion
from jaxplain.metrics.localisation import (box_iou, boxes_to_mask, grid_cell_box, grid_cell_mask, grid_pointing_score,
                                           largest_region_box, localisation_miss, mask_iou, mean_intensity,
                                           pointing_game, pointing_hit)
from jaxplain.metrics.sanity import randomise_params, rank_correlation

__all__ = [
    "EXACT", "FAST", "PROTOCOLS", "Protocol", "auc", "batch_deletion_insertion", "box_iou", "boxes_to_mask",
    "deletion_insertion", "grid_cell_box", "grid_cell_mask", "grid_pointing_score", "largest_region_box",
    "localisation_miss", "mask_iou", "mean_intensity", "pointing_game", "pointing_hit", "randomise_params",
    "rank_correlation",
]
