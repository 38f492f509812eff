"""Hidden checks of exercises 7-8 (inverted residuals, an end-to-end fine-tuning pipeline).

Exercise 7: each count function is called on grader-chosen sizes and compared with the count of real
layers, computed here. The M = N = 32 answers pass when they are the true counts or what the student's
own functions return (the text says so), so a wrong formula is charged to its own cell only.

Exercise 8: every function is called on the grader's own objects.
- ``make_synthetic_loader``: shapes, dtypes, label range, batch sizes (the last one smaller), no shuffling
  (two passes and the dataset agree sample by sample), determinism by seed, standard-normal images.
- ``train_one_epoch``: a grader-built linear model (fixed seeded weights, its mode recorded at every
  forward pass), a grader-built loader and a plain SGD with lr = 0, so the verdict can recompute the mean
  loss and the accuracy from the seed; a recording SGD captures the gradient each step applies, which the
  verdict recomputes batch by batch.
- ``run_pipeline``: a grader-built stand-in network (``features``: a Sequential of small conv blocks,
  ``classifier``: Dropout + Linear, the layout the text fixes), a grader-built loader of small tensors, and
  a grader stand-in ``train_one_epoch`` (one clean pass that returns seeded numbers), so a mistake in
  the student's ``train_one_epoch`` is not charged again. The probe records, per epoch: which
  parameters are trainable and which moved (its own snapshots), the optimizer's groups and learning rates,
  every ``add_param_group`` call, and the returned history. The three cells judge three separate things:
  ``blocks`` which parameters train in which epoch (the schedule), ``optimizer`` how the optimizer is
  kept (one Adam; the head at head_lr; every trainable parameter in it; one new group of exactly the newly
  trainable parameters at backbone_lr), ``history`` what is reported (against what the optimizer and the
  model held during each epoch, not against the schedule) and eval mode at the end. Unfreezing at the
  wrong time therefore costs the schedule cell only."""
from __future__ import annotations

import math

from ..probes import Check, Fail
from . import common

# =============================================================================== exercise 7


def mv1_expected(m, n, k):
    return k * k * m + m * n                       # depthwise (m, 1, k, k) + pointwise (n, m, 1, 1)


def mv2_expected(m, n, t, k):
    hidden = t * m
    expand = m * hidden if t != 1 else 0           # (hidden, m, 1, 1), left out when t == 1
    return expand + k * k * hidden + hidden * n    # depthwise (hidden, 1, k, k) + project (n, hidden, 1, 1)


def torchvision_conv_weights(m, n, t):
    import torch.nn as nn
    from torchvision.models.mobilenetv2 import InvertedResidual

    block = InvertedResidual(m, n, stride=1, expand_ratio=t)
    return sum(layer.weight.numel() for layer in block.modules() if isinstance(layer, nn.Conv2d))


MV2_TABLE = [(1, 16, 1), (6, 24, 2), (6, 32, 3), (6, 64, 4), (6, 96, 3), (6, 160, 3), (6, 320, 1)]


def mv1_cases(rng):
    sized = [[rng.randint(1, 96), rng.randint(1, 96), k] for k in (1, 5, 7)]
    sized += [[rng.randint(1, 96), rng.randint(1, 96), rng.choice([1, 3, 5, 7])] for _ in range(9)]
    defaults = [[rng.randint(2, 64), rng.randint(2, 64)] for _ in range(3)]
    return {"sized": sized, "defaults": defaults}


def mv1_probe(cases, rec):
    for i, (m, n, k) in enumerate(cases["sized"]):
        rec.call(f"s{i}", "mv1_block_params", m, n, k=k)
    for i, (m, n) in enumerate(cases["defaults"]):
        rec.call(f"d{i}", "mv1_block_params", m, n)


def expect_count(results, key, expected, call, hint):
    got = common.integer(results.returned(key, call), call)
    if got != expected:
        raise Fail(f"{call} returned {got}, which is not right: {hint}")


def mv1_verdict(cases, results):
    hint = ("a depthwise k×k convolution on m channels has k·k weights per channel, the pointwise 1×1 "
            "convolution m -> n has m·n; count weights only (no bias, no BatchNorm)")
    for i, (m, n, k) in enumerate(cases["sized"]):
        expect_count(results, f"s{i}", mv1_expected(m, n, k), f"mv1_block_params({m}, {n}, k={k})", hint)
    for i, (m, n) in enumerate(cases["defaults"]):
        expect_count(results, f"d{i}", mv1_expected(m, n, 3), f"mv1_block_params({m}, {n})",
                     "without k the kernel is 3×3 (k=3 is the default)")


def mv2_cases(rng):
    sized = [[rng.randint(1, 64), rng.randint(1, 64), rng.randint(2, 8), rng.choice([3, 5, 7])] for _ in range(12)]
    sized.append([rng.randint(2, 40), rng.randint(2, 40), rng.randint(2, 8), 1])
    defaults = [[rng.randint(2, 64), rng.randint(2, 64)] for _ in range(2)]
    return {"sized": sized, "defaults": defaults}


def mv2_probe(cases, rec):
    for i, (m, n, t, k) in enumerate(cases["sized"]):
        rec.call(f"s{i}", "mv2_block_params", m, n, expansion=t, k=k)
    for i, (m, n) in enumerate(cases["defaults"]):
        rec.call(f"d{i}", "mv2_block_params", m, n)


def mv2_verdict(cases, results):
    hint = ("expand m -> t·m with a 1×1 convolution, depthwise k×k on the t·m channels, project t·m -> n "
            "with a 1×1 convolution; the expansion multiplies the INPUT channels m")
    for i, (m, n, t, k) in enumerate(cases["sized"]):
        expect_count(results, f"s{i}", mv2_expected(m, n, t, k),
                     f"mv2_block_params({m}, {n}, expansion={t}, k={k})", hint)
    for i, (m, n) in enumerate(cases["defaults"]):
        expect_count(results, f"d{i}", mv2_expected(m, n, 6, 3), f"mv2_block_params({m}, {n})",
                     "the defaults are expansion=6 and k=3")


def torchvision_cases(rng):
    table, in_ch = [], 32
    for t, c, repeats in MV2_TABLE:
        for _ in range(repeats):
            table.append([in_ch, c, t])
            in_ch = c
    extra = [[rng.randint(1, 48), rng.randint(1, 48), 1] for _ in range(2)]
    extra += [[rng.randint(1, 48), rng.randint(1, 48), rng.randint(1, 6)] for _ in range(6)]
    return {"table": table, "extra": extra}


def torchvision_probe(cases, rec):
    for i, (m, n, t) in enumerate(cases["table"] + cases["extra"]):
        rec.call(i, "mv2_block_params", m, n, expansion=t)


def torchvision_verdict(cases, results):
    for i, (m, n, t) in enumerate(cases["table"] + cases["extra"]):
        call = f"mv2_block_params({m}, {n}, expansion={t})"
        hint = ("with expansion 1 there is nothing to expand: torchvision's block has no expansion convolution"
                if t == 1 else "count the conv weights of torchvision's InvertedResidual(m, n, 1, expansion)")
        if i < len(cases["table"]):
            hint += " (this block is one of torchvision's MobileNetV2)"
        expect_count(results, i, torchvision_conv_weights(m, n, t), call, hint)


def answers_cases(rng):
    return {}


def answers_probe(cases, rec):
    for name in ("MV1_PARAMS_32", "MV2_PARAMS_32"):
        if name in rec.ns:
            rec.put(name, rec.ns[name])
    rec.call("mv1_fn", "mv1_block_params", 32, 32)
    rec.call("mv2_fn", "mv2_block_params", 32, 32, expansion=6)


def answers_verdict(cases, results):
    # A wrong function is charged to its own cell: each answer passes when it is the true count or
    # what the student's own function returns (the text says so).
    for name, fn_key, expected, call in (
            ("MV1_PARAMS_32", "mv1_fn", mv1_expected(32, 32, 3), "mv1_block_params(32, 32)"),
            ("MV2_PARAMS_32", "mv2_fn", mv2_expected(32, 32, 6, 3), "mv2_block_params(32, 32, expansion=6)")):
        if name not in results or results.values.get(name) is None:
            raise Fail(f"set {name} in the answer cell of part 2 (it is not defined, or still None)")
        got = common.integer(results.returned(name, name), name)
        own = results.values.get(fn_key)
        if got == expected or (isinstance(own, int) and not isinstance(own, bool) and got == own):
            continue
        raise Fail(f"{name} is {got}: it should be {call}, computed with your function")


def skip_cases(rng):
    widths = [8, 16, 24, 32, 64, 96]
    fixed = []
    for _ in range(2):
        c = rng.choice(widths)
        other = rng.choice([w for w in widths if w != c])
        fixed += [[c, c, 1], [c, c, 2], [c, other, 1], [c, other, 2]]
    fixed += [[rng.choice(widths), rng.choice(widths), rng.choice([1, 2])] for _ in range(12)]
    rng.shuffle(fixed)
    return fixed


def skip_probe(cases, rec):
    for i, (in_ch, out_ch, stride) in enumerate(cases):
        rec.call(i, "uses_identity_skip", in_ch, out_ch, stride)


def skip_verdict(cases, results):
    for i, (in_ch, out_ch, stride) in enumerate(cases):
        call = f"uses_identity_skip({in_ch}, {out_ch}, {stride})"
        got = results.returned(i, call)
        if not isinstance(got, bool):
            raise Fail(f"{call} returned {common.describe(got)}: return True or False")
        if got != (in_ch == out_ch and stride == 1):
            raise Fail(f"{call} returned {got}, which is not right: the input can be added to the output only "
                       f"when both have the same shape (same channels AND stride 1)")


# =============================================================================== exercise 8: the loader


def loader_cases(rng):
    configs = []
    for i in range(4):
        batch = rng.randint(2, 7)
        full = rng.randint(2, 4)
        rest = 0 if i == 1 else rng.randint(1, batch - 1)     # one config divides evenly
        configs.append({"n": batch * full + rest, "classes": rng.randint(2, 9), "size": rng.choice([8, 12, 16]),
                        "batch": batch, "seed": rng.randint(0, 10**6)})
    return {"configs": configs}


def loader_pass(loader):
    """One pass over ``loader``: batch sizes, shapes, dtypes, per-sample fingerprints, labels, moments."""
    import math

    import torch

    sizes, shapes, dtypes, prints, labels, odd = [], [], [], [], [], None
    total, total_sq, count = 0.0, 0.0, 0
    for batch in loader:
        if not (isinstance(batch, (list, tuple)) and len(batch) == 2
                and all(isinstance(t, torch.Tensor) for t in batch)):
            odd = type(batch).__name__
            break
        x, y = batch
        sizes.append(int(y.shape[0]) if y.dim() else -1)
        shapes.append([int(s) for s in x.shape])
        dtypes.append([str(x.dtype).replace("torch.", ""), str(y.dtype).replace("torch.", "")])
        flat = x.detach().cpu().double().reshape(x.shape[0], -1)
        weights = torch.cos(torch.arange(flat.shape[1], dtype=torch.float64))
        prints.append((flat * weights).sum(1))
        labels.append(y.detach().cpu().reshape(-1).long())
        total += float(flat.sum())
        total_sq += float((flat * flat).sum())
        count += flat.numel()
    out = {"sizes": sizes, "shapes": shapes, "dtypes": dtypes, "odd": odd}
    if prints and odd is None:
        out["prints"] = torch.cat(prints)
        out["labels"] = torch.cat(labels)
        mean = total / max(count, 1)
        out["mean"], out["std"] = mean, math.sqrt(max(total_sq / max(count, 1) - mean * mean, 0.0))
    return out


def dataset_prints(loader):
    """Fingerprints of ``loader.dataset`` in index order (None when it cannot be indexed)."""
    import torch

    try:
        data = loader.dataset
        weights, prints = None, []
        for i in range(len(data)):
            x = data[i][0].detach().cpu().double().reshape(-1)
            if weights is None:
                weights = torch.cos(torch.arange(x.numel(), dtype=torch.float64))
            prints.append((x * weights).sum())
        return torch.stack(prints)
    except Exception:  # noqa: BLE001 - any dataset the student built: no fingerprints then
        return None


def loader_probe(cases, rec):
    for i, c in enumerate(cases["configs"]):
        args = {"num_samples": c["n"], "num_classes": c["classes"], "image_size": c["size"],
                "batch_size": c["batch"], "seed": c["seed"]}
        loader = rec.call(f"make{i}", "make_synthetic_loader", **args)
        if loader is None:
            continue
        other = {**args, "seed": c["seed"] + 1}
        for key, make in (("first", None), ("second", None), ("again", args), ("other", other)):
            try:
                if make is not None:
                    loader = rec.call(f"{key}_make{i}", "make_synthetic_loader", **make)
                    if loader is None:
                        continue
                rec.put(f"{key}{i}", loader_pass(loader))
                if key == "first":
                    rec.put(f"dataset{i}", dataset_prints(loader))
            except Exception as exc:  # noqa: BLE001 - the student's loader broke: data for the verdict
                rec.error(f"{key}{i}", exc)
    default = rec.call("make_default", "make_synthetic_loader")
    if default is not None:
        try:
            rec.put("default", loader_pass(default))
            rec.put("default_len", len(default.dataset))
        except Exception as exc:  # noqa: BLE001
            rec.error("default", exc)


def loader_checked(results, key, call):
    got = results.returned(key, call)
    if not isinstance(got, dict) or "sizes" not in got:
        raise Fail(f"iterating over {call} failed: it should be a DataLoader of (images, labels) batches")
    if got.get("odd"):
        raise Fail(f"a batch of {call} is a {got['odd']}: each batch should be a pair (images, labels)")
    return got


def expect_batches(got, call, n, classes, size, batch):
    sizes = list(got["sizes"])
    want = [batch] * (n // batch) + ([n % batch] if n % batch else [])
    if sizes != want:
        hint = ("keep the last, smaller batch" if sum(sizes) < n else
                f"{n} samples in batches of {batch}")
        raise Fail(f"{call} gave batches of sizes {sizes}: {hint}")
    for shape, (x_dtype, y_dtype) in zip(got["shapes"], got["dtypes"], strict=True):
        if list(shape[1:]) != [3, size, size]:
            raise Fail(f"{call} gave images of shape {tuple(shape)}: each image should be (3, {size}, {size})")
        if x_dtype != "float32":
            raise Fail(f"{call} gave images of dtype {x_dtype}: draw them with torch.randn (float32)")
        if y_dtype != "int64":
            raise Fail(f"{call} gave labels of dtype {y_dtype}: labels should be int64 (what CrossEntropyLoss "
                       f"expects)")
    labels = got["labels"]
    if labels.min() < 0 or labels.max() >= classes:
        raise Fail(f"{call} gave labels from {int(labels.min())} to {int(labels.max())}: with "
                   f"num_classes={classes} they lie in 0 … {classes - 1}")
    if classes * (1 - 1 / classes) ** n < 1e-6 and len(set(labels.tolist())) < classes:
        raise Fail(f"{call}: among {n} labels some of the classes 0 … {classes - 1} never occur: draw the "
                   f"labels uniformly from all num_classes classes")
    if not (abs(got["mean"]) < 0.25 and 0.8 < got["std"] < 1.2):
        raise Fail(f"{call} gave images with mean {got['mean']:.3f} and standard deviation {got['std']:.3f}: "
                   f"draw standard-normal values (torch.randn)")


def same_samples(a, b) -> bool:
    import numpy as np

    return (a["prints"].shape == b["prints"].shape and np.array_equal(a["prints"], b["prints"])
            and np.array_equal(a["labels"], b["labels"]))


def loader_verdict(cases, results):
    import numpy as np

    for i, c in enumerate(cases["configs"]):
        call = (f"make_synthetic_loader(num_samples={c['n']}, num_classes={c['classes']}, image_size={c['size']}, "
                f"batch_size={c['batch']}, seed={c['seed']})")
        results.returned(f"make{i}", call)
        first = loader_checked(results, f"first{i}", call)
        expect_batches(first, call, c["n"], c["classes"], c["size"], c["batch"])
        second = loader_checked(results, f"second{i}", call)
        if not same_samples(first, second):
            raise Fail(f"two passes over the same {call} gave different batches: do not shuffle")
        dataset = results.values.get(f"dataset{i}")
        if isinstance(dataset, np.ndarray) and dataset.shape == first["prints"].shape and not np.array_equal(
                dataset, first["prints"]):
            raise Fail(f"{call} gives the samples in another order than its dataset holds them: do not shuffle")
        results.returned(f"again_make{i}", call + " (called a second time)")
        again = loader_checked(results, f"again{i}", call + " (called a second time)")
        if not same_samples(first, again):
            raise Fail(f"two calls of {call} gave different batches: draw everything from a torch.Generator "
                       f"seeded with seed")
        other_call = call.replace(f"seed={c['seed']})", f"seed={c['seed'] + 1})")
        results.returned(f"other_make{i}", other_call)
        other = loader_checked(results, f"other{i}", other_call)
        if other.get("prints") is not None and np.array_equal(other["prints"], first["prints"]):
            raise Fail(f"{call} and seed={c['seed'] + 1} gave the same images: use the seed argument")
    call = "make_synthetic_loader()"
    results.returned("make_default", call)
    default = loader_checked(results, "default", call)
    expect_batches(default, call, 100, 5, 224, 16)
    length = results.values.get("default_len")
    if length != 100:
        raise Fail(f"{call}: the dataset holds {common.describe(length)} samples; the default is 100")


# =============================================================================== exercise 8: train_one_epoch


def linear_tensors(seed, n, size, classes):
    """Images and the weights of the grader's linear model, as the probe makes them (float32 values)."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    d = 3 * size * size
    x = torch.randn(n, d, generator=gen, dtype=torch.float64).float()
    w = (0.5 * torch.randn(classes, d, generator=gen, dtype=torch.float64)).float()
    b = (0.5 * torch.randn(classes, generator=gen, dtype=torch.float64)).float()
    return x, w, b


def metrics_cases(rng):
    out = []
    for i in range(4):
        batch = rng.randint(2, 5)
        n = batch * rng.randint(1, 3) + rng.randint(1, batch - 1)         # a smaller last batch
        classes, size = rng.randint(2, 6), rng.choice([2, 3, 4])
        while True:
            seed = rng.randint(0, 10**6)
            x, w, b = linear_tensors(seed, n, size, classes)
            logits = x.double() @ w.double().T + b.double()
            top = logits.topk(2, dim=1).values
            if float((top[:, 0] - top[:, 1]).min()) > 1e-3:           # no near-ties: predictions are sure
                break
        predictions = logits.argmax(dim=1).tolist()
        last = list(range(n - n % batch, n))
        while True:
            wrong = {j for j in range(n) if rng.random() < (0.5 if i % 2 else 0.25)}
            overall = (n - len(wrong)) / n
            in_last = sum(j not in wrong for j in last) / len(last)
            if wrong and abs(in_last - overall) > 1e-9:           # the last batch alone would give another answer
                break
        labels = [(p + 1) % classes if j in wrong else p for j, p in enumerate(predictions)]
        out.append({"n": n, "batch": batch, "classes": classes, "size": size, "seed": seed, "labels": labels})
    return out


def standin_device(rec):
    """The device the student's notebook chose (its ``device`` variable), if it is usable here."""
    import torch

    value = rec.ns.get("device")
    try:
        dev = torch.device(value) if isinstance(value, (str, torch.device)) else torch.device("cpu")
    except Exception:  # noqa: BLE001
        return torch.device("cpu")
    if dev.type == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return dev if dev.type in ("cpu", "cuda") else torch.device("cpu")


def metrics_probe(cases, rec):
    import torch
    import torch.nn as nn
    from torch.utils.data import DataLoader, TensorDataset

    class ModeRecordingLinear(nn.Module):
        def __init__(self, features, classes):
            super().__init__()
            self.linear = nn.Linear(features, classes)
            self.modes = []

        def forward(self, x):
            self.modes.append(bool(self.training))
            return self.linear(x.flatten(1))

    dev = standin_device(rec)
    for i, c in enumerate(cases):
        gen = torch.Generator().manual_seed(int(c["seed"]))
        d = 3 * c["size"] * c["size"]
        x = torch.randn(c["n"], d, generator=gen, dtype=torch.float64).float()
        w = (0.5 * torch.randn(c["classes"], d, generator=gen, dtype=torch.float64)).float()
        b = (0.5 * torch.randn(c["classes"], generator=gen, dtype=torch.float64)).float()
        model = ModeRecordingLinear(d, c["classes"])
        with torch.no_grad():
            model.linear.weight.copy_(w)
            model.linear.bias.copy_(b)
        model = model.to(dev).eval()
        images = x.reshape(c["n"], 3, c["size"], c["size"])
        loader = DataLoader(TensorDataset(images, torch.tensor(c["labels"], dtype=torch.int64)),
                            batch_size=c["batch"])
        rec.call(f"r{i}", "train_one_epoch", model, loader, nn.CrossEntropyLoss(),
                 torch.optim.SGD(model.parameters(), lr=0.0))
        rec.put(f"modes{i}", list(model.modes))


def two_floats(value, call):
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise Fail(f"{call} returned {common.describe(value)}: return two Python floats (mean loss, accuracy)")
    for v in value:
        if not isinstance(v, float):
            raise Fail(f"{call} returned {common.describe(value)}: return two Python floats (use .item() or "
                       f"float(...))")
    return value


def metrics_verdict(cases, results):
    import torch
    import torch.nn.functional as F

    for i, c in enumerate(cases):
        batches = math.ceil(c["n"] / c["batch"])
        call = (f"train_one_epoch on the grader's linear model with {c['n']} samples in batches of {c['batch']} "
                f"(SGD with lr=0, so the model never changes)")
        loss, accuracy = two_floats(results.returned(f"r{i}", call), call)
        modes = results.values.get(f"modes{i}")
        if not isinstance(modes, list) or not modes:
            raise Fail(f"{call}: the model was never called")
        if modes[0] is not True:
            raise Fail(f"{call}: the model arrived in eval mode and the forward passes ran in eval mode: call "
                       f"model.train() before the loop")
        if not all(m is True for m in modes):
            raise Fail(f"{call}: some forward passes ran in eval mode: train in train mode and use the "
                       f"predictions made during the epoch")
        if len(modes) != batches:
            raise Fail(f"{call}: the model ran {len(modes)} forward passes for {batches} batches: iterate over the "
                       f"loader once, one forward pass per batch, and use those predictions")
        x, w, b = linear_tensors(c["seed"], c["n"], c["size"], c["classes"])
        labels = torch.tensor(c["labels"])
        logits = x.double() @ w.double().T + b.double()
        expected_loss = float(F.cross_entropy(logits, labels))
        expected_accuracy = float((logits.argmax(1) == labels).double().mean())
        if not common.close(accuracy, expected_accuracy, rel=1e-9, abs_tol=1e-12):
            raise Fail(f"{call} returned accuracy {accuracy:.4f}, which is not right: count the correct "
                       f"predictions over all {c['n']} samples of the epoch and divide by {c['n']}")
        if not common.close(loss, expected_loss, rel=1e-5, abs_tol=1e-6):
            raise Fail(f"{call} returned mean loss {loss:.6f}, which is not right: weight each batch's mean loss "
                       f"by its number of samples and divide by the number of samples (the last batch is smaller)")


def gradient_cases(rng):
    out = []
    for _ in range(3):
        batch = rng.randint(2, 4)
        out.append({"n": batch * rng.randint(2, 3) + rng.randint(0, batch - 1), "batch": batch,
                    "classes": rng.randint(2, 5), "seed": rng.randint(0, 10**6)})
    return out


def gradient_tensors(seed, n, classes):
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(n, 12, generator=gen, dtype=torch.float64).float()
    labels = torch.randint(0, classes, (n,), generator=gen)
    w = (0.5 * torch.randn(classes, 12, generator=gen, dtype=torch.float64)).float()
    b = (0.5 * torch.randn(classes, generator=gen, dtype=torch.float64)).float()
    return x, labels, w, b


def gradient_probe(cases, rec):
    import torch
    import torch.nn as nn
    from torch.utils.data import DataLoader, TensorDataset

    class RecordingSGD(torch.optim.SGD):
        """SGD with lr = 0 that records the gradients each step is asked to apply."""

        def __init__(self, params):
            super().__init__(params, lr=0.0)
            self.recorded = []

        def step(self, closure=None):
            self.recorded.append([None if p.grad is None else p.grad.detach().cpu().clone()
                                  for group in self.param_groups for p in group["params"]])
            return super().step(closure)

    dev = standin_device(rec)
    for i, c in enumerate(cases):
        gen = torch.Generator().manual_seed(int(c["seed"]))
        x = torch.randn(c["n"], 12, generator=gen, dtype=torch.float64).float()
        labels = torch.randint(0, c["classes"], (c["n"],), generator=gen)
        w = (0.5 * torch.randn(c["classes"], 12, generator=gen, dtype=torch.float64)).float()
        b = (0.5 * torch.randn(c["classes"], generator=gen, dtype=torch.float64)).float()
        model = nn.Sequential(nn.Flatten(), nn.Linear(12, c["classes"]))
        with torch.no_grad():
            model[1].weight.copy_(w)
            model[1].bias.copy_(b)
        model = model.to(dev)
        optimizer = RecordingSGD(model.parameters())
        loader = DataLoader(TensorDataset(x.reshape(c["n"], 3, 2, 2), labels), batch_size=c["batch"])
        rec.call(f"r{i}", "train_one_epoch", model, loader, nn.CrossEntropyLoss(), optimizer)
        rec.put(f"steps{i}", optimizer.recorded)


def gradient_verdict(cases, results):
    import numpy as np
    import torch
    import torch.nn.functional as F

    for i, c in enumerate(cases):
        call = f"train_one_epoch with {c['n']} samples in batches of {c['batch']} (a recording SGD with lr=0)"
        results.returned(f"r{i}", call)
        steps = results.values.get(f"steps{i}")
        batches = math.ceil(c["n"] / c["batch"])
        if not isinstance(steps, list) or len(steps) != batches:
            count = len(steps) if isinstance(steps, list) else 0
            raise Fail(f"{call}: the optimizer took {count} steps for {batches} batches: one optimizer.step() per "
                       f"batch")
        x, labels, w, b = gradient_tensors(c["seed"], c["n"], c["classes"])
        for index in range(batches):
            rows = slice(index * c["batch"], (index + 1) * c["batch"])
            weight = w.double().requires_grad_(True)
            bias = b.double().requires_grad_(True)
            loss = F.cross_entropy(x[rows].double() @ weight.T + bias, labels[rows])
            want = torch.autograd.grad(loss, [weight, bias])
            got = steps[index]
            if not isinstance(got, list) or len(got) != 2 or any(g is None for g in got):
                raise Fail(f"{call}: at step {index + 1} the parameters had no gradient: call loss.backward() "
                           f"before optimizer.step()")
            for g, wanted in zip(got, want, strict=True):
                wanted = wanted.numpy()
                if not (isinstance(g, np.ndarray) and g.shape == wanted.shape
                        and np.allclose(g, wanted, rtol=1e-4, atol=1e-6)):
                    raise Fail(f"{call}: the gradient applied at step {index + 1} is not the gradient of batch "
                               f"{index + 1} alone; gradients accumulate across steps: call optimizer.zero_grad() "
                               f"before each backward pass")


# =============================================================================== exercise 8: run_pipeline


def pipeline_trace(rec, cfg):
    """Run the student's run_pipeline on a grader stand-in network and loader, with a grader stand-in
    train_one_epoch; return what happened, epoch by epoch, as plain data."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset

    class StandInNet(nn.Module):
        """The layout of build_model's network, small: `features` (blocks) and `classifier` (head)."""

        def __init__(self, widths, classes):
            super().__init__()
            blocks, c_in = [], 3
            for c in widths:
                blocks.append(nn.Sequential(nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                                            nn.ReLU6()))
                c_in = c
            self.features = nn.Sequential(*blocks)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(c_in, classes))

        def forward(self, x):
            return self.classifier(self.features(x).mean(dim=(2, 3)))

    torch.manual_seed(int(cfg["seed"]))
    model = StandInNet(cfg["widths"], cfg["classes"])
    model.features.requires_grad_(False)
    model = model.to(standin_device(rec))
    named = list(model.named_parameters())
    names = {id(p): n for n, p in named}
    gen = torch.Generator().manual_seed(int(cfg["seed"]))
    images = torch.randn(cfg["n"], 3, cfg["size"], cfg["size"], generator=gen)
    labels = torch.randint(0, cfg["classes"], (cfg["n"],), generator=gen)
    base = DataLoader(TensorDataset(images, labels), batch_size=cfg["batch"])

    created, adds, passes, calls, snapshots = [], [], [], [], []

    def lr_of(group):
        try:
            return float(group.get("lr"))
        except Exception:  # noqa: BLE001
            return None

    def groups_of(optimizer):
        try:
            return [[[names.get(id(p), "?") for p in g["params"]], lr_of(g)] for g in optimizer.param_groups]
        except Exception:  # noqa: BLE001
            return None

    def index_of(optimizer):
        return next((i for i, o in enumerate(created) if o is optimizer), -1)

    def state(optimizer):
        return {"trainable": [n for n, p in named if p.requires_grad],
                "groups": None if optimizer is None else groups_of(optimizer),
                "optimizer": -1 if optimizer is None else index_of(optimizer)}

    class TracingLoader:
        """The grader's DataLoader; notes the state at the first batch of every pass."""

        def __init__(self, loader):
            self.loader, self.dataset, self.batch_size = loader, loader.dataset, loader.batch_size

        def __len__(self):
            return len(self.loader)

        def __iter__(self):       # a generator: nothing runs until a batch is requested
            passes.append(state(created[-1] if created else None))
            snapshots.append({n: p.detach().clone() for n, p in named})
            yield from self.loader

    returns = cfg["returns"]

    def train_one_epoch(model_, loader_, criterion, optimizer):
        """The grader's stand-in: one clean pass over the loader; returns the grader's numbers."""
        info = state(optimizer)
        info["criterion"] = type(criterion).__name__
        info["is_ce"] = isinstance(criterion, nn.CrossEntropyLoss)
        info["model_is_ours"] = model_ is model
        calls.append(info)
        model_.train()
        dev = next(model_.parameters()).device
        for x, y in loader_:
            x, y = x.to(dev), y.to(dev)
            optimizer.zero_grad()
            F.cross_entropy(model_(x), y).backward()
            optimizer.step()
        loss, accuracy = returns[min(len(calls), len(returns)) - 1]
        return float(loss), float(accuracy)

    original = torch.optim.Optimizer.add_param_group

    def add_param_group(self, param_group):
        out = original(self, param_group)
        if index_of(self) < 0:
            created.append(self)
        group = self.param_groups[-1]
        adds.append([index_of(self), type(self).__name__, isinstance(self, torch.optim.Adam),
                     [names.get(id(p), "?") for p in group["params"]], lr_of(group), len(passes)])
        return out

    loader = TracingLoader(base)
    missing = object()
    saved = rec.ns.get("train_one_epoch", missing)
    rec.ns["train_one_epoch"] = train_one_epoch
    torch.optim.Optimizer.add_param_group = add_param_group
    kwargs = {k: cfg[k] for k in ("epochs", "unfreeze_after", "n_unfreeze", "head_lr", "backbone_lr") if k in cfg}
    try:
        history = rec.call(cfg["key"], "run_pipeline", model, loader, **kwargs)
    finally:
        torch.optim.Optimizer.add_param_group = original
        if saved is missing:
            rec.ns.pop("train_one_epoch", None)
        else:
            rec.ns["train_one_epoch"] = saved
    del history
    snapshots.append({n: p.detach().clone() for n, p in named})
    for i, info in enumerate(passes):
        info["moved"] = [n for n, _ in named if not torch.equal(snapshots[i][n], snapshots[i + 1][n])]
    return {"passes": passes, "calls": calls, "adds": adds, "optimizers": len(created),
            "sizes": {n: int(p.numel()) for n, p in named},
            "training_after": [n or "model" for n, m in model.named_modules() if m.training]}


def pipeline_probe(cases, rec):
    for i, cfg in enumerate(cases):
        try:
            trace = pipeline_trace(rec, {**cfg, "key": f"h{i}"})
        except Exception as exc:  # noqa: BLE001
            rec.error(f"t{i}", exc)
            continue
        rec.put(f"t{i}", trace)


DEFAULTS = {"epochs": 3, "unfreeze_after": 1, "n_unfreeze": 2, "head_lr": 1e-3, "backbone_lr": 1e-4}


def pipeline_config(rng, epochs, unfreeze_after, n_unfreeze, defaults=False, lrs=True):
    blocks = rng.randint(max(4, n_unfreeze + 1), 6)
    batch = rng.randint(2, 4)
    cfg = {"widths": [rng.choice([4, 6, 8]) for _ in range(blocks)], "classes": rng.randint(2, 7),
           "size": rng.choice([8, 12, 16]), "batch": batch, "n": batch + rng.randint(1, batch),
           "seed": rng.randint(0, 10**6)}
    run = dict(DEFAULTS) if defaults else {"epochs": epochs, "unfreeze_after": unfreeze_after,
                                           "n_unfreeze": n_unfreeze}
    if not defaults:
        if lrs:
            run["head_lr"] = rng.choice([5e-4, 1e-3, 2e-3, 3e-3])
            run["backbone_lr"] = run["head_lr"] / rng.choice([4, 10, 20, 50])
        cfg.update(run)
    cfg["run"] = {**DEFAULTS, **run}
    cfg["returns"] = [[round(rng.uniform(0.2, 3.0), 6), rng.randint(0, 16) / 16] for _ in range(cfg["run"]["epochs"])]
    return cfg


def pipeline_cases(rng):
    return [
        pipeline_config(rng, 3, 1, 2, defaults=True),
        pipeline_config(rng, 3, 2, rng.randint(1, 3)),
        pipeline_config(rng, 2, 0, rng.randint(1, 3)),                   # unfreeze before the first epoch
        pipeline_config(rng, 2, rng.choice([2, 3]), 2),                  # never unfreezes
        pipeline_config(rng, 3, 1, 0),                                   # nothing to unfreeze
        pipeline_config(rng, 3, 1, rng.randint(1, 3), lrs=False),
    ]


def part(name: str) -> str:
    """'head' for the classifier's parameters, 'block i' for those of model.features[i]."""
    bits = str(name).split(".")
    if bits[0] == "features" and len(bits) > 1:
        return f"block {bits[1]}"
    return "head"


def parts(names) -> list[str]:
    found = {part(n) for n in names}
    return sorted(found, key=lambda p: (p != "head", int(p.split()[1]) if p != "head" else -1))


def describe_run(cfg) -> str:
    r = cfg["run"]
    shown = ", ".join(f"{k}={r[k]:g}" for k in DEFAULTS if k in cfg) or "the default arguments"
    return f"run_pipeline({shown}) on the grader's {len(cfg['widths'])}-block network"


def trace_of(results, i, cfg):
    call = describe_run(cfg)
    results.returned(f"h{i}", call)
    trace = results.returned(f"t{i}", call)
    if not isinstance(trace, dict) or "passes" not in trace:
        raise Fail(f"{call}: the grader could not follow the run")
    epochs = cfg["run"]["epochs"]
    if len(trace["passes"]) != epochs:
        raise Fail(f"{call} went over the loader {len(trace['passes'])} times: train with train_one_epoch once "
                   f"per epoch (epochs={epochs})")
    return call, trace


def per_epoch_groups(trace, epochs):
    """The optimizer groups during each epoch: those train_one_epoch was given, else the newest optimizer's."""
    if len(trace["calls"]) == epochs:
        return [c["groups"] for c in trace["calls"]]
    return [p["groups"] for p in trace["passes"]]


def expected_trainable(cfg, sizes, epoch):
    r = cfg["run"]
    blocks = len(cfg["widths"])
    unfrozen = set()
    if epoch >= r["unfreeze_after"] and r["n_unfreeze"] > 0:
        unfrozen = {f"block {b}" for b in range(blocks - r["n_unfreeze"], blocks)}
    return {n for n in sizes if part(n) == "head" or part(n) in unfrozen}


def blocks_verdict(cases, results):
    for i, cfg in enumerate(cases):
        call, trace = trace_of(results, i, cfg)
        r, sizes = cfg["run"], trace["sizes"]
        groups = per_epoch_groups(trace, r["epochs"])
        rule = (f"before epoch unfreeze_after + 1 = {r['unfreeze_after'] + 1} only the head trains; from then on "
                f"the head and the last n_unfreeze = {r['n_unfreeze']} blocks of model.features")
        for epoch, info in enumerate(trace["passes"]):
            want = expected_trainable(cfg, sizes, epoch)
            got = set(info["trainable"])
            if got != want:
                raise Fail(f"{call}: during epoch {epoch + 1} the trainable parts (requires_grad=True) were "
                           f"{parts(got) or 'none'}: {rule}")
            moved = set(info["moved"])
            if moved - want:
                raise Fail(f"{call}: during epoch {epoch + 1} {parts(moved - want)} changed although they must "
                           f"stay frozen (bit-identical)")
            held = {n for g in (groups[epoch] or []) for n in g[0]}
            still = (want & held) - moved
            if still:
                raise Fail(f"{call}: during epoch {epoch + 1} {parts(still)} did not change although they are "
                           f"trainable and in the optimizer")


def optimizer_verdict(cases, results):
    for i, cfg in enumerate(cases):
        call, trace = trace_of(results, i, cfg)
        r, sizes = cfg["run"], trace["sizes"]
        head = {n for n in sizes if part(n) == "head"}
        if trace["optimizers"] == 0:
            raise Fail(f"{call}: no torch optimizer was created: create torch.optim.Adam over the head")
        if trace["optimizers"] > 1:
            raise Fail(f"{call}: {trace['optimizers']} optimizers were created: keep one and add the new group "
                       f"to it with optimizer.add_param_group (a new optimizer loses Adam's statistics)")
        first = trace["adds"][0]
        if not first[2]:
            raise Fail(f"{call}: the optimizer is a {first[1]}; the text asks for torch.optim.Adam")
        if set(first[3]) != head or not common.close(first[4] or 0.0, r["head_lr"], rel=1e-12):
            raise Fail(f"{call}: the optimizer should start with one group holding exactly the head's "
                       f"parameters at lr=head_lr; its first group held {parts(first[3]) or 'nothing'} at "
                       f"lr={first[4]}")
        for c in trace["calls"]:
            if not c["is_ce"]:
                raise Fail(f"{call}: train_one_epoch got a {c['criterion']} as criterion: create "
                           f"nn.CrossEntropyLoss()")
            if c["optimizer"] != 0:
                raise Fail(f"{call}: train_one_epoch got another optimizer than the one created: pass the "
                           f"same optimizer every epoch")
        groups = per_epoch_groups(trace, r["epochs"])
        blocks = len(cfg["widths"])
        last = ({n for n in sizes if part(n) in {f"block {b}" for b in range(blocks - r["n_unfreeze"], blocks)}}
                if r["n_unfreeze"] > 0 else set())
        for epoch, info in enumerate(trace["passes"]):
            g = groups[epoch]
            if not g:
                raise Fail(f"{call}: during epoch {epoch + 1} the optimizer could not be read")
            unfrozen = set(info["trainable"]) - head
            if len(g) > 2:
                raise Fail(f"{call}: during epoch {epoch + 1} the optimizer had {len(g)} groups: add the unfrozen "
                           f"blocks as ONE new group, once")
            if set(g[0][0]) != head or not common.close(g[0][1] or 0.0, r["head_lr"], rel=1e-12):
                raise Fail(f"{call}: during epoch {epoch + 1} the first group is no longer the head at head_lr")
            if len(g) == 1:
                if unfrozen:
                    raise Fail(f"{call}: during epoch {epoch + 1} {parts(unfrozen)} had requires_grad=True but are "
                               f"not in the optimizer, so they cannot train: add exactly their parameters with "
                               f"optimizer.add_param_group")
                continue
            new = set(g[1][0])
            if not new:
                raise Fail(f"{call}: an empty group was added: when nothing is unfrozen, add no group")
            # which blocks are unfrozen, and when, is judged by the blocks cell: here the group must hold
            # exactly the parameters that were unfrozen (or those the text names: the last n_unfreeze blocks)
            if new != unfrozen and new != last:
                raise Fail(f"{call}: during epoch {epoch + 1} the new group held {parts(new)} while the unfrozen "
                           f"(trainable) blocks were {parts(unfrozen) or 'none'}: add exactly the parameters of the "
                           f"blocks you unfreeze")
            if not common.close(g[1][1] or 0.0, r["backbone_lr"], rel=1e-12):
                raise Fail(f"{call}: the unfrozen blocks train at lr={g[1][1]}, not at backbone_lr: pass "
                           f'"lr": backbone_lr in the new group')


def history_verdict(cases, results):
    for i, cfg in enumerate(cases):
        call, trace = trace_of(results, i, cfg)
        r, sizes = cfg["run"], trace["sizes"]
        history = results.returned(f"h{i}", call)
        epochs = r["epochs"]
        if not isinstance(history, list) or len(history) != epochs:
            raise Fail(f"{call} returned {common.describe(history)}: return a list with one dictionary per "
                       f"epoch ({epochs})")
        groups = per_epoch_groups(trace, epochs)
        ours = len(trace["calls"]) == epochs
        for epoch, row in enumerate(history):
            where = f"{call}: history[{epoch}]"
            if not isinstance(row, dict):
                raise Fail(f"{where} is {common.describe(row)}: each entry should be a dictionary")
            missing = {"epoch", "loss", "accuracy", "trainable_params", "lrs"} - set(row)
            if missing:
                raise Fail(f"{where} lacks the keys {sorted(missing)}")
            if row["epoch"] != epoch + 1 or isinstance(row["epoch"], bool):
                raise Fail(f"{where}['epoch'] is {common.describe(row['epoch'])}: epochs are numbered from 1")
            loss = common.number(row["loss"], f"{where}['loss']")
            accuracy = common.number(row["accuracy"], f"{where}['accuracy']")
            if ours:
                want_loss, want_accuracy = cfg["returns"][epoch]
                if not (common.close(loss, want_loss, rel=1e-9) and common.close(accuracy, want_accuracy, rel=1e-9,
                                                                                  abs_tol=1e-12)):
                    raise Fail(f"{where} reports loss {loss:.6g} and accuracy {accuracy:.6g}, but train_one_epoch "
                               f"returned other values for that epoch: report what train_one_epoch returned")
            elif not (math.isfinite(loss) and 0.0 <= accuracy <= 1.0):
                raise Fail(f"{where} reports loss {loss} and accuracy {accuracy}")
            count = common.integer(row["trainable_params"], f"{where}['trainable_params']")
            want = sum(sizes[n] for n in trace["passes"][epoch]["trainable"])
            if count != want:
                raise Fail(f"{where}['trainable_params'] is {count:,}, but the model had another number of "
                           f"trainable scalar parameters (requires_grad=True) during that epoch: sum p.numel()")
            lrs = row["lrs"]
            g = groups[epoch] or []
            if not (isinstance(lrs, (list, tuple)) and len(lrs) == len(g)
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) and common.close(float(v), group[1])
                            for v, group in zip(lrs, g, strict=False) if group[1] is not None)):
                raise Fail(f"{where}['lrs'] is {common.describe(lrs)}, but the optimizer had {len(g)} group(s) "
                           f"during that epoch: list optimizer.param_groups' learning rates, in order")
        if trace["training_after"]:
            raise Fail(f"{call}: the model is still in train mode after run_pipeline ({trace['training_after'][0]}): "
                       f"call model.eval() before returning")


PIPELINE_HELPERS = (standin_device, pipeline_trace)

CHECKS = [
    Check("ex7_test_mv1_params", mv1_cases, mv1_probe, mv1_verdict),
    Check("ex7_test_mv2_params", mv2_cases, mv2_probe, mv2_verdict),
    Check("ex7_test_mv2_torchvision", torchvision_cases, torchvision_probe, torchvision_verdict),
    Check("ex7_test_answers_32", answers_cases, answers_probe, answers_verdict),
    Check("ex7_test_identity_skip", skip_cases, skip_probe, skip_verdict),
    Check("ex8_test_loader", loader_cases, loader_probe, loader_verdict,
          helpers=(loader_pass, dataset_prints)),
    Check("ex8_test_epoch_metrics", metrics_cases, metrics_probe, metrics_verdict, helpers=(standin_device,)),
    Check("ex8_test_no_grad_accumulation", gradient_cases, gradient_probe, gradient_verdict,
          helpers=(standin_device,)),
    Check("ex8_test_pipeline_blocks", pipeline_cases, pipeline_probe, blocks_verdict, helpers=PIPELINE_HELPERS),
    Check("ex8_test_pipeline_optimizer", pipeline_cases, pipeline_probe, optimizer_verdict, helpers=PIPELINE_HELPERS),
    Check("ex8_test_pipeline_history", pipeline_cases, pipeline_probe, history_verdict, helpers=PIPELINE_HELPERS),
]
