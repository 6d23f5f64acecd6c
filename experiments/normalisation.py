"""Settles the input normalisation of the imported EfficientNet-Lite0 weights by measurement.

The same weights are evaluated with ``(x - 127) / 128`` (TensorFlow Lite's convention) and with the
ImageNet mean/std used by PyTorch's model zoos; the right one is the one the network was trained with.

    python experiments/normalisation.py --data ../shared/data/imagenet-dev
"""

import argparse

from jaxplain.evaluation.accuracy import accuracy
from jaxplain.model import CENTRED_127, IMAGENET_MEAN_STD, from_linen
from jaxplain.models.efficientnet_lite import EfficientNetLite0
from jaxplain.zoo import efficientnet_lite0_variables, load_efficientnet_lite0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="labelled folder or tfds:NAME[:SPLIT] of ImageNet images")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    base = load_efficientnet_lite0()
    print("| normalisation | top-1 | top-5 | images |\n| --- | ---: | ---: | ---: |")
    for name, normalisation in (("(x - 127) / 128", CENTRED_127), ("ImageNet mean/std", IMAGENET_MEAN_STD)):
        model = from_linen(base.name, EfficientNetLite0(), efficientnet_lite0_variables(), class_names=base.class_names,
                           preprocessing=base.preprocessing, normalisation=normalisation)
        result = accuracy(model, args.data, limit=args.limit)
        print(f"| {name} | {result['top1']:.2%} | {result['top5']:.2%} | {result['n']} |", flush=True)


if __name__ == "__main__":
    main()
