"""Explanation methods. ``EXPLAINERS`` is the one registry the CLI, harness, benchmarks and tests use."""

from __future__ import annotations

import inspect
import json
from typing import Callable

from jaxplain.errors import UsageError
from jaxplain.explainers.base import Explainer, ModelHandle, State, per_example_keys
from jaxplain.explainers.dax import dax
from jaxplain.explainers.extremal import extremal
from jaxplain.explainers.gfi import gfi
from jaxplain.explainers.gradcam import gradcam
from jaxplain.explainers.gradients import gradient, integrated_gradients, smoothgrad
from jaxplain.explainers.lime import lime
from jaxplain.explainers.occlusion import occlusion
from jaxplain.explainers.reference import centre, random
from jaxplain.explainers.relabel import relabel
from jaxplain.explainers.rise import rise
from jaxplain.explainers.scorecam import scorecam
from jaxplain.explainers.settings import check_settings
from jaxplain.explainers.surrogate import surrogate

EXPLAINERS: dict[str, Callable[..., Explainer]] = {
    "relabel": relabel,
    "gfi": gfi,
    "dax": dax,
    "surrogate": surrogate,
    "gradcam": gradcam,
    "scorecam": scorecam,
    "rise": rise,
    "lime": lime,
    "occlusion": occlusion,
    "extremal": extremal,
    "gradient": gradient,
    "integrated_gradients": integrated_gradients,
    "smoothgrad": smoothgrad,
    "random": random,
    "centre": centre,
}


def get(name: str, **hyperparameters) -> Explainer:
    """The explainer ``name`` built with ``hyperparameters``; unknown names raise :class:`UsageError`."""
    if name not in EXPLAINERS:
        raise UsageError(f"unknown method {name!r}; choose one of: {', '.join(EXPLAINERS)}")
    check_settings(name, EXPLAINERS[name], hyperparameters)
    try:
        return EXPLAINERS[name](**hyperparameters)
    except (TypeError, ValueError) as e:  # a combination the factory rejects (e.g. num_masks not a multiple of chunk)
        raise UsageError(f"method {name!r}: {e}") from e


def method_defaults(name: str) -> dict:
    """``{setting: default}`` of a registered method, read from its factory's signature."""
    return {setting: p.default for setting, p in inspect.signature(EXPLAINERS[name]).parameters.items()
            if p.default is not inspect.Parameter.empty}


def defaults_of(labels, aliases: dict[str, str] | None = None) -> dict[str, dict]:
    """``{label: {setting: default}}`` of each method (``aliases`` maps a label to its method), as JSON
    values. Resumable runs record them, so a default changed since a run started is noticed instead of
    mixing maps made two ways in one table."""
    aliases = aliases or {}
    table = {label: {setting: value for setting, value in method_defaults(aliases.get(label, label)).items()
                     if _is_json(value)}
             for label in labels if aliases.get(label, label) in EXPLAINERS}
    return json.loads(json.dumps(table))  # tuples as lists: the form a config file holds


# input-dependent settings first recorded after some runs, with the value every run before used (so those
# runs resume): relabel's student always read the signed change before student_input existed
EARLIER_RESOLVED = {"student_input": "change"}

# settings added after some runs, whose default is not what those runs used, with the value they used (so that
# they resume as what they were): GFI's weights were non-negative before channel_weights existed (its default is
# "rectified" now), and its mask min-max normalised before mask_normalisation existed
EARLIER_DEFAULTS = {"channel_weights": "non_negative", "mask_normalisation": "min_max"}


def resolved_settings(explainers: dict[str, Explainer], states: dict[str, State], input_shape) -> dict[str, dict]:
    """``{label: {setting: value}}``: what each method's input-dependent defaults (``"auto"``, ``None``) stand
    for on inputs shaped ``input_shape`` ``(H, W, C)``, for the methods that have such defaults. Resumable
    runs record them beside :func:`defaults_of`: a default whose value stays while its meaning changes (what
    ``"auto"`` picks) is then noticed too."""
    table = {label: explainer.resolved(states[label], tuple(input_shape))
             for label, explainer in explainers.items() if explainer.resolved is not None}
    return json.loads(json.dumps(table))


def _is_json(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str)) or (
        isinstance(value, (tuple, list)) and all(_is_json(v) for v in value))


__all__ = ["EARLIER_DEFAULTS", "EARLIER_RESOLVED", "EXPLAINERS", "Explainer", "ModelHandle", "State", "defaults_of", "get",
           "method_defaults", "per_example_keys", "resolved_settings"]
