"""A memory budget chooses the largest chunk (streaming methods) or batch size (vmapped methods) that fits."""

import pytest

from jaxplain import runner
from jaxplain.errors import UsageError
from jaxplain.memory import accepted_chunks, fit_to_budget, largest_fitting, plan_methods


def test_largest_fitting_bisects_a_monotone_predicate():
    values = [1, 2, 4, 5, 10, 20]
    assert largest_fitting(values, lambda v: v <= 7) == 5
    assert largest_fitting(values, lambda v: True) == 20
    assert largest_fitting(values, lambda v: False) is None


def test_accepted_chunks_divide_the_sample_count():
    assert accepted_chunks("rise", {"num_masks": 20}) == [1, 2, 4, 5, 10, 20]


def test_the_chunk_chosen_is_the_largest_that_fits(tiny_model):
    settings = {"num_masks": 40, "grid": 4}
    small = runner.peak_memory(tiny_model, "rise", batch_size=4, chunk=8, **settings)
    large = runner.peak_memory(tiny_model, "rise", batch_size=4, chunk=10, **settings)
    assert small < large
    plan = fit_to_budget(tiny_model, "rise", (small + large) // 2, 4, **settings)
    assert plan.settings == settings | {"chunk": 8} and plan.batch_size == 4 and plan.bytes == small


def test_a_method_without_chunk_gets_a_smaller_batch(tiny_model):
    four = runner.peak_memory(tiny_model, "integrated_gradients", batch_size=4)
    five = runner.peak_memory(tiny_model, "integrated_gradients", batch_size=5)
    assert four < five
    plan = fit_to_budget(tiny_model, "integrated_gradients", (four + five) // 2, 16)
    assert plan.batch_size == 4 and plan.settings == {}


def test_a_budget_too_small_for_one_image_is_a_clear_error(tiny_model):
    with pytest.raises(UsageError, match="needs .* GiB per device for one image at chunk 1"):
        fit_to_budget(tiny_model, "rise", 1000, 4, num_masks=20)


def test_a_run_of_several_methods_takes_the_smallest_batch(tiny_model):
    lines = []
    batch, settings = plan_methods(tiny_model, {"rise": {"num_masks": 20}, "wide": {}}, 1.0, 8,
                                   aliases={"wide": "integrated_gradients"}, report=lines.append)
    assert batch == 8 and settings == {"rise": {"num_masks": 20, "chunk": 20}, "wide": {}}
    assert len(lines) == 2 and lines[0].startswith("memory budget 1 GiB: rise at chunk 20, batch 8")
    assert plan_methods(tiny_model, {"rise": {}}, None, 8) == (8, {"rise": {}})
    with pytest.raises(UsageError, match="positive"):
        plan_methods(tiny_model, {"rise": {}}, 0.0, 8)
