"""A checkpoint of random weights for an architecture, for timing where the real weights are
not at hand (the GPU machine reaches no network). The class logits' bias sets how many scores
pass the 0.05 threshold: torchvision's prior (-4.6, sigmoid 0.01) passes almost none, so the
post-processing has nothing to do; -1.0 passes every one (each level's top-k full, 5,000 boxes
an image into NMS): the post-processing's heaviest load.

    python scripts/random_weights.py models/rand800.pt --class-bias -1.0
"""

import argparse

import torch

from retinaflow.model.architectures import ARCHITECTURES, build_retinanet


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="where the state dict goes")
    parser.add_argument("--arch", default="resnext50_32x4d_fpn", choices=ARCHITECTURES)
    parser.add_argument("--num-classes", type=int, default=264)
    parser.add_argument("--image-size", type=int, default=800)
    parser.add_argument("--class-bias", type=float, default=-1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    model = build_retinanet(args.arch, args.num_classes, args.image_size)
    torch.nn.init.constant_(model.head.classification_head.cls_logits.bias, args.class_bias)
    torch.save(model.state_dict(), args.out)
    print(f"{args.out}: random {args.arch}, class bias {args.class_bias}, seed {args.seed}")


if __name__ == "__main__":
    main()
