"""Small building blocks shared by the Flax teachers and explanation networks."""

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxplain.model import TAPS


def tap(module: nn.Module, name: str, x):
    """Exposes ``x`` as the named feature ``name``.

    The value is recorded in the ``intermediates`` collection (so ``apply`` can return it). If the
    caller supplies an array under ``taps/name``, it is added to the feature: applied at zero, this
    lets white-box methods differentiate the output with respect to the feature itself (Grad-CAM,
    GFI). Unlike ``Module.perturb``, taps may be given for any subset of the features.
    """
    if module.has_variable(TAPS, name):
        x = x + module.get_variable(TAPS, name)
    module.sow("intermediates", name, x)
    return x


class DepthwiseConv(nn.Module):
    """Depthwise k x k convolution with TensorFlow "SAME" padding; kernel ``[k, k, 1, C]`` like ``nn.Conv``.

    On the CPU, XLA's grouped convolution is about 20x slower than a sum of k*k shifted, scaled copies
    of the input, so the CPU path uses the latter; accelerators use the library convolution.
    """

    kernel_size: int
    stride: int = 1

    @nn.compact
    def __call__(self, x):
        channels = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (self.kernel_size, self.kernel_size, 1, channels))
        kernel = kernel.astype(x.dtype)
        if jax.default_backend() != "cpu":
            return lax.conv_general_dilated(
                x, kernel, (self.stride, self.stride), "SAME",
                dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=channels,
            )
        k, s = self.kernel_size, self.stride
        pads = lax.padtype_to_pads(x.shape[1:3], (k, k), (s, s), "SAME")
        padded = jnp.pad(x, ((0, 0), *pads, (0, 0)))
        out_h, out_w = -(-x.shape[1] // s), -(-x.shape[2] // s)
        out = jnp.zeros((x.shape[0], out_h, out_w, channels), x.dtype)
        for i in range(k):
            for j in range(k):
                window = padded[:, i:i + s * (out_h - 1) + 1:s, j:j + s * (out_w - 1) + 1:s, :]
                out = out + window * kernel[i, j, 0]
        return out


class LoopConv(nn.Module):
    """A k x k convolution ("SAME" padding, stride 1, bias) with ``nn.Conv``'s parameters, for networks
    trained inside ``lax.scan`` (DAX trains two per image).

    On the CPU, XLA computes the kernel gradient of a convolution in a loop body 10-20x slower than
    outside one; written as matrix products it runs at full speed: over image patches when they are few
    (``channels * k * k <= 256``), else by :func:`tap_convolution` when the outputs are few (DAX's 32 -> 1
    layer: 3x faster than the next way), else over the k*k shifted copies of the input. Accelerators use
    the library convolution.
    """

    features: int
    kernel_size: int
    torch_init: bool = False  # PyTorch's default initialisation (kaiming_uniform(a=sqrt(5)), uniform bias)

    @nn.compact
    def __call__(self, x):
        k, channels = self.kernel_size, x.shape[-1]
        kernel_init, bias_init = (torch_initialisers(channels * k * k) if self.torch_init
                                  else (nn.initializers.lecun_normal(), nn.initializers.zeros))
        kernel = self.param("kernel", kernel_init, (k, k, channels, self.features))
        bias = self.param("bias", bias_init, (self.features,))
        if jax.default_backend() != "cpu":
            out = lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        elif channels * k * k <= 256:  # patches are small: one matrix product
            patches = lax.conv_general_dilated_patches(x, (k, k), (1, 1), "SAME",
                                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
            out = patches @ jnp.transpose(kernel, (2, 0, 1, 3)).reshape(-1, self.features)  # patch order (C, kh, kw)
        elif self.features * k * k <= 256:  # few outputs: one product per tap, then shifted sums
            out = tap_convolution(x, kernel)
        else:
            padded = jnp.pad(x, ((0, 0), *_same_pads(x.shape, k), (0, 0)))
            height, width = x.shape[1:3]
            out = sum(padded[:, i:i + height, j:j + width, :] @ kernel[i, j] for i in range(k) for j in range(k))
        return out + bias


def torch_initialisers(fan_in: int):
    """``(kernel_init, bias_init)`` of PyTorch's ``nn.Linear`` and ``nn.Conv2d``: both uniform on
    ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]`` (flax's default is a truncated normal of standard deviation
    ``1/sqrt(fan_in)`` and zero bias: three times the weights' variance)."""
    bound = 1.0 / fan_in ** 0.5
    uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)
    return uniform, uniform


def _same_pads(shape: tuple[int, ...], k: int) -> list[tuple[int, int]]:
    """``(low, high)`` padding of the height and width of an ``[N, H, W, C]`` input for a "SAME" k x k stride-1 convolution."""
    return lax.padtype_to_pads(shape[1:3], (k, k), (1, 1), "SAME")


@jax.custom_vjp
def tap_convolution(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """A k x k convolution ("SAME", stride 1, no bias) of ``x`` ``[N, H, W, C]`` with ``kernel`` ``[k, k, C, F]``
    for few outputs ``F``: one matrix product gives every tap's response ``[N, H', W', k*k, F]`` on the padded
    input, and the output sums each tap's shifted slice. Its gradients are two matrix products with the
    cotangent's k*k shifted copies (:func:`_shifted_cotangents`), so nothing of size ``C * k * k`` per pixel is
    ever made (automatic differentiation of the slices is slow on the CPU, hence the custom rule)."""
    k, _, channels, features = kernel.shape
    height, width = x.shape[1:3]
    padded = jnp.pad(x, ((0, 0), *_same_pads(x.shape, k), (0, 0)))
    taps = padded @ jnp.transpose(kernel, (2, 0, 1, 3)).reshape(channels, k * k * features)
    taps = taps.reshape(*taps.shape[:3], k * k, features)
    return sum(taps[:, i:i + height, j:j + width, i * k + j] for i in range(k) for j in range(k))


def _shifted_cotangents(g: jax.Array, k: int, low_h: int, low_w: int) -> jax.Array:
    """``[N, H, W, k*k, F]``: for each tap ``(i, j)``, the output cotangent ``g`` moved onto the input pixels that
    the tap reads (zero where it reads padding)."""
    height, width = g.shape[1:3]
    padded = jnp.pad(g, ((0, 0), (k - 1, k - 1), (k - 1, k - 1), (0, 0)))
    return jnp.stack([padded[:, k - 1 - i + low_h:k - 1 - i + low_h + height, k - 1 - j + low_w:k - 1 - j + low_w + width]
                      for i in range(k) for j in range(k)], axis=3)


def _tap_convolution_forward(x, kernel):
    return tap_convolution(x, kernel), (x, kernel)


def _tap_convolution_backward(residuals, g):
    x, kernel = residuals
    k, _, channels, features = kernel.shape
    (low_h, _), (low_w, _) = _same_pads(x.shape, k)
    shifted = _shifted_cotangents(g, k, low_h, low_w)
    shifted = shifted.reshape(*shifted.shape[:3], k * k * features)
    by_tap = jnp.transpose(kernel, (0, 1, 3, 2)).reshape(k * k * features, channels)
    grad_kernel = jnp.einsum("nhwc,nhwt->tc", x, shifted).reshape(k, k, features, channels)
    return shifted @ by_tap, jnp.transpose(grad_kernel, (0, 1, 3, 2))


tap_convolution.defvjp(_tap_convolution_forward, _tap_convolution_backward)
