"""Sharding over 8 forced CPU devices gives the same maps as one device (run in a fresh process, since the
device count is fixed when JAX starts)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from jaxplain.parallel import pad_rows, valid_mask

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, jax.numpy as jnp, numpy as np
    sys.path.insert(0, {root!r})
    from tests.conftest import make_tiny_model
    from jaxplain import runner
    from jaxplain.parallel import data_mesh
    from jaxplain.nets.vae import VAE
    from jaxplain.explainers.relabel import VaeHandle

    assert jax.device_count() == 8, jax.devices()
    model = make_tiny_model()
    images = np.random.default_rng(0).uniform(size=(5, 16, 16, 3)).astype(np.float32)  # 5: not a multiple of 8
    labels = np.array([0, 1, 2, 3, 4])
    vae = VAE(16, 8, (8, 8))
    vae_handle = VaeHandle(vae, vae.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)), jax.random.key(0)))
    methods = {{
        "gradcam": {{}},
        "rise": {{"num_masks": 40, "chunk": 20}},
        "integrated_gradients": {{"steps": 4}},
        "relabel": {{"num_samples": 40, "chunk": 20, "probe_samples": 8, "student_steps": 10,
                     "student_resolution": 8, "vae": vae_handle}},
        "gfi": {{"steps": 4, "inversion_steps": 2}},
        "dax": {{"num_samples": 32, "chunk": 16, "resolution": 16, "pool": 4, "hidden": 8, "mask_features": 4,
                 "averaged_epochs": 2, "segmentation": "grid", "patch": 4}},
    }}
    out = {{}}
    for method, options in methods.items():
        sharded = runner.explain(model, method, images, labels, key=1, mesh=data_mesh(), **options)
        single = runner.explain(model, method, images, labels, key=1, mesh=data_mesh(jax.devices()[:1]), **options)
        out[method] = float(np.abs(sharded - single).max() / (np.abs(single).max() + 1e-12))
        if method in ("gradcam", "rise", "relabel"):  # the same batch under jit + NamedSharding (XLA partitions)
            partitioned = runner.explain(model, method, images, labels, key=1, mesh=data_mesh(), per_device=False,
                                         **options)
            out[method + "_jit"] = float(np.abs(partitioned - sharded).max() / (np.abs(sharded).max() + 1e-12))
    print(json.dumps(out))
""")


def test_maps_are_the_same_on_8_devices_and_on_1():
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", SCRIPT.format(root=root)], capture_output=True, text=True,
                            env=env, cwd=root, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    differences = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(differences) == {"gradcam", "rise", "integrated_gradients", "relabel", "gfi", "dax", "gradcam_jit",
                                "rise_jit", "relabel_jit"}
    # relabel and GFI fit something by gradient descent, which amplifies float rounding (different per-device
    # GEMM shapes sum in a different order); DAX trains each image by the same compiled step on any device
    # count (images_per_step=1), and every other method is a fixed computation.
    tolerance = {"relabel": 2e-3, "relabel_jit": 2e-3, "gfi": 2e-3}
    for method, difference in differences.items():
        assert difference < tolerance.get(method, 1e-4), (method, difference)


def test_padding_repeats_the_last_row():
    padded = pad_rows((np.arange(5.0), np.arange(10.0).reshape(5, 2)), 4)
    np.testing.assert_array_equal(padded[0], [0, 1, 2, 3, 4, 4, 4, 4])
    assert padded[1].shape == (8, 2)
    np.testing.assert_array_equal(valid_mask(5, 4), [1, 1, 1, 1, 1, 0, 0, 0])
