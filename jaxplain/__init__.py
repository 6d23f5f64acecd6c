"""jaxplain: saliency explanations of image classifiers in JAX/Flax.

The public API: models (:func:`load_model`, :func:`from_linen`, :func:`from_nnx`,
:func:`from_callable`), explanations (:func:`explain`, :func:`predict`, :mod:`jaxplain.explainers`),
metrics (:mod:`jaxplain.metrics`) and the evaluation harness (:mod:`jaxplain.evaluation`).
"""

from jaxplain import explainers, metrics
from jaxplain.errors import InputFileError, JaxplainError, UsageError
from jaxplain.model import Model, Normalisation, Preprocessing, flip_averaged, from_callable, from_linen, from_nnx
from jaxplain.parallel import data_mesh
from jaxplain.runner import explain, predict
from jaxplain.zoo import MODELS, load_model, register_model

__all__ = [
    "InputFileError", "JaxplainError", "MODELS", "Model", "Normalisation", "Preprocessing", "UsageError",
    "data_mesh", "explain", "explainers", "flip_averaged", "from_callable", "from_linen", "from_nnx",
    "load_model", "metrics", "predict", "register_model",
]
