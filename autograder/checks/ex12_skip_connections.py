"""Hidden checks of exercises 1-2 (skip connections).

Exercise 1: the two functions on grader-chosen depths, delta values and block sizes; the worked example
passes when each value is the true answer or what the student's own function returns.

Exercise 2: every check tests one class or function. ResidualBlock's branch is judged with the shortcut
swapped for a stand-in that adds 0; the skip path with a stand-in shortcut of known output and the branch
switched off (its BatchNorm scales set to 0); the shortcut on its own. MiniResNet is built with a grader
stand-in for ResidualBlock (same signature, known output: one 1x1 conv and a ReLU); when the student's
MiniResNet does not pick the stand-in up, its own blocks are used and judged only by what goes in and
comes out. count_parameters sees only modules the grader builds. The worked example (shapes and count)
passes with the true values or with what the student's own MiniResNet and count_parameters give."""
from __future__ import annotations

import contextlib

from ..probes import Check, Fail
from . import common, kernel


# -- exercise 1: gradient fractions --------------------------------------------------------------
def plain_expected(delta: float, num_layers: int) -> float:
    # layers 2..L lie between a_1 and a_L: one factor delta each
    fraction = 1.0
    for _ in range(2, num_layers + 1):
        fraction *= delta
    return fraction


def residual_expected(delta: float, num_layers: int, block_size: int) -> float:
    # walk back from a_L: each block above block 1 has Jacobian 1 + delta**b (skip + branch);
    # inside block 1 only layers 2..b separate a_1 from the block output (its skip carries a_0)
    fraction = 1.0
    for _ in range(num_layers // block_size - 1):
        fraction *= 1 + delta ** block_size
    for _ in range(block_size - 1):
        fraction *= delta
    return fraction


def plain_cases(rng):
    return [[round(rng.uniform(0.05, 1.5), 4), rng.randint(1, 80)] for _ in range(12)]


def plain_probe(cases, rec):
    for i, (delta, num_layers) in enumerate(cases):
        rec.call(i, "plain_gradient_fraction", delta, num_layers)


def plain_verdict(cases, results):
    for i, (delta, num_layers) in enumerate(cases):
        call = f"plain_gradient_fraction({delta}, {num_layers})"
        common.expect_number(results, i, plain_expected(delta, num_layers), call,
                             "count the layers that lie between the output of layer 1 and the network output")


def residual_cases(rng):
    valid = []
    for _ in range(10):
        block_size = rng.randint(1, 5)
        valid.append([round(rng.uniform(0.05, 1.2), 4), block_size * rng.randint(1, 12), block_size])
    block_size = rng.randint(2, 6)
    valid.append([round(rng.uniform(0.1, 0.9), 4), block_size, block_size])     # one block around everything
    invalid = []
    for _ in range(2):
        block_size = rng.randint(2, 5)
        invalid.append([0.5, block_size * rng.randint(1, 6) + rng.randint(1, block_size - 1), block_size])
    invalid += [[0.5, 0, rng.randint(1, 4)], [0.5, rng.randint(1, 8), 0]]
    default = [[round(rng.uniform(0.05, 1.2), 4), 2 * rng.randint(1, 12)] for _ in range(3)]
    return {"valid": valid, "invalid": invalid, "default": default}


def residual_probe(cases, rec):
    for i, (delta, num_layers, block_size) in enumerate(cases["valid"]):
        rec.call(f"v{i}", "residual_gradient_fraction", delta, num_layers, block_size=block_size)
    for i, (delta, num_layers, block_size) in enumerate(cases["invalid"]):
        rec.call(f"x{i}", "residual_gradient_fraction", delta, num_layers, block_size=block_size)
    for i, (delta, num_layers) in enumerate(cases.get("default", [])):
        rec.call(f"d{i}", "residual_gradient_fraction", delta, num_layers)


def residual_verdict(cases, results):
    for i, (delta, num_layers, block_size) in enumerate(cases["valid"]):
        call = f"residual_gradient_fraction({delta}, {num_layers}, block_size={block_size})"
        hint = ("with a single block around the whole stack the skip carries a_0, so layer 1 gets no help"
                if num_layers == block_size else
                "walk back block by block; the skip of block 1 carries a_0, not a_1")
        common.expect_number(results, f"v{i}", residual_expected(delta, num_layers, block_size), call, hint)
    for i, (delta, num_layers, block_size) in enumerate(cases["invalid"]):
        call = f"residual_gradient_fraction({delta}, {num_layers}, block_size={block_size})"
        why = (f"{num_layers} layers cannot be split into blocks of {block_size}" if min(num_layers, block_size) >= 1
               else "num_layers and block_size must both be at least 1")
        common.expect_raises(results, f"x{i}", "ValueError", call, why)
    for i, (delta, num_layers) in enumerate(cases.get("default", [])):
        call = f"residual_gradient_fraction({delta}, {num_layers})"
        common.expect_number(results, f"d{i}", residual_expected(delta, num_layers, 2), call,
                             "without block_size the blocks have the default size 2")


def worked_cases(rng):
    return {}


def worked_probe(cases, rec):
    for name in ("plain_6", "residual_6"):
        if name in rec.ns:
            rec.put(name, rec.ns[name])
    rec.call("plain_fn", "plain_gradient_fraction", 0.7, 6)
    rec.call("residual_fn", "residual_gradient_fraction", 0.7, 6, block_size=2)


def worked_verdict(cases, results):
    # A wrong function is charged to its own test: the worked example passes when each value is the
    # true answer or what the student's own function returns (the text says so).
    for name, fn_key, expected, call in (
            ("plain_6", "plain_fn", plain_expected(0.7, 6), "plain_gradient_fraction(0.7, 6)"),
            ("residual_6", "residual_fn", residual_expected(0.7, 6, 2),
             "residual_gradient_fraction(0.7, 6, block_size=2)")):
        if name not in results:
            raise Fail(f"define {name} in the worked-example cell")
        got = common.number(results.returned(name, name), name)
        own = results.values.get(fn_key)
        if common.close(got, expected) or (isinstance(own, (int, float)) and not isinstance(own, bool)
                                           and common.close(got, float(own))):
            continue
        raise Fail(f"{name} is {got:.6g}: it should be {call}, computed with your function")


# -- exercise 2: a mini ResNet ---------------------------------------------------------------------
# Kernel-side helpers (shipped into the student's kernel as source): grader stand-ins with known
# behaviour, and the seeded input. The stand-ins are not the exercise's answer: a shortcut that adds 0,
# a shortcut that is x or a seeded strided 1x1 conv, and a "block" that is one 1x1 conv and a ReLU.
def ex2_stand_ins():
    """(AddsNothing, KnownShortcut, GraderBlock): modules whose output the grader can predict."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class AddsNothing(nn.Module):
        """Stand-in shortcut that adds 0 (zeros of the branch's shape): the block returns relu(branch)."""

        def __init__(self, shape):
            super().__init__()
            self.shape = [int(s) for s in shape]

        def forward(self, x):
            return x.new_zeros([x.shape[0]] + self.shape[1:])

    class KnownShortcut(nn.Module):
        """Stand-in shortcut: x itself, or a seeded 1x1 conv with the block's stride (no BatchNorm)."""

        def __init__(self, in_ch, out_ch, stride, project):
            super().__init__()
            self.stride = int(stride)
            self.project = bool(project)
            if self.project:
                self.weight = nn.Parameter(torch.zeros(int(out_ch), int(in_ch), 1, 1))

        def forward(self, x):
            if not self.project:
                return x
            return F.conv2d(x, self.weight, stride=self.stride)

    class GraderBlock(nn.Module):
        """Stand-in for ResidualBlock with its signature: relu(1x1 conv with stride), seeded weights."""

        def __init__(self, in_ch, out_ch, stride=1):
            super().__init__()
            self.args = [int(in_ch), int(out_ch), int(stride)]
            self.weight = nn.Parameter(torch.zeros(int(out_ch), int(in_ch), 1, 1))

        def forward(self, x):
            return torch.relu(F.conv2d(x, self.weight, stride=self.args[2]))

    return AddsNothing, KnownShortcut, GraderBlock


def ex2_exact():
    """Switch TF32 off while a probe runs (CUDA convs then match float32 math); returns the old flags."""
    import torch

    flags = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    return flags


def ex2_restore(flags):
    import torch

    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags


def ex2_input(shape, seed, module):
    """A seeded float32 input on the device of ``module``'s parameters (regenerated by the grader)."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(tuple(shape), generator=gen, dtype=torch.float64).float()
    device = next(iter(module.parameters()), torch.empty(0)).device
    return x.to(device)


# Grader side: reading module tables and recomputing layers functionally (float64).
def grader_input(shape, seed):
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(tuple(shape), generator=gen, dtype=torch.float64).float().double()


def rows_of(modules) -> list[dict]:
    """module_table rows as dicts; anything malformed is a Fail (the probe's data was not usable)."""
    out = []
    if not isinstance(modules, list):
        raise Fail("the module's description could not be read")
    for row in modules:
        if not (isinstance(row, list) and len(row) == 5 and isinstance(row[0], str) and isinstance(row[3], dict)
                and isinstance(row[4], dict)):
            raise Fail("the module's description could not be read")
        out.append({"name": row[0], "type": str(row[1]), "base": str(row[2]), "config": row[3], "own": row[4]})
    return out


def under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def with_params(rows, skip=()) -> list[dict]:
    return [r for r in rows if r["own"] and not under(r["name"], skip)]


def call_order(calls) -> dict[str, int]:
    order: dict[str, int] = {}
    for i, call in enumerate(calls if isinstance(calls, list) else []):
        if isinstance(call, list) and call and isinstance(call[0], str):
            order.setdefault(call[0], i)
    return order


def by_call_order(rows, calls) -> list[dict]:
    order = call_order(calls)
    return sorted(rows, key=lambda r: order.get(r["name"], len(order) + 1))


def pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def padding_of(cfg) -> tuple:
    """A conv's padding as numbers: "valid" is 0, and "same" (odd kernel, no dilation) is kernel // 2."""
    padding = cfg.get("padding", 0)
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        kernel = pair(cfg.get("kernel_size"))
        if all(isinstance(k, int) and k % 2 == 1 for k in kernel) and pair(cfg.get("dilation", 1)) == (1, 1):
            return tuple(k // 2 for k in kernel)
    return pair(padding)


def tensor(values, name):
    import torch

    if name not in values:
        raise Fail(f"the parameter {name} was not in the module's table")
    return values[name].to(torch.float64)


def conv_of(x, values, row):
    import torch.nn.functional as F

    c, n = row["config"], row["name"]
    bias = tensor(values, f"{n}.bias") if c.get("bias") else None
    return F.conv2d(x, tensor(values, f"{n}.weight"), bias, stride=pair(c.get("stride", 1)),
                    padding=padding_of(c), dilation=pair(c.get("dilation", 1)),
                    groups=int(c.get("groups", 1)))


def bn_of(x, values, row):
    import torch.nn.functional as F

    n = row["name"]
    return F.batch_norm(x, tensor(values, f"{n}.running_mean"), tensor(values, f"{n}.running_var"),
                        tensor(values, f"{n}.weight"), tensor(values, f"{n}.bias"), training=False,
                        eps=float(row["config"].get("eps", 1e-5)))


def linear_of(x, values, row):
    import torch.nn.functional as F

    n = row["name"]
    bias = tensor(values, f"{n}.bias") if row["config"].get("bias") else None
    return F.linear(x, tensor(values, f"{n}.weight"), bias)


def as_array(value, what: str):
    import numpy as np

    if not isinstance(value, np.ndarray):
        raise Fail(f"{what} should return a tensor, got {common.describe(value)}")
    return value.astype(np.float64)


def agree(got, expected, tol: float = 5e-3) -> bool:
    """Same shape and values, relative to the tensor's scale (float32 and TF32 on CUDA stay far inside)."""
    import numpy as np

    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape or not np.all(np.isfinite(got)):
        return False
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    return bool(np.abs(got - expected).max() <= tol * scale + 1e-6) if got.size else True


def side_after(size: int, stride: int) -> int:
    return (size + 2 - 3) // stride + 1


def block_configs(rng, count, strides=(1, 2)):
    """(in_ch, out_ch, stride) covering all four kinds: same/other channels x stride 1/other."""
    c, a, b = rng.randint(2, 20), rng.randint(1, 20), rng.randint(1, 20)
    while b == a:
        b = rng.randint(1, 20)
    out = [[c, c, 1], [c, c, rng.choice(strides[1:])], [a, b, 1], [b, a, rng.choice(strides[1:])]]
    while len(out) < count:
        i = rng.randint(1, 24)
        o = i if rng.random() < 0.4 else rng.randint(1, 24)
        out.append([i, o, rng.choice(strides)])
    rng.shuffle(out)
    return out


# ex2_test_residual_block: the branch, with the shortcut swapped for a stand-in that adds 0 ----------
def block_cases(rng):
    cases = []
    for i, o, s in block_configs(rng, 7):
        size = rng.randint(5, 17)
        # the stand-in shortcut returns zeros of the shape the branch must have
        cases.append([i, o, s, size, rng.randint(0, 2**31), [2, o, side_after(size, s), side_after(size, s)]])
    return cases


def block_probe(cases, rec):
    AddsNothing, _, _ = ex2_stand_ins()
    import torch

    flags = ex2_exact()
    try:
        for i, (in_ch, out_ch, stride, size, seed, branch_shape) in enumerate(cases):
            try:
                block = rec.lookup("ResidualBlock")(in_ch, out_ch, stride=stride)
                block.shortcut = AddsNothing(branch_shape)
                block.eval()
                table = fill_module(block, seed)  # noqa: F821 - a helper pasted beside the probe
                x = ex2_input((2, in_ch, size, size), seed + 1, block)
                with torch.no_grad():
                    out, calls = run_traced(block, x)  # noqa: F821 - a helper pasted beside the probe
                rec.put(i, {"table": table, "modules": module_table(block), "calls": calls, "out": out})  # noqa: F821 - a helper pasted beside the probe
            except Exception as exc:  # noqa: BLE001 - the student's exception is data for the verdict
                rec.error(i, exc)
    finally:
        ex2_restore(flags)


def block_verdict(cases, results):
    import numpy as np
    import torch

    for i, (in_ch, out_ch, stride, size, seed, _) in enumerate(cases):
        where = f"ResidualBlock({in_ch}, {out_ch}, stride={stride})"
        call = f"{where} (its shortcut swapped for a stand-in that adds 0) on a (2, {in_ch}, {size}, {size}) batch"
        record = results.returned(i, call)
        if not isinstance(record, dict):
            raise Fail(f"{call}: the result could not be read")
        got = as_array(record.get("out"), where)
        side = side_after(size, stride)
        if got.shape != (2, out_ch, side, side):
            raise Fail(f"{call} returned shape {tuple(got.shape)}: the branch should turn {size}x{size} into "
                       f"{side}x{side} (3x3 conv, padding 1, stride {stride}) with {out_ch} channels")
        rows = rows_of(record.get("modules"))
        layers = with_params(rows, skip=("shortcut",))
        others = [r for r in layers if r["base"] not in ("Conv2d", "BatchNorm2d")]
        if others:
            raise Fail(f"{where}: the residual branch (everything outside .shortcut) should hold only two "
                       f"Conv2d and two BatchNorm2d with parameters; found {others[0]['type']} ({others[0]['name']})")
        calls = record.get("calls")
        convs = by_call_order([r for r in layers if r["base"] == "Conv2d"], calls)
        norms = by_call_order([r for r in layers if r["base"] == "BatchNorm2d"], calls)
        if len(convs) != 2:
            raise Fail(f"{where}: the residual branch (everything outside .shortcut) should hold exactly two "
                       f"nn.Conv2d, found {len(convs)}")
        for name, conv, c_in, c_stride in (("first", convs[0], in_ch, stride), ("second", convs[1], out_ch, 1)):
            cfg = conv["config"]
            if (cfg.get("in_channels"), cfg.get("out_channels")) != (c_in, out_ch):
                raise Fail(f"{where}: the {name} 3x3 conv (in the order forward calls them) should map "
                           f"{c_in} -> {out_ch} channels, got {cfg.get('in_channels')} -> {cfg.get('out_channels')}")
            if pair(cfg.get("kernel_size")) != (3, 3) or padding_of(cfg) != (1, 1):
                raise Fail(f"{where}: the {name} branch conv should be 3x3 with padding=1, got kernel "
                           f"{cfg.get('kernel_size')}, padding {cfg.get('padding')}")
            if pair(cfg.get("stride")) != (c_stride, c_stride):
                raise Fail(f"{where}: the {name} branch conv should have stride {c_stride}, got "
                           f"{cfg.get('stride')}: only the first conv of the branch downsamples")
            if pair(cfg.get("dilation", 1)) != (1, 1) or cfg.get("groups", 1) != 1:
                raise Fail(f"{where}: the {name} branch conv should be a plain 3x3 conv (no dilation, no groups)")
            if cfg.get("bias"):
                raise Fail(f"{where}: the {name} branch conv has a bias; use bias=False, the BatchNorm after it "
                           f"has its own shift")
        if [r["config"].get("num_features") for r in norms] != [out_ch, out_ch]:
            raise Fail(f"{where}: the branch should have two BatchNorm2d({out_ch}), found "
                       f"{[r['config'].get('num_features') for r in norms]}")
        values = common.filled_values(record.get("table"), seed)
        x = grader_input((2, in_ch, size, size), seed + 1)
        relu = torch.relu

        def branch(mid=relu, first=(0, 0), second=(1, 1), x=x, values=values, convs=convs, norms=norms):
            h = mid(bn_of(conv_of(x, values, convs[first[0]]), values, norms[first[1]]))
            return bn_of(conv_of(h, values, convs[second[0]]), values, norms[second[1]])

        expected = branch()
        accepted = [relu(expected)]
        if in_ch == out_ch and stride == 1:   # a forward that adds x itself for an identity shortcut
            accepted.append(relu(expected + x))
        if any(agree(np.maximum(got, 0), a.numpy()) for a in accepted):
            continue
        hint = "check the order 3x3 conv -> BatchNorm -> ReLU -> 3x3 conv -> BatchNorm"
        if agree(np.maximum(got, 0), relu(branch(mid=lambda h: h)).numpy()):
            hint = "is there a ReLU between the first BatchNorm and the second conv?"
        elif agree(np.maximum(got, 0), relu(branch(first=(0, 1), second=(1, 0))).numpy()):
            hint = "each conv should be followed by its own BatchNorm, in the order forward calls them"
        raise Fail(f"{call} returned values that do not match relu(bn2(conv2(relu(bn1(conv1(x)))))) for the "
                   f"block's own layers (filled with seeded values, eval mode): {hint}")


# ex2_test_shortcut: the student's own shortcut, by what it computes ---------------------------------
def shortcut_cases(rng):
    return [[i, o, s, rng.randint(4, 15), rng.randint(0, 2**31)] for i, o, s in block_configs(rng, 10, (1, 2, 3))]


def shortcut_probe(cases, rec):
    import torch
    import torch.nn as nn

    flags = ex2_exact()
    try:
        for i, (in_ch, out_ch, stride, size, seed) in enumerate(cases):
            try:
                block = rec.lookup("ResidualBlock")(in_ch, out_ch, stride=stride)
                shortcut = block.shortcut
                if not isinstance(shortcut, nn.Module):
                    rec.put(i, {"type": type(shortcut).__name__})
                    continue
                shortcut.eval()
                table = fill_module(shortcut, seed)  # noqa: F821 - a helper pasted beside the probe
                x = ex2_input((2, in_ch, size, size), seed + 1, block)
                with torch.no_grad():
                    out = shortcut(x)
                rec.put(i, {"type": type(shortcut).__name__, "table": table, "modules": module_table(shortcut),  # noqa: F821 - a helper pasted beside the probe
                            "out": out})
            except Exception as exc:  # noqa: BLE001
                rec.error(i, exc)
    finally:
        ex2_restore(flags)


def shortcut_verdict(cases, results):
    for i, (in_ch, out_ch, stride, size, seed) in enumerate(cases):
        where = f"ResidualBlock({in_ch}, {out_ch}, stride={stride})"
        record = results.returned(i, f"{where}.shortcut")
        if not isinstance(record, dict):
            raise Fail(f"{where}.shortcut: the result could not be read")
        if "modules" not in record:
            raise Fail(f"{where}.shortcut should be an nn.Module (nn.Identity() or the projection), "
                       f"got a {record.get('type')}")
        rows = rows_of(record["modules"])
        layers = with_params(rows)
        count = sum(int(np_prod(shape)) for r in layers for shape in r["own"].values())
        got = as_array(record.get("out"), f"{where}.shortcut")
        x = grader_input((2, in_ch, size, size), seed + 1)
        if in_ch == out_ch and stride == 1:
            if layers or not agree(got, x.numpy(), tol=1e-6):
                raise Fail(f"{where}: input and output shapes match, so the shortcut should be nn.Identity() "
                           f"(no parameters, returns x unchanged); got {record.get('type')} with {count} parameters")
            continue
        why = ("the channel count changes" if in_ch != out_ch else f"stride {stride} changes the resolution")
        if not layers:
            raise Fail(f"{where}: {why}, so the shortcut must be the projection nn.Sequential(1x1 Conv2d, "
                       f"BatchNorm2d); got {record.get('type')} without parameters")
        convs = [r for r in layers if r["base"] == "Conv2d"]
        norms = [r for r in layers if r["base"] == "BatchNorm2d"]
        if len(convs) != 1 or len(norms) != 1 or len(layers) != 2:
            raise Fail(f"{where}: the projection shortcut should hold one 1x1 Conv2d and one BatchNorm2d, found "
                       f"{[r['type'] for r in layers]}")
        cfg = convs[0]["config"]
        channels = (cfg.get("in_channels"), cfg.get("out_channels"))
        if pair(cfg.get("kernel_size")) != (1, 1) or channels != (in_ch, out_ch):
            raise Fail(f"{where}: the projection should be a 1x1 Conv2d mapping {in_ch} -> {out_ch} channels, got "
                       f"kernel {cfg.get('kernel_size')}, {cfg.get('in_channels')} -> {cfg.get('out_channels')}")
        if pair(cfg.get("stride")) != (stride, stride):
            raise Fail(f"{where}: the projection must use the block's stride {stride} so the skip matches the "
                       f"branch's resolution; got stride {cfg.get('stride')}")
        if padding_of(cfg) != (0, 0) or pair(cfg.get("dilation", 1)) != (1, 1) or cfg.get("groups", 1) != 1:
            raise Fail(f"{where}: the projection should be a plain 1x1 conv (no padding, dilation or groups)")
        if cfg.get("bias"):
            raise Fail(f"{where}: the projection conv should have bias=False (the BatchNorm after it shifts)")
        if norms[0]["config"].get("num_features") != out_ch:
            raise Fail(f"{where}: the projection should end with BatchNorm2d({out_ch}), got "
                       f"BatchNorm2d({norms[0]['config'].get('num_features')})")
        values = common.filled_values(record.get("table"), seed)
        expected = bn_of(conv_of(x, values, convs[0]), values, norms[0])
        if not agree(got, expected.numpy()):
            raise Fail(f"{where}.shortcut on a (2, {in_ch}, {size}, {size}) batch did not return "
                       f"BatchNorm(Conv1x1(x)) for its own layers (seeded values, eval mode): "
                       f"the conv comes first, then the BatchNorm, and nothing else")


def np_prod(shape) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


# ex2_test_skip_path: a stand-in shortcut with known output and a switched-off branch ---------------
def skip_cases(rng):
    cases = []
    for i, o, s in block_configs(rng, 6):
        cases.append([i, o, s, rng.randint(4, 12), rng.randint(0, 2**31), i != o or s != 1])
    return cases


def skip_probe(cases, rec):
    _, KnownShortcut, _ = ex2_stand_ins()
    import torch
    import torch.nn as nn

    flags = ex2_exact()
    try:
        for i, (in_ch, out_ch, stride, size, seed, project) in enumerate(cases):
            try:
                block = rec.lookup("ResidualBlock")(in_ch, out_ch, stride=stride)
                device = next(iter(block.parameters()), torch.empty(0)).device
                block.shortcut = KnownShortcut(in_ch, out_ch, stride, project).to(device)
                block.eval()
                table = fill_module(block, seed)  # noqa: F821 - a helper pasted beside the probe
                silenced = []
                with torch.no_grad():     # the branch's BatchNorm scales set to 0: each outputs its shift only
                    for name, sub in block.named_modules():
                        weight = getattr(sub, "weight", None)
                        if isinstance(sub, nn.modules.batchnorm._BatchNorm) and weight is not None:
                            sub.weight.zero_()
                            silenced.append(name)
                x = ex2_input((2, in_ch, size, size), seed + 1, block)
                with torch.no_grad():
                    out = block(x)
                rec.put(i, {"table": table, "modules": module_table(block), "silenced": silenced, "out": out})  # noqa: F821 - a helper pasted beside the probe
            except Exception as exc:  # noqa: BLE001
                rec.error(i, exc)
    finally:
        ex2_restore(flags)


def skip_verdict(cases, results):
    import numpy as np
    import torch

    for i, (in_ch, out_ch, stride, size, seed, project) in enumerate(cases):
        where = f"ResidualBlock({in_ch}, {out_ch}, stride={stride})"
        call = (f"{where} with a stand-in shortcut (known output) and its branch switched off (BatchNorm "
                f"scales set to 0, so the branch outputs the last BatchNorm's shift)")
        record = results.returned(i, call)
        if not isinstance(record, dict):
            raise Fail(f"{call}: the result could not be read")
        got = as_array(record.get("out"), where)
        rows = rows_of(record.get("modules"))
        values = common.filled_values(record.get("table"), seed)
        x = grader_input((2, in_ch, size, size), seed + 1)
        skip = conv_of(x, values, {"name": "shortcut", "config": {"stride": stride}}) if project else x
        norms = [r for r in with_params(rows, skip=("shortcut",))
                 if r["base"] == "BatchNorm2d" and r["config"].get("num_features") == out_ch]
        if not norms:
            raise Fail(f"{where}: found no BatchNorm2d({out_ch}) in the residual branch (this check switches the "
                       f"branch off through its BatchNorm layers)")
        shifts = [tensor(values, f"{r['name']}.bias").view(1, -1, 1, 1) for r in norms]
        if any(agree(got, torch.relu(b + skip).numpy()) for b in shifts):
            continue
        hint = "the block must return relu(branch(x) + shortcut(x))"
        if any(agree(got, (torch.relu(b) + skip).numpy()) for b in shifts):
            hint = "it returned relu(branch) + shortcut: the ReLU must come after the addition, not before it"
        elif any(agree(got, (b + skip).expand(got.shape).numpy()) for b in shifts if got.shape == tuple(skip.shape)):
            hint = "it returned branch + shortcut without the ReLU after the addition"
        elif any(agree(got, torch.relu(b).expand(*skip.shape).numpy()) for b in shifts
                 if got.shape == tuple(skip.shape)):
            hint = "it returned the branch alone: is the shortcut added to the branch output?"
        elif np.all(np.isfinite(got)) and got.shape != tuple(skip.shape):
            hint = f"it returned shape {tuple(got.shape)}, not the shape of branch and shortcut"
        raise Fail(f"{call} should return relu(shift + shortcut(x)); {hint}")


# ex2_test_mini_resnet: MiniResNet built with grader stand-in blocks -------------------------------
def resnet_cases(rng):
    cases = [[None, rng.randint(12, 20), rng.randint(0, 2**31)]]
    cases += [[rng.choice([2, 3, 5, 7, 12, 100]), size, rng.randint(0, 2**31)]
              for size in (rng.randint(6, 11) * 2 + 1, rng.randint(8, 12))]
    return cases


def resnet_probe(cases, rec):
    _, _, GraderBlock = ex2_stand_ins()
    import torch

    missing = object()
    flags = ex2_exact()
    try:
        for i, (num_classes, size, seed) in enumerate(cases):
            try:
                original = rec.ns.get("ResidualBlock", missing)
                rec.ns["ResidualBlock"] = GraderBlock
                build = rec.lookup("MiniResNet")
                try:
                    model = build() if num_classes is None else build(num_classes=num_classes)
                except Exception:  # noqa: BLE001 - e.g. __init__ reaches into its blocks: use the student's own
                    if original is missing:
                        raise
                    rec.ns["ResidualBlock"] = original
                    model = build() if num_classes is None else build(num_classes=num_classes)
                finally:
                    if original is missing:
                        rec.ns.pop("ResidualBlock", None)
                    else:
                        rec.ns["ResidualBlock"] = original
                stand_in = any(isinstance(m, GraderBlock) for m in model.modules())
                kind = GraderBlock if stand_in else (original if isinstance(original, type) else GraderBlock)
                blocks = [(n, m) for n, m in model.named_modules() if isinstance(m, kind)]
                model.eval()
                table = fill_module(model, seed)  # noqa: F821 - a helper pasted beside the probe
                x = ex2_input((2, 3, size, size), seed + 1, model)
                seen, handles = [], []
                if not stand_in:          # the student's own blocks: keep what went in and came out
                    for name, block in blocks:
                        handles.append(block.register_forward_hook(
                            lambda m, inp, out, name=name, seen=seen:
                            seen.append([name, inp[0].detach(), out.detach()])))
                try:
                    with torch.no_grad():
                        out, calls = run_traced(model, x)  # noqa: F821 - a helper pasted beside the probe
                finally:
                    for h in handles:
                        h.remove()
                rec.put(i, {"stand_in": stand_in, "table": table, "modules": module_table(model), "calls": calls,  # noqa: F821 - a helper pasted beside the probe
                            "out": out, "blocks": [[n, getattr(m, "args", None)] for n, m in blocks], "io": seen})
            except Exception as exc:  # noqa: BLE001
                rec.error(i, exc)
    finally:
        ex2_restore(flags)


def stride_of(size_in: int, size_out: int):
    for s in range(1, 9):
        if (size_in - 1) // s + 1 == size_out:
            return s
    return None


RESNET_BLOCKS = [(32, 32, 1), (32, 64, 2), (64, 64, 1)]


def resnet_verdict(cases, results):
    import torch

    for i, (num_classes, size, seed) in enumerate(cases):
        classes = 10 if num_classes is None else num_classes
        built = "MiniResNet()" if num_classes is None else f"MiniResNet(num_classes={num_classes})"
        call = f"{built}, built with a grader stand-in for ResidualBlock, on a (2, 3, {size}, {size}) batch"
        raised = results.raised(i)
        if raised is not None:
            raise Fail(f"{call} raised {raised}: the grader builds it for other class counts and runs it on other "
                       f"image sizes (global average pooling makes the model work for any input size)")
        record = results.returned(i, call)
        if not isinstance(record, dict):
            raise Fail(f"{call}: the result could not be read")
        rows = rows_of(record.get("modules"))
        calls = record.get("calls") if isinstance(record.get("calls"), list) else []
        stand_in = record.get("stand_in") is True
        blocks = [b for b in record.get("blocks", []) if isinstance(b, list) and len(b) == 2 and isinstance(b[0], str)]
        if not blocks:
            raise Fail(f"{built} holds no ResidualBlock: build its three blocks by calling "
                       f"ResidualBlock(in_ch, out_ch, stride) in __init__")
        order = call_order(calls)
        blocks.sort(key=lambda b: order.get(b[0], len(order) + 1))
        names = [b[0] for b in blocks]
        if len(blocks) != 3:
            raise Fail(f"{built} should hold three residual blocks, found {len(blocks)}")
        uncalled = [n for n in names if n not in order]
        if uncalled:
            raise Fail(f"{built}: the block {uncalled[0]!r} is never called in forward")
        io = {}
        if stand_in:
            configs = [tuple(b[1]) if isinstance(b[1], list) else None for b in blocks]
        else:
            io = {r[0]: r for r in record.get("io", []) if isinstance(r, list) and len(r) == 3}
            configs = []
            for n in names:
                if n not in io:
                    raise Fail(f"{built}: the block {n!r} was not run")
                _, bin_, bout = io[n]
                configs.append((bin_.shape[1], bout.shape[1], stride_of(bin_.shape[2], bout.shape[2])))
        if configs != RESNET_BLOCKS:
            wanted = "ResidualBlock(32, 32), ResidualBlock(32, 64, stride=2), ResidualBlock(64, 64)"
            shown = ", ".join(f"ResidualBlock({c[0]}, {c[1]}, stride={c[2]})" if c else "?" for c in configs)
            hint = ""
            if configs[:2] == RESNET_BLOCKS[:2] and configs[2] == (64, 64, 2):
                hint = (": the third block has stride 2, which halves the resolution a second time (a 32x32 image "
                        "would leave the blocks at 8x8); only the second block downsamples")
            raise Fail(f"{built} should call, in this order, {wanted}; yours calls {shown}{hint}")
        outside = with_params(rows, skip=names)
        kinds = sorted(r["base"] for r in outside)
        if kinds != ["BatchNorm2d", "Conv2d", "Linear"]:
            raise Fail(f"{built}: besides the three blocks the model should hold exactly one stem Conv2d, one "
                       f"BatchNorm2d and one Linear with parameters (nothing else); found "
                       f"{[r['type'] + ' ' + repr(r['name']) for r in outside]}")
        conv, norm, head = (next(r for r in outside if r["base"] == k) for k in ("Conv2d", "BatchNorm2d", "Linear"))
        c = conv["config"]
        if ((c.get("in_channels"), c.get("out_channels")) != (3, 32) or pair(c.get("kernel_size")) != (3, 3)
                or padding_of(c) != (1, 1) or pair(c.get("stride")) != (1, 1) or c.get("bias")
                or pair(c.get("dilation", 1)) != (1, 1) or c.get("groups", 1) != 1):
            raise Fail(f"{built}: the stem should be Conv2d(3, 32, 3, padding=1, bias=False), got Conv2d("
                       f"{c.get('in_channels')}, {c.get('out_channels')}, kernel {c.get('kernel_size')}, stride "
                       f"{c.get('stride')}, padding {c.get('padding')}, bias={c.get('bias')})")
        if norm["config"].get("num_features") != 32:
            raise Fail(f"{built}: the stem BatchNorm should be BatchNorm2d(32), got "
                       f"BatchNorm2d({norm['config'].get('num_features')})")
        h = head["config"]
        if (h.get("in_features"), h.get("out_features"), h.get("bias")) != (64, classes, True):
            raise Fail(f"{built}: the head should be Linear(64, {classes}), got Linear({h.get('in_features')}, "
                       f"{h.get('out_features')}, bias={h.get('bias')})")
        got = as_array(record.get("out"), built)
        if got.shape != (2, classes):
            raise Fail(f"{call} returned shape {tuple(got.shape)}, not one row of {classes} logits per image: "
                       f"global-average-pool the 64 channels, flatten, then Linear(64, num_classes); global "
                       f"pooling makes the model work for any input size")
        values = common.filled_values(record.get("table"), seed)
        x = grader_input((2, 3, size, size), seed + 1)

        def stem(act=torch.relu, x=x, values=values, conv=conv, norm=norm):
            return act(bn_of(conv_of(x, values, conv), values, norm))

        def blocks_of(h, names=names, configs=configs, values=values):
            for name, (_, _, stride) in zip(names, configs, strict=True):
                weight = tensor(values, f"{name}.weight")
                h = torch.relu(torch.nn.functional.conv2d(h, weight, stride=stride))
            return h

        def logits(h, pool=lambda t: t.mean(dim=(2, 3)), values=values, head=head):
            return linear_of(pool(h), values, head).numpy()

        if stand_in:
            final = blocks_of(stem())
        else:   # the student's own blocks: judged by what went in and came out, not re-tested here
            first_in = io[names[0]][1]
            if not agree(first_in, stem().numpy()):
                raise Fail(f"{built}: the first block's input is not relu(bn(conv(x))) of the stem "
                           f"(Conv2d(3, 32, 3, padding=1, bias=False) -> BatchNorm2d(32) -> ReLU)")
            for a, b in zip(names, names[1:], strict=False):
                if not agree(io[b][1], io[a][2]):
                    raise Fail(f"{built}: block {b!r} should be fed the output of block {a!r}")
            final = torch.from_numpy(io[names[-1]][2])
        if agree(got, logits(final)):
            continue
        hint = "it should compute stem -> three blocks -> global average pool -> flatten -> Linear"
        if stand_in and agree(got, logits(blocks_of(stem(act=lambda t: t)))):
            hint = "the stem needs its ReLU after the BatchNorm"
        elif agree(got, logits(final, pool=lambda t: t.amax(dim=(2, 3)))):
            hint = "use global *average* pooling (mean over height and width), not max pooling"
        raise Fail(f"{call} returned logits that do not match its own layers (seeded values, eval mode): {hint}")



# ex2_test_count_parameters: modules the grader builds ----------------------------------------------
def count_cases(rng):
    nets = []
    c = rng.randint(2, 9)
    nets.append({"layers": [["bn", c]], "freeze": []})
    i, o = rng.randint(2, 9), rng.randint(2, 9)
    nets.append({"layers": [["conv", 3, i, 3, False], ["bn", i], ["relu"], ["conv", i, o, 1, True], ["bn", o]],
                 "freeze": [[0, "weight"], [4, "bias"]]})
    a, b, k = rng.randint(2, 12), rng.randint(2, 12), rng.randint(2, 12)
    nets.append({"layers": [["linear", a, b, True], ["relu"], ["linear", b, k, rng.random() < 0.5], ["tied", 0]],
                 "freeze": [[2, "weight"]]})
    s = rng.randint(2, 8)
    nets.append({"layers": [["linear", s, s, True], ["tied", 0], ["tied", 0]], "freeze": [[0, "weight"], [0, "bias"]]})
    return nets


def count_probe(cases, rec):
    import torch.nn as nn

    for i, spec in enumerate(cases):
        layers = []
        for kind, *args in spec["layers"]:
            if kind == "bn":
                layers.append(nn.BatchNorm2d(args[0]))
            elif kind == "conv":
                layers.append(nn.Conv2d(args[0], args[1], args[2], bias=args[3]))
            elif kind == "linear":
                layers.append(nn.Linear(args[0], args[1], bias=args[2]))
            elif kind == "relu":
                layers.append(nn.ReLU())
            else:
                layers.append(layers[args[0]])
        net = layers[0] if len(layers) == 1 else nn.Sequential(*layers)
        for index, name in spec["freeze"]:
            getattr(layers[index], name).requires_grad_(False)
        rec.call(f"{i}d", "count_parameters", net)
        rec.call(f"{i}t", "count_parameters", net, trainable_only=True)
        rec.call(f"{i}f", "count_parameters", net, trainable_only=False)
        rec.call(f"{i}p", "count_parameters", net, True)


def count_expected(spec) -> tuple[int, int]:
    sizes = []        # (layer index, parameter name, size) of each distinct parameter
    for index, (kind, *args) in enumerate(spec["layers"]):
        if kind == "bn":
            sizes += [(index, "weight", args[0]), (index, "bias", args[0])]
        elif kind == "conv":
            sizes.append((index, "weight", args[0] * args[1] * args[2] * args[2]))
            if args[3]:
                sizes.append((index, "bias", args[1]))
        elif kind == "linear":
            sizes.append((index, "weight", args[0] * args[1]))
            if args[2]:
                sizes.append((index, "bias", args[1]))
    frozen = {(index, name) for index, name in spec["freeze"]}
    total = sum(s for _, _, s in sizes)
    return total, total - sum(s for index, name, s in sizes if (index, name) in frozen)


def describe_net(spec) -> str:
    parts = []
    for kind, *args in spec["layers"]:
        if kind == "bn":
            parts.append(f"BatchNorm2d({args[0]})")
        elif kind == "conv":
            parts.append(f"Conv2d({args[0]}, {args[1]}, {args[2]}, bias={args[3]})")
        elif kind == "linear":
            parts.append(f"Linear({args[0]}, {args[1]}, bias={args[2]})")
        elif kind == "relu":
            parts.append("ReLU()")
        else:
            parts.append(f"layer {args[0]} again")
    text = parts[0] if len(parts) == 1 else f"nn.Sequential({', '.join(parts)})"
    if spec["freeze"]:
        text += " with " + ", ".join(f"layer {i}'s {n}" for i, n in spec["freeze"]) + " frozen"
    return text


def count_verdict(cases, results):
    for i, spec in enumerate(cases):
        total, trainable = count_expected(spec)
        net = describe_net(spec)
        for key, args, expected, what in (
                ("d", "net", total, "every parameter, frozen or not, each tensor once"),
                ("f", "net, trainable_only=False", total, "by default frozen parameters count too"),
                ("t", "net, trainable_only=True", trainable, "only the parameters with requires_grad"),
                ("p", "net, True", trainable, "trainable_only is the second positional argument")):
            call = f"count_parameters({args}) for net = {net}"
            got = common.integer(results.returned(f"{i}{key}", call), call)
            if got != expected:
                extra = ""
                if "BatchNorm" in net and got > expected:
                    extra = "; BatchNorm's running statistics are buffers, not parameters"
                if "again" in net and got > expected:
                    extra += "; a layer used twice has its parameters counted once"
                raise Fail(f"{call} returned {got}, which is not right: {what}{extra}")


# ex2_test_shapes: the worked example, judged against the truth or the student's own classes ---------
def true_params(num_classes=10) -> int:
    def conv(i, o, k):
        return i * o * k * k

    def block(i, o, s):
        count = conv(i, o, 3) + 2 * o + conv(o, o, 3) + 2 * o
        return count + (conv(i, o, 1) + 2 * o if (i != o or s != 1) else 0)

    return conv(3, 32, 3) + 2 * 32 + sum(block(*c) for c in RESNET_BLOCKS) + 64 * num_classes + num_classes


def shapes_cases(rng):
    return {"seed": rng.randint(0, 2**31)}


def shapes_probe(cases, rec):
    import torch

    for name in ("blocks_out_shape", "logits_shape", "total_params"):
        if name in rec.ns:
            rec.put(name, rec.ns[name])
    model = None
    try:
        model = rec.lookup("MiniResNet")()
        model.eval()
        kind = rec.ns.get("ResidualBlock")
        seen, handles = [], []
        if isinstance(kind, type):
            for sub in model.modules():
                if isinstance(sub, kind):
                    handles.append(sub.register_forward_hook(
                        lambda m, inp, out: seen.append([int(s) for s in out.shape])))
        x = ex2_input((8, 3, 32, 32), cases["seed"], model)
        try:
            with torch.no_grad():
                out = model(x)
        finally:
            for h in handles:
                h.remove()
        rec.put("own_blocks", seen[-1] if seen else None)
        rec.put("own_logits", [int(s) for s in out.shape])
    except Exception as exc:  # noqa: BLE001
        rec.error("own_logits", exc)
    if model is not None:
        rec.put("own_table", module_table(model))  # noqa: F821 - a helper pasted beside the probe
        rec.call("own_count", "count_parameters", model)


def shape_value(value):
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    return None


def shapes_verdict(cases, results):
    for name in ("blocks_out_shape", "logits_shape", "total_params"):
        if name not in results:
            crashed = results.raised("own_logits")
            why = (f": MiniResNet() raised {crashed} on a (8, 3, 32, 32) batch, so the cell could not record it "
                   f"(this cell runs your own classes)" if crashed else "")
            raise Fail(f"define {name} in the answer cell above the test{why}")
    own = results.values
    half = side_after(32, 2)
    for name, true, own_key, what in (
            ("blocks_out_shape", (8, 64, half, half), "own_blocks", "the shape after the three blocks"),
            ("logits_shape", (8, 10), "own_logits", "the shape of the logits")):
        value = results.returned(name, name)
        got = shape_value(value)
        if got is None or not isinstance(value, tuple):
            raise Fail(f"{name} should be a tuple of ints (e.g. tuple(t.shape)), got {common.describe(value)}")
        mine = shape_value(own.get(own_key))
        if got == true or (mine is not None and got == mine):
            continue
        yours = f"; your MiniResNet gives {mine}" if mine is not None else ""
        raise Fail(f"{name} is {got}: it should be {what} of MiniResNet() on a (8, 3, 32, 32) batch{yours}")
    got = results.returned("total_params", "total_params")
    if isinstance(got, bool) or not isinstance(got, int):
        raise Fail(f"total_params should be a whole number, got {common.describe(got)}")
    accepted = {true_params()}
    if isinstance(own.get("own_count"), int) and not isinstance(own.get("own_count"), bool):
        accepted.add(own["own_count"])
    table = own.get("own_table")
    if isinstance(table, list):
        with contextlib.suppress(Fail):
            accepted.add(sum(np_prod(s) for r in rows_of(table) for s in r["own"].values()))
    if got not in accepted:
        raise Fail(f"total_params is {got}: it should be count_parameters(MiniResNet()) (every parameter, "
                   f"each tensor once)")


MODULE_HELPERS = (ex2_stand_ins, ex2_exact, ex2_restore, ex2_input, kernel.fill_module, kernel.module_table,
                  kernel.run_traced)

CHECKS = [
    Check("ex1_test_plain", plain_cases, plain_probe, plain_verdict),
    Check("ex1_test_residual", residual_cases, residual_probe, residual_verdict),
    Check("ex1_test_worked_example", worked_cases, worked_probe, worked_verdict),
    Check("ex2_test_residual_block", block_cases, block_probe, block_verdict, helpers=MODULE_HELPERS),
    Check("ex2_test_shortcut", shortcut_cases, shortcut_probe, shortcut_verdict, helpers=MODULE_HELPERS),
    Check("ex2_test_skip_path", skip_cases, skip_probe, skip_verdict, helpers=MODULE_HELPERS),
    Check("ex2_test_mini_resnet", resnet_cases, resnet_probe, resnet_verdict, helpers=MODULE_HELPERS),
    Check("ex2_test_count_parameters", count_cases, count_probe, count_verdict),
    Check("ex2_test_shapes", shapes_cases, shapes_probe, shapes_verdict, helpers=(ex2_input, kernel.module_table)),
]
