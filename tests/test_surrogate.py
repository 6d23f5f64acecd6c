"""The attentive surrogate: shapes, losses by hand, and train -> resume -> load -> explain on a tiny teacher."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxplain import runner
from jaxplain.errors import UsageError
from jaxplain.explainers.base import ModelHandle
from jaxplain.explainers.surrogate import refine_maps
from jaxplain.nets.surrogate import FeatureSurrogate, Surrogate, SurrogateHandle
from jaxplain.nets.surrogate_objective import deletion_loss, explanation_loss, sparsity_loss
from jaxplain.train.surrogate_trainer import SurrogateRecipe, distillation_losses, train
from jaxplain.zoo import MODELS
from tests.conftest import make_tiny_model, write_labelled_folder


def test_the_network_returns_logits_and_a_map_in_unit_range():
    network = Surrogate(num_classes=5, width=8)
    x = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3))
    variables = jax.jit(network.init)(jax.random.key(1), x)
    logits, maps = jax.jit(network.apply)(variables, x)
    assert logits.shape == (2, 5) and maps.shape == (2, 16, 16)
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0


def test_the_feature_surrogate_decodes_features_of_any_scales_into_a_map_of_the_input_size():
    network = FeatureSurrogate(num_classes=5, width=4)
    keys = jax.random.split(jax.random.key(0), 3)
    images = jax.random.uniform(keys[0], (2, 20, 20, 3))
    features = [jax.random.normal(keys[1], (2, 10, 10, 6)), jax.random.normal(keys[2], (2, 3, 3, 7))]  # x3.3 apart
    variables = network.init(jax.random.key(1), images, features)
    (logits, maps), _ = network.apply(variables, images, features, train=True, mutable=["batch_stats"])
    assert logits.shape == (2, 5) and maps.shape == (2, 20, 20)
    assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0


def test_a_feature_surrogate_reads_the_teacher_only_up_to_its_deepest_feature():
    """A surrogate on the teacher's ``conv1`` alone gives the same maps whatever the layers after ``conv1`` hold
    (so explaining need not run them), and other maps when ``conv1`` itself changes."""
    model = make_tiny_model()
    images = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3))
    network = FeatureSurrogate(num_classes=5, width=4)
    features = [model.apply_fn(model.params, images)[1]["conv1"]]
    handle = SurrogateHandle(network, network.init(jax.random.key(1), images, features), ("conv1",))
    def shifted(in_conv1: bool):  # every weight of conv1 (Conv_0), or every weight after it, plus one
        return jax.tree_util.tree_map_with_path(
            lambda path, leaf: leaf + 1.0 if ("Conv_0" in jax.tree_util.keystr(path)) == in_conv1 else leaf,
            model.params)

    maps = handle(model.apply_fn, model.params, images)[1]
    np.testing.assert_array_equal(handle(model.apply_fn, shifted(in_conv1=False), images)[1], maps)
    assert float(jnp.abs(handle(model.apply_fn, shifted(in_conv1=True), images)[1] - maps).max()) > 1e-4


def test_distillation_and_explanation_losses_by_hand():
    teacher = jnp.array([[2.0, 0.0, -1.0]])
    assert float(distillation_losses(teacher, teacher, jnp.array([0]), 1.0, 1.0)[0]) == pytest.approx(0.0, abs=1e-6)
    ce = -jax.nn.log_softmax(teacher)[0, 1]
    assert float(distillation_losses(teacher, teacher, jnp.array([1]), 0.0, 1.0)[0]) == pytest.approx(float(ce))
    # a map of ones keeps the image, so the teacher keeps its prediction exactly
    model = make_tiny_model()
    x = jax.random.uniform(jax.random.key(0), (2, 16, 16, 3))
    logits = model.logits(model.params, x)
    fill = jnp.zeros(3)
    kept = explanation_loss(model.apply_fn, model.params, x, jnp.ones((2, 16, 16)), logits, fill)
    removed = explanation_loss(model.apply_fn, model.params, x, jnp.zeros((2, 16, 16)), logits, fill)
    np.testing.assert_allclose(kept, 0.0, atol=1e-6)
    assert float(removed.min()) > 0.0
    # the L1 term is priced per 224 x 224 map: a full 224 px map and a full 32 px map both cost lam * 224^2
    for side in (224, 32):
        full = jnp.ones((1, side, side))
        assert float(sparsity_loss(full, 1e-5)[0]) == pytest.approx(1e-5 * 224 * 224)
    assert float(sparsity_loss(jnp.zeros((1, 8, 8)).at[0, 0, 0].set(-1.0), 1.0)[0]) == pytest.approx(224 * 224 / 64)


def refinement_objective(model, images, maps, labels):
    """The objective :func:`refine_maps` lowers, per image, at its default weights (restated here)."""
    fill = jnp.zeros(3)
    logits = model.logits(model.params, images)
    return (explanation_loss(model.apply_fn, model.params, images, maps, logits, fill) + sparsity_loss(maps, 1e-5)
            + deletion_loss(model.apply_fn, model.params, images, maps, labels, fill))


def test_refining_starts_from_the_surrogates_map_lowers_each_images_objective_and_ignores_the_batch():
    model = make_tiny_model()
    handle = ModelHandle.of(model)
    keys = jax.random.split(jax.random.key(0), 2)
    images = jax.random.uniform(keys[0], (3, 16, 16, 3))
    maps = jax.random.uniform(keys[1], (3, 16, 16), minval=0.2, maxval=0.8)
    labels = jnp.argmax(model.logits(model.params, images), -1)
    refine = jax.jit(refine_maps, static_argnames=("steps", "stride"))

    np.testing.assert_allclose(refine(handle, model.params, images, maps, labels, steps=0), maps, atol=1e-6)
    refined = refine(handle, model.params, images, maps, labels, steps=15, stride=4)
    assert refined.shape == maps.shape and float(refined.min()) >= 0.0 and float(refined.max()) <= 1.0
    before, after = (refinement_objective(model, images, m, labels) for m in (maps, refined))
    assert bool(jnp.all(after < before)), (before, after)
    # the offset lives on a grid of stride-sized cells: one 16 px cell shifts each map's logits by one constant
    whole = refine(handle, model.params, images, maps, labels, steps=5, stride=16)
    offset = jnp.log(whole / (1 - whole)) - jnp.log(maps / (1 - maps))
    assert float(jnp.abs(offset - offset.mean((1, 2), keepdims=True)).max()) < 1e-3
    assert float(jnp.abs(offset).min()) > 1e-3
    alone = refine(handle, model.params, images[1:2], maps[1:2], labels[1:2], steps=15, stride=4)
    np.testing.assert_allclose(alone[0], refined[1], atol=1e-5)


def test_a_negative_number_of_refinement_steps_is_refused():
    with pytest.raises(UsageError, match="refine_steps"):
        runner.explain(make_tiny_model(), "surrogate", np.zeros((1, 16, 16, 3), np.float32), refine_steps=-1)


class Interrupted(Exception):
    pass


def test_train_resume_load_and_explain_with_a_tiny_teacher(tmp_path, monkeypatch):
    """Trains a surrogate; a second run killed after its first epoch's checkpoint resumes to the same
    artefact; the explainer loads it, and its maps ignore the label (class-agnostic, as in the paper)."""
    from jaxplain.train import load_artefact, surrogate_trainer

    monkeypatch.setitem(MODELS, "tiny", make_tiny_model)
    folder = write_labelled_folder(tmp_path / "images", 24)
    recipe = SurrogateRecipe(teacher="tiny", data=str(folder), holdout=str(folder), folder_rows="even", width=8,
                             epochs=2, batch_size=4, bf16=False, holdout_limit=12)
    config = train(recipe, tmp_path / "surrogate", tmp_path / "run")
    assert config["train_images"] == 12 and config["holdout_images"] == 12
    assert 0.0 <= config["agreement"] <= 1.0 and 0.0 < config["map_mean"] < 1.0

    real_fit = surrogate_trainer.fit

    def killed_after_the_first_epoch(*args, evaluate, **kwargs):  # dies in the first epoch's report,
        def die(state):  # after that epoch's checkpoint was written
            raise Interrupted
        return real_fit(*args, evaluate=die, **kwargs)

    monkeypatch.setattr(surrogate_trainer, "fit", killed_after_the_first_epoch)
    with pytest.raises(Interrupted):
        train(recipe, tmp_path / "resumed", tmp_path / "resumed_run")
    assert not (tmp_path / "resumed").exists()
    monkeypatch.setattr(surrogate_trainer, "fit", real_fit)
    train(recipe, tmp_path / "resumed", tmp_path / "resumed_run")
    straight, _ = load_artefact(tmp_path / "surrogate")
    resumed, _ = load_artefact(tmp_path / "resumed")
    for a, b in zip(jax.tree_util.tree_leaves(straight), jax.tree_util.tree_leaves(resumed), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)

    model = make_tiny_model()
    images = np.random.default_rng(1).uniform(size=(3, 16, 16, 3)).astype(np.float32)
    maps = runner.explain(model, "surrogate", images, [0, 1, 2], checkpoint=str(tmp_path / "surrogate"))
    again = runner.explain(model, "surrogate", images, [4, 4, 4], checkpoint=str(tmp_path / "surrogate"))
    assert maps.shape == (3, 16, 16) and np.isfinite(maps).all()
    np.testing.assert_allclose(maps, again)  # class-agnostic, as in the paper
    with pytest.raises(UsageError, match="jaxplain train surrogate --teacher tiny"):
        runner.explain(model, "surrogate", images)


def test_a_surrogate_on_the_teachers_own_features_trains_loads_and_reads_the_teacher(tmp_path, monkeypatch):
    """The student made of attention modules on the frozen teacher's features: trained, loaded by the explainer,
    its maps computed from the teacher's params as passed; an unknown feature name lists the valid ones."""
    monkeypatch.setitem(MODELS, "tiny", make_tiny_model)
    folder = write_labelled_folder(tmp_path / "images", 16)
    recipe = SurrogateRecipe(teacher="tiny", data=str(folder), holdout=str(folder), folder_rows="even",
                             features=("conv1", "head"), width=8, epochs=1, batch_size=4, bf16=False, holdout_limit=8)
    config = train(recipe, tmp_path / "surrogate", tmp_path / "run")
    assert config["architecture"] == "FeatureSurrogate" and config["features"] == ["conv1", "head"]
    assert 0.0 < config["map_mean"] < 1.0

    model = make_tiny_model()
    images = np.random.default_rng(1).uniform(size=(3, 16, 16, 3)).astype(np.float32)
    maps = runner.explain(model, "surrogate", images, [0, 1, 2], checkpoint=str(tmp_path / "surrogate"))
    assert maps.shape == (3, 16, 16) and np.isfinite(maps).all() and (maps >= 0).all() and (maps <= 1).all()
    other_teacher = make_tiny_model(seed=1)
    elsewhere = runner.explain(other_teacher, "surrogate", images, [0, 1, 2], checkpoint=str(tmp_path / "surrogate"))
    assert np.abs(maps - elsewhere).max() > 1e-4  # the maps are made from the teacher's own features

    with pytest.raises(UsageError, match="no feature nowhere; valid: conv1, head"):
        train(dataclasses.replace(recipe, features=("conv1", "nowhere")), tmp_path / "bad", tmp_path / "bad_run")


def test_the_shipped_cifar10_surrogates_load_and_explain_batch_invariantly():
    """The shipped CIFAR-10 surrogate (teacher features), the one
    fine-tuned on refined maps and the from-scratch one (an artefact written before ``features`` was recorded) all
    load for the real teacher and give the same map alone as in a batch; so does the preset's map refined per
    image. The fine-tuned network's maps are its own, not the preset's."""
    from jaxplain.artefacts import project_checkpoints
    from jaxplain.zoo import load_model

    model = load_model("cifar10_resnet_small")
    images = np.random.default_rng(0).uniform(size=(3, 32, 32, 3)).astype(np.float32)
    for checkpoint in (None, *(str(project_checkpoints() / f"surrogate_cifar10_resnet_small_{variant}")
                               for variant in ("distilled", "scratch"))):
        maps = runner.explain(model, "surrogate", images, checkpoint=checkpoint)
        alone = runner.explain(model, "surrogate", images[1:2], checkpoint=checkpoint)
        assert maps.shape == (3, 32, 32) and float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0
        np.testing.assert_allclose(alone[0], maps[1], atol=1e-5)
        assert float(maps.std()) > 1e-3  # not a constant map
    distilled = runner.explain(model, "surrogate", images,
                               checkpoint=str(project_checkpoints() / "surrogate_cifar10_resnet_small_distilled"))
    assert float(np.abs(distilled - runner.explain(model, "surrogate", images)).max()) > 1e-2
    refined = runner.explain(model, "surrogate", images, refine_steps=2)
    alone = runner.explain(model, "surrogate", images[1:2], refine_steps=2)
    np.testing.assert_allclose(alone[0], refined[1], atol=1e-5)
    assert float(np.abs(refined - runner.explain(model, "surrogate", images)).max()) > 1e-3  # refining moved the map


def test_a_feature_surrogate_refuses_another_teacher(tmp_path):
    from jaxplain.artefacts import project_checkpoints

    model = make_tiny_model()  # named "tiny"; the artefact reads cifar10_resnet_small's features
    with pytest.raises(UsageError, match="holds the surrogate of 'cifar10_resnet_small'; it cannot explain 'tiny'"):
        runner.explain(model, "surrogate", np.zeros((1, 16, 16, 3), np.float32),
                       checkpoint=str(project_checkpoints() / "surrogate_cifar10_resnet_small"))


def test_fine_tuning_on_refined_maps_resumes_its_targets_and_moves_the_maps_towards_them(tmp_path, monkeypatch):
    """experiments/distil_refined_maps.py on a tiny teacher: the refined targets are written chunk by chunk and read
    back instead of recomputed; fine-tuning lowers the maps' cross-entropy to them and returns variables of the
    surrogate's own structure; random views are crops of each image, image-major and reproducible."""
    import importlib.util
    import sys
    from pathlib import Path

    from jaxplain.zoo import load_surrogate

    script = Path(__file__).parent.parent / "experiments" / "distil_refined_maps.py"
    spec = importlib.util.spec_from_file_location("distil_refined_maps", script)
    distil = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, distil)  # its dataclass looks its module up there
    spec.loader.exec_module(distil)

    monkeypatch.setitem(MODELS, "tiny", make_tiny_model)
    folder = write_labelled_folder(tmp_path / "images", 16)
    recipe = SurrogateRecipe(teacher="tiny", data=str(folder), holdout=str(folder), folder_rows="even",
                             features=("conv1", "head"), width=8, epochs=1, batch_size=4, bf16=False, holdout_limit=8)
    train(recipe, tmp_path / "surrogate", tmp_path / "run")
    teacher, handle = make_tiny_model(), load_surrogate("tiny", tmp_path / "surrogate")
    images = np.random.default_rng(2).uniform(size=(12, 16, 16, 3)).astype(np.float32)
    settings = distil.Settings(refine_steps=3, chunk=8, epochs=20, batch_size=4, learning_rate=1e-2)

    targets = distil.refined_targets(teacher, handle, images, tmp_path / "targets", settings)
    assert targets.shape == (12, 16, 16) and sorted(p.name for p in (tmp_path / "targets").iterdir()) == [
        "targets-000000.npy", "targets-000008.npy"]
    monkeypatch.setattr(distil, "refine_maps", lambda *a, **k: pytest.fail("a chunk on disk was recomputed"))
    np.testing.assert_array_equal(distil.refined_targets(teacher, handle, images, tmp_path / "targets", settings),
                                  targets)

    def cross_entropy(variables):
        maps = np.clip(np.asarray(dataclasses.replace(handle, variables=variables)(teacher.apply_fn, teacher.params,
                                                                                   images)[1]), 1e-6, 1 - 1e-6)
        return float(-(targets * np.log(maps) + (1 - targets) * np.log1p(-maps)).mean())

    tuned = distil.fine_tune(teacher, handle, images, targets, settings)
    assert cross_entropy(tuned) < cross_entropy(handle.variables) - 1e-3
    assert jax.tree_util.tree_structure(tuned) == jax.tree_util.tree_structure(handle.variables)
    with pytest.raises(UsageError, match="no batch of --batch-size 4"):
        distil.fine_tune(teacher, handle, images[:3], targets[:3], settings)

    views = distil.random_views(images[:3], 2, seed=0)  # two crops of each image, image-major
    assert views.shape == (6, 16, 16, 3) and 0.0 <= views.min() and views.max() <= 1.0
    assert np.abs(views[0] - views[1]).max() > 1e-3 and np.abs(views[0] - images[0]).max() > 1e-3
    np.testing.assert_array_equal(views, distil.random_views(images[:3], 2, seed=0))
