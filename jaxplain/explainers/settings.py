"""One place where every explainer setting is checked: its type (from the factory's signature) and its range.

``--set rise.num_masks=abc`` or ``=0``, ``--set rise.p=2`` and the like become one clear
:class:`~jaxplain.errors.UsageError` before any work starts. Settings are checked by name, and the
names mean the same in every method (``chunk`` is always a positive count of teacher inputs,
``p`` always a probability), so one table covers them all.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable

from jaxplain.errors import UsageError

POSITIVE_COUNTS = {
    "num_masks", "num_samples", "chunk", "steps", "samples", "grid", "iterations", "student_steps", "probe_samples",
    "images_per_step", "n_segments", "patch", "pool", "resolution", "hidden", "mask_features", "mask_kernel",
    "averaged_epochs", "window", "stride", "student_resolution", "decay_every", "batch_size", "splice_grid",
}
# name -> (low, high, low inclusive, high inclusive)
INTERVALS = {
    "p": (0.0, 1.0, False, True),
    "splice_share": (0.0, 1.0, False, True),
    "holdout": (0.0, 1.0, False, False),
    "dropout": (0.0, 1.0, True, False),
    "sigma": (0.0, math.inf, False, True),
    "noise": (0.0, math.inf, True, True),
    "noise_scale": (0.0, math.inf, False, True),
    "learning_rate": (0.0, math.inf, False, True),
    "temperature": (0.0, math.inf, False, True),
    "l2": (0.0, math.inf, True, True),
    "soft_weight": (0.0, math.inf, True, True),
    "hard_weight": (0.0, math.inf, True, True),
    "initial_weight": (0.0, math.inf, False, True),
    "inversion_penalty": (0.0, math.inf, True, True),
    "target_penalty": (0.0, math.inf, True, True),
    "suppress_weight": (0.0, math.inf, True, True),
    "blur_sigma": (0.0, math.inf, False, True),
    "smoothing": (0.0, math.inf, False, True),
    "area_weight": (0.0, math.inf, False, True),
    "input_scale": (0.0, math.inf, False, True),
    "inversion_steps": (0, math.inf, True, True),
    "refine_steps": (0, math.inf, True, True),
    "deletion_weight": (0.0, math.inf, True, True),
    "l1": (0.0, math.inf, True, True),
    "max_segments": (2, math.inf, True, True),
}


def _accepts(annotation: str, value) -> bool:
    """Whether ``value`` fits a (string) annotation such as ``int``, ``float | None`` or ``tuple[float, ...]``."""
    kinds = [a.strip() for a in annotation.split("|")]
    for kind in kinds:
        if kind == "None" and value is None:
            return True
        if kind == "bool" and isinstance(value, bool):
            return True
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if kind == "str" and isinstance(value, str):
            return True
        if kind.startswith("tuple") and isinstance(value, (tuple, list)):
            return True
        if kind not in ("None", "bool", "int", "float", "str") and not kind.startswith("tuple"):
            return True  # objects (a loaded VAE, ...) are the caller's business
    return False


def _in_range(name: str, value) -> str | None:
    """A description of the allowed range when ``value`` is outside it, else None."""
    if value is None or isinstance(value, (str, bool, tuple, list)):
        return None
    if name in POSITIVE_COUNTS and value < 1:
        return "a positive whole number"
    if name in INTERVALS:
        low, high, low_in, high_in = INTERVALS[name]
        below = value < low or (value == low and not low_in)
        above = value > high or (value == high and not high_in)
        if below or above or (isinstance(value, float) and math.isnan(value)):
            left, right = "[" if low_in else "(", "]" if high_in else ")"
            return f"in {left}{low:g}, {high:g}{right}"
    return None


def check_settings(method: str, factory: Callable, settings: dict) -> None:
    """Raises :class:`UsageError` for an unknown setting, a value of the wrong type or out of range."""
    parameters = inspect.signature(factory).parameters
    for name, value in settings.items():
        if name not in parameters:
            raise UsageError(f"method {method!r} has no setting {name!r}; it has: {', '.join(parameters)}")
        annotation = parameters[name].annotation
        if isinstance(annotation, str) and not _accepts(annotation, value):
            raise UsageError(f"{method}.{name} must be {annotation.replace('|', 'or')}; got {value!r}")
        allowed = _in_range(name, value)
        if allowed:
            raise UsageError(f"{method}.{name} must be {allowed}; got {value!r}")
