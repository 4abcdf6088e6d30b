"""A checkpoint of random weights for an architecture, for timing where the real weights are
not at hand (the GPU machine reaches no network). The class logits' bias sets how many scores
pass the 0.05 threshold: torchvision's prior (-4.6, sigmoid 0.01) passes almost none, so the
post-processing has nothing to do; -1.0 passes every one (each level's top-k full, 5,000 boxes
an image into NMS): the post-processing's heaviest load.

Random class convolutions give logits within ~0.01 of the bias: in float16 (the GPU heads'
maps) a level then holds 3-36 distinct values, and tens of thousands of logits tie with a
level's 1000th best (86,379 at P5 on a demo image at 800), which trained weights never give.
`--class-spread S` scales the class convolution so that the logits spread with standard
deviation S around the bias, measured on a seeded random probe batch (other images spread
less: the demo's at 800 0.05-0.2 by level with S = 1). With S = 1 every level's top-k is still
full, and at most 1,014 logits tie with or beat a level's 1000th best on a demo image at 800:
the top-k sees trained-like keys instead of mass ties.

    python scripts/random_weights.py models/rand800.pt --class-bias -1.0
    python scripts/random_weights.py models/spread800.pt --class-bias -1.0 --class-spread 1.0
"""

import argparse

import torch

from retinaflow.model.architectures import ARCHITECTURES, build_retinanet
from retinaflow.model.head import NUM_LEVELS, HeadMaps

PROBE_SIZE = 256  # the probe batch's side: small enough for a CPU, every level non-empty


def probe_logits(model, seed: int) -> torch.Tensor:
    """The class logits of two seeded U(0, 1) images of PROBE_SIZE, all levels flat."""
    images = torch.rand(2, 3, PROBE_SIZE, PROBE_SIZE, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        maps = HeadMaps(model).eval()(images)
    return torch.cat([m.flatten() for m in maps[:NUM_LEVELS]])


def spread_class_logits(model, spread: float, seed: int) -> float:
    """Scale the class convolution's weight so that the probe's logits have standard deviation
    `spread` about the bias; returns the factor."""
    conv = model.head.classification_head.cls_logits
    factor = spread / float(probe_logits(model, seed).std())
    with torch.no_grad():
        conv.weight.mul_(factor)
    return factor


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="where the state dict goes")
    parser.add_argument("--arch", default="resnext50_32x4d_fpn", choices=ARCHITECTURES)
    parser.add_argument("--num-classes", type=int, default=264)
    parser.add_argument("--image-size", type=int, default=800)
    parser.add_argument("--class-bias", type=float, default=-1.0)
    parser.add_argument(
        "--class-spread", type=float, default=None, help="the class logits' standard deviation"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.class_spread is not None and not args.class_spread > 0:
        parser.error(f"--class-spread must be positive, got {args.class_spread}")
    torch.manual_seed(args.seed)
    model = build_retinanet(args.arch, args.num_classes, args.image_size)
    torch.nn.init.constant_(model.head.classification_head.cls_logits.bias, args.class_bias)
    spread = ""
    if args.class_spread is not None:
        factor = spread_class_logits(model, args.class_spread, args.seed)
        spread = f", class logits spread {args.class_spread} (weight x {factor:.4g})"
    torch.save(model.state_dict(), args.out)
    print(f"{args.out}: random {args.arch}, class bias {args.class_bias}{spread}, seed {args.seed}")


if __name__ == "__main__":
    main()
