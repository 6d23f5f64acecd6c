"""Deletion and insertion under the ``rise`` protocols agree with the RISE authors' CausalMetric (ported in
tests/rise_causal_metric.py) on real photos, the same EfficientNet-Lite0 weights and the same maps."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch is not installed: pip install -e '.[reference]' runs these")
pytest.importorskip("efficientnet_lite_pytorch", reason="efficientnet-lite-pytorch is not installed")

import jax.numpy as jnp  # noqa: E402

from jaxplain import runner  # noqa: E402
from jaxplain.metrics.faithfulness import PROTOCOLS, batch_deletion_insertion, gaussian_filtered_delta  # noqa: E402
from jaxplain.models.torch_reference import TorchLite0, nchw  # noqa: E402
from tests.rise_causal_metric import area, causal_curve, gkern  # noqa: E402

pytestmark = [pytest.mark.reference, pytest.mark.real_model]


def test_the_kernel_is_the_authors_flat_one():
    kernel = gaussian_filtered_delta(11, 5.0)
    np.testing.assert_allclose(kernel, gkern(11, 5.0)[0, 0].numpy(), atol=1e-7)
    assert abs(kernel[5, 5] - 0.0088) < 1e-4 and abs(kernel[0, 0] - 0.0077) < 1e-4 and abs(kernel.sum() - 1) < 1e-5


def test_deletion_and_insertion_agree_with_the_authors_code(teacher, photos):
    model = torch.nn.Sequential(TorchLite0().eval(), torch.nn.Softmax(dim=1))
    labels = runner.predict(teacher, photos).argmax(-1)
    gradcam = runner.explain(teacher, "gradcam", photos, labels)
    noise = np.random.default_rng(0).uniform(size=gradcam.shape).astype(np.float32)
    protocol = PROTOCOLS["rise_fast"]  # the authors' notebook's 224 * 8 px per step (29 points)
    for maps in (gradcam, noise):
        ours = batch_deletion_insertion(teacher.apply_fn, teacher.params, jnp.asarray(photos), jnp.asarray(maps),
                                        jnp.asarray(labels), jnp.asarray(teacher.normalisation.zero_pixel), protocol)
        for i in range(len(photos)):
            image = nchw(photos[i:i + 1])
            for mode, name in (("del", "deletion"), ("ins", "insertion")):
                curve = causal_curve(model, image, maps[i], mode, step=224 * 8)
                np.testing.assert_allclose(np.asarray(ours[f"{name}_curve"][i]), curve, atol=2e-4)
                assert abs(float(ours[name][i]) - area(curve)) < 1e-3
