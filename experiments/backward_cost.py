"""Why plain gradients trail captum on a CPU: the cost of an input gradient relative to a forward pass.

EfficientNet-Lite0 with the same weights in JAX and PyTorch (``jaxplain.models.torch_reference``), the
same demo photos: forward images/s, then images/s of the gradient of the class logit with respect to the
input only (no weight gradients, as ``jaxplain``'s gradient and captum's ``Saliency`` compute), median of
repeats after a warm-up. Prints one line per framework:

    python experiments/backward_cost.py --batch 2
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import torch

from benchmark import photos, timed  # experiments/benchmark.py, beside this script
from jaxplain import runner
from jaxplain.models.torch_reference import TorchLite0, nchw
from jaxplain.zoo import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n = args.batch
    teacher = load_model("efficientnet_lite0")
    images = photos(teacher, n, None)
    labels = runner.predict(teacher, images).argmax(-1)

    x = jnp.asarray(images)
    forward = jax.jit(lambda x: teacher.logits(teacher.params, x))
    gradient = jax.jit(jax.grad(lambda x: teacher.logits(teacher.params, x)[jnp.arange(n), labels].sum()))
    jax_rates = n / timed(lambda: forward(x), args.repeats), n / timed(lambda: gradient(x), args.repeats)

    model = TorchLite0().eval().requires_grad_(False)
    xt, target = nchw(images), torch.as_tensor(labels)

    def torch_gradient():
        inputs = xt.clone().requires_grad_(True)
        return torch.autograd.grad(model(inputs)[torch.arange(n), target].sum(), inputs)[0]

    with torch.no_grad():
        torch_forward = n / timed(lambda: model(xt), args.repeats)
    torch_rates = torch_forward, n / timed(torch_gradient, args.repeats)
    for name, (fwd, grad) in (("jax (XLA)", jax_rates), (f"torch ({torch.get_num_threads()} threads)", torch_rates)):
        print(f"{name}, batch {n}: forward {fwd:.1f} images/s, input gradient {grad:.1f} images/s, "
              f"gradient costs {fwd / grad:.1f} forwards")


if __name__ == "__main__":
    main()
