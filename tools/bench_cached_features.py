"""Benchmark: strategy A with the frozen backbone re-run every epoch vs. features cached once.

Uses lesson 3's own functions (the notebook's cells tagged "functions"), on the real ants/bees images,
with the same epochs, seed, head initialisation and batch order for both paths. Prints both times, the
speed-up and both final validation accuracies.

    python -m tools.bench_cached_features [--epochs 15] [--image-size 224] [--data PATH]

The speed-up is close to the number of epochs: the uncached path runs the backbone over the training and
validation images once per epoch, the cached path once in total.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # progress bars would flood the report; set before tqdm loads

from tools import CHECKOUT as REPO
from tools import LAYOUT

NOTEBOOK = LAYOUT.lessons / "03_transfer_learning.ipynb"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "hymenoptera_data"


def calibrate_batchnorm(model, images, batch_size=32):
    """Offline stand-in for pretrained weights: estimate BatchNorm statistics from the images.

    With random weights MobileNetV2's BatchNorm layers hold identity statistics and its features shrink to
    ~1e-9, so a head would learn nothing and "same accuracy" would be a vacuous 50% = 50%. Features of a
    sensible scale make the two paths' agreement (and the accuracies) mean something."""
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over all batches
        model.train()
        for chunk in images.split(batch_size):
            model.features(chunk.to(next(model.parameters()).device))
        for bn in bns:
            bn.momentum = 0.1
    return model.eval()


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("HYMENOPTERA_DIR", DEFAULT_DATA)),
        help="hymenoptera_data folder (train/ and val/)",
    )
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--per-class", type=int, default=None, help="subset size per class (default: all images)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(REPO))
    from tools.notebooks import notebook_namespace

    ns = notebook_namespace(NOTEBOOK)
    torch, models = ns["torch"], ns["models"]
    if args.threads:
        torch.set_num_threads(args.threads)
    if not ns["is_dataset_root"](args.data):
        print(f"no ants/bees images at {args.data}; pass --data or set HYMENOPTERA_DIR", file=sys.stderr)
        return 2

    size, resize = args.image_size, args.image_size * 8 // 7
    transform = models.MobileNet_V2_Weights.DEFAULT.transforms(crop_size=size, resize_size=resize)
    start = time.perf_counter()
    X_train, y_train, classes, _ = ns["load_split"](args.data, "train", transform, resize, args.per_class)
    X_val, y_val, _, _ = ns["load_split"](args.data, "val", transform, resize, args.per_class)
    decode_seconds = time.perf_counter() - start
    data = {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}

    torch.manual_seed(ns["SEED"])
    backbone, weights, notice = ns["load_pretrained"](models.mobilenet_v2, models.MobileNet_V2_Weights, "MobileNetV2")
    model = ns["replace_head"](backbone, num_classes=len(classes)).to(ns["DEVICE"])
    if weights is None:
        calibrate_batchnorm(model, X_train)
        notice += " BatchNorm statistics estimated from the training images (see calibrate_batchnorm)."
    initial_head = copy.deepcopy(model.classifier.state_dict())

    # Untimed warm-up: the first forward pass of a shape pays one-off setup costs that would bias whichever runs first.
    ns["extract_features"](model, X_train[: args.batch_size])
    common = {"epochs": args.epochs, "head_state": initial_head, "lr": args.lr, "batch_size": args.batch_size}
    # CPU time next to wall time: on a shared machine wall time swings with other people's load, while this
    # process's CPU time (with --threads 1) stays close to what an idle single core would take.
    cpu_start = time.process_time()
    uncached = ns["run_strategy_a"](model, data, cached=False, **common)
    cpu_mid = time.process_time()
    cached = ns["run_strategy_a"](model, data, cached=True, **common)
    cpu_uncached, cpu_cached = cpu_mid - cpu_start, time.process_time() - cpu_mid
    loss_gap = max(abs(a["loss"] - b["loss"]) for a, b in zip(uncached["history"], cached["history"], strict=True))

    print(notice)
    print(f"device {ns['DEVICE']}, torch threads {torch.get_num_threads()}, classes {classes}")
    print(
        f"images: {len(y_train)} train + {len(y_val)} val at {size}×{size} (decoded once in {decode_seconds:.1f} s, "
        "not counted below)"
    )
    print(f"epochs: {args.epochs} for both paths, batch size {args.batch_size}, seed {ns['SEED']}")
    print(
        f"uncached (backbone every epoch): {uncached['seconds']:8.2f} s   final val accuracy {uncached['val_acc']:.2%}"
    )
    print(
        f"cached   (features once + head): {cached['seconds']:8.2f} s   final val accuracy {cached['val_acc']:.2%}"
        f"   ({cached['extract_seconds']:.2f} s extracting, "
        f"{cached['seconds'] - cached['extract_seconds']:.2f} s training)"
    )
    speedup = uncached["seconds"] / cached["seconds"]
    gap_points = abs(uncached["val_acc"] - cached["val_acc"]) * 100
    print(
        f"CPU time of this process: uncached {cpu_uncached:.2f} s, cached {cpu_cached:.2f} s "
        f"(speed-up {cpu_uncached / cpu_cached:.1f}×)"
    )
    print(
        f"speed-up (wall): {speedup:.1f}× (goal ≥ 10×)   accuracy difference: {gap_points:.1f} points (goal ≤ 1)   "
        f"largest per-epoch loss difference: {loss_gap:.2e}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
