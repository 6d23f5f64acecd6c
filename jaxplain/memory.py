"""Fitting an explanation run into a memory budget: the chunk (and, if need be, the batch) chosen for it.

A method's working memory per device is read from XLA's analysis of the compiled program
(:func:`jaxplain.runner.peak_memory`: seconds per compile, no teacher forwards). Methods that stream
samples through the teacher (relabel, RISE, LIME, occlusion, Score-CAM, DAX) hold ``chunk`` teacher
inputs at a time whatever the batch size, so their knob is ``chunk``; the others (gradients, Grad-CAM,
GFI, extremal perturbation) are ``vmap``ped over the batch, so theirs is the batch size. Memory grows
with both, so each is found by bisection over the values the method accepts.

A different ``chunk`` draws the same number of samples from the same distribution in another order
of random keys, so maps of sampling methods change with it like with another seed: fix the budget
(or the chunk) once per study.
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxplain import explainers as registry
from jaxplain.errors import UsageError
from jaxplain.model import Model

GiB = 2 ** 30
# the chunks tried: divisors of the usual sample counts (1000, 1024, 3000, 4000) up to 1024; a method whose
# count must be a multiple of its chunk keeps those that divide its own count
CHUNK_CANDIDATES = tuple(sorted({d for n in (1000, 1024, 3000, 4000) for d in range(1, 1025) if n % d == 0}))


@dataclass(frozen=True)
class MemoryPlan:
    """What fits: the batch size, the method's settings (with the chosen ``chunk``) and its bytes per device."""

    batch_size: int
    settings: dict
    bytes: int


def has_chunk(spec: str) -> bool:
    """Whether the method streams samples in chunks (its memory knob is ``chunk``, not the batch size)."""
    return hasattr(registry.configure(spec)[2], "chunk")


def accepted_chunks(spec: str, settings: dict) -> list[int]:
    """The ``chunk`` values the method accepts with ``settings`` (e.g. divisors of RISE's ``num_masks``)."""
    accepted = []
    for chunk in CHUNK_CANDIDATES:
        try:
            registry.configure(spec, **(settings | {"chunk": chunk}))
        except UsageError:
            continue
        accepted.append(chunk)
    return accepted


def largest_fitting(values: list[int], fits) -> int | None:
    """The largest of ascending ``values`` for which the monotone predicate ``fits`` holds, or None."""
    low, high, best = 0, len(values) - 1, None
    while low <= high:
        middle = (low + high) // 2
        if fits(values[middle]):
            best, low = values[middle], middle + 1
        else:
            high = middle - 1
    return best


def fit_to_budget(model: Model, method: str, budget_bytes: int, batch_size: int, *, mesh=None,
                  **settings) -> MemoryPlan:
    """The largest ``chunk`` (methods that have one and were not given one) and then the largest batch size
    up to ``batch_size`` whose working memory per device is within ``budget_bytes``. Raises
    :class:`UsageError` when even the smallest does not fit."""
    from jaxplain.runner import peak_memory

    measured: dict[tuple[int, int | None], int] = {}

    def memory(batch: int, chunk: int | None) -> int:
        if (batch, chunk) not in measured:
            options = settings if chunk is None else settings | {"chunk": chunk}
            measured[batch, chunk] = peak_memory(model, method, batch_size=batch, mesh=mesh, **options)
        return measured[batch, chunk]

    chunk = settings.get("chunk")
    if has_chunk(method) and chunk is None:
        chunks = accepted_chunks(method, settings)
        chunk = largest_fitting(chunks, lambda c: memory(batch_size, c) <= budget_bytes) or chunks[0]
    fits = lambda b: memory(b, chunk) <= budget_bytes
    batch = batch_size if fits(batch_size) else largest_fitting(list(range(1, batch_size)), fits)
    if batch is None:
        raise UsageError(f"method {method!r} needs {memory(1, chunk) / GiB:.2f} GiB per device for one image"
                         f"{f' at chunk {chunk}' if chunk else ''}; the memory budget is {budget_bytes / GiB:.2f} GiB")
    chosen = settings if chunk is None else settings | {"chunk": chunk}
    return MemoryPlan(batch, chosen, memory(batch, chunk))


def plan_methods(model: Model, settings: dict[str, dict], budget_gib: float | None, batch_size: int, *,
                 aliases: dict[str, str] | None = None, report=print) -> tuple[int, dict[str, dict]]:
    """``--memory-budget`` for a run of several methods (``settings`` by label; ``aliases`` label -> method):
    each method's settings with its chosen chunk, and the largest batch size every method fits in. ``None``
    leaves both as given."""
    if budget_gib is None:
        return batch_size, settings
    if not (isinstance(budget_gib, (int, float)) and 0 < budget_gib < 2 ** 20):
        raise UsageError(f"--memory-budget must be a positive, finite number of GiB (below 2^20); got {budget_gib}")
    plans = {label: fit_to_budget(model, (aliases or {}).get(label, label), int(budget_gib * GiB), batch_size, **options)
             for label, options in settings.items()}
    batch = min(plan.batch_size for plan in plans.values())
    for label, plan in plans.items():
        chunk = f"chunk {plan.settings['chunk']}, " if "chunk" in plan.settings else ""
        report(f"memory budget {budget_gib:g} GiB: {label} at {chunk}batch {plan.batch_size} needs "
               f"{plan.bytes / GiB:.2f} GiB per device")
    return batch, {label: plan.settings for label, plan in plans.items()}
