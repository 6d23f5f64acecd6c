"""Explanation methods. ``EXPLAINERS`` is the one registry the CLI, harness, benchmarks and tests use."""

from __future__ import annotations

from typing import Callable

from jaxplain.errors import UsageError
from jaxplain.explainers.base import Explainer, ModelHandle, State, per_example_keys
from jaxplain.explainers.gradcam import gradcam

EXPLAINERS: dict[str, Callable[..., Explainer]] = {
    "gradcam": gradcam,
}


def get(name: str, **hyperparameters) -> Explainer:
    """The explainer ``name`` built with ``hyperparameters``; unknown names raise :class:`UsageError`."""
    if name not in EXPLAINERS:
        raise UsageError(f"unknown method {name!r}; choose one of: {', '.join(EXPLAINERS)}")
    try:
        return EXPLAINERS[name](**hyperparameters)
    except TypeError as e:
        raise UsageError(f"method {name!r}: {e}") from e


__all__ = ["EXPLAINERS", "Explainer", "ModelHandle", "State", "get", "per_example_keys"]
