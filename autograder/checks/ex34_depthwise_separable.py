"""Hidden checks of exercises 3-4 (depthwise separable convolutions).

Exercise 3: each count function is called on grader-chosen (k, m, n, d_f). Where a function may build
on another of the student's functions (``reduction_ratio`` on the two parameter counts, the
multiply-add counts on them too), the probe calls it twice: once as the student wrote it, and once with
the two parameter counts swapped for grader stand-ins (affine functions with seeded coefficients, not
the answer). It passes when either call is right: the true value with the student's own helpers, or
the true value / the direct composition of the stand-ins. A wrong parameter count is thus charged to
its own cell only.

Exercise 4: the blocks are filled with seeded values (``kernel.fill_module``) and run on a seeded input;
the verdict finds the convolution and the BatchNorm of each stage by type inside ``dw`` and ``pw`` (names
the exercise fixes), checks their configuration, regenerates their values and recomputes the stage
functionally. The structure cells compare only where the pre-activation lies in (0, 6) (every
activation of the ReLU family is the identity there), so the activation is judged once, by its own cell
(amplified pre-activations: ReLU6 is bounded in [0, 6] and reaches both ends, ReLU is not bounded)."""
from __future__ import annotations

import numpy as np

from ..probes import Check, Fail
from . import common, kernel

# -- exercise 3: reference counts (grader side only) ---------------------------------------------


def std_params(k, m, n):
    return m * n * k ** 2             # n filters of k x k x m


def sep_params(k, m, n):
    return m * (k ** 2 + n)           # m filters of k x k, then n filters of 1 x 1 x m


def stand_in(coef, k, m, n):
    return coef[0] + coef[1] * k + coef[2] * m + coef[3] * n


def stand_in_coefs(rng):
    return {"std": [rng.randint(1, 9973) for _ in range(4)], "sep": [rng.randint(1, 9973) for _ in range(4)]}


def kmn_cases(rng, count, k_choices=(1, 2, 3, 4, 5, 7), edge=()):
    out = [list(e) for e in edge]
    while len(out) < count:
        out.append([rng.choice(k_choices), rng.randint(1, 200), rng.randint(1, 320)])
    return out


# the probes of exercise 3 share this kernel-side helper
def call_with_stand_ins(rec, key, name, args, coefs):
    """``name(*args)`` with standard_conv_params / dwsep_params replaced by grader stand-ins."""
    def standard_conv_params(k, m, n):
        c = coefs["std"]
        return c[0] + c[1] * k + c[2] * m + c[3] * n

    def dwsep_params(k, m, n):
        c = coefs["sep"]
        return c[0] + c[1] * k + c[2] * m + c[3] * n

    missing = object()
    saved = {n: rec.ns.get(n, missing) for n in ("standard_conv_params", "dwsep_params")}
    rec.ns["standard_conv_params"], rec.ns["dwsep_params"] = standard_conv_params, dwsep_params
    try:
        rec.call(key, name, *args)
    finally:
        for n, value in saved.items():
            if value is missing:
                rec.ns.pop(n, None)
            else:
                rec.ns[n] = value


def counts_cases(rng):
    return kmn_cases(rng, 14, edge=[(1, rng.randint(2, 40), rng.randint(2, 40)), (rng.choice([3, 5, 7]), 1, 1),
                                    (rng.choice([3, 5]), rng.randint(2, 64), 1)])


def counts_probe(cases, rec):
    for i, (k, m, n) in enumerate(cases):
        rec.call(f"s{i}", "standard_conv_params", k, m, n)
        rec.call(f"d{i}", "dwsep_params", k, m, n)


def counts_verdict(cases, results):
    for i, (k, m, n) in enumerate(cases):
        call = f"standard_conv_params({k}, {m}, {n})"
        got = common.integer(results.returned(f"s{i}", call), call)
        if got != std_params(k, m, n):
            raise Fail(f"{call} returned {got}, which is not the weight count of nn.Conv2d({m}, {n}, {k}, "
                       f"bias=False): each of the {n} filters spans all {m} input channels with a {k}x{k} kernel")
        call = f"dwsep_params({k}, {m}, {n})"
        got = common.integer(results.returned(f"d{i}", call), call)
        if got != sep_params(k, m, n):
            raise Fail(f"{call} returned {got}, which is not the weight count of a depthwise "
                       f"nn.Conv2d({m}, {m}, {k}, groups={m}, bias=False) plus a pointwise "
                       f"nn.Conv2d({m}, {n}, 1, bias=False): weights only, no bias, no BatchNorm")


def ratios_cases(rng):
    return {"kmn": kmn_cases(rng, 10, edge=[(rng.choice([3, 5]), rng.randint(2, 64), 1), (1, rng.randint(2, 64),
                                                                                          rng.randint(2, 64))]),
            "coefs": stand_in_coefs(rng)}


def ratios_probe(cases, rec):
    for i, (k, m, n) in enumerate(cases["kmn"]):
        rec.call(f"r{i}", "reduction_ratio", k, m, n)
        call_with_stand_ins(rec, f"rs{i}", "reduction_ratio", (k, m, n), cases["coefs"])
        rec.call(f"c{i}", "cost_ratio_formula", k, n)


def ratios_verdict(cases, results):
    coefs = cases["coefs"]
    for i, (k, m, n) in enumerate(cases["kmn"]):
        call = f"cost_ratio_formula({k}, {n})"
        got = common.number(results.returned(f"c{i}", call), call)
        if not common.close(got, 1 / n + 1 / k ** 2):
            raise Fail(f"{call} returned {got:.6g}, which is not 1/N + 1/D_K^2 (N = {n}, D_K = {k})")
        call = f"reduction_ratio({k}, {m}, {n})"
        got = common.number(results.returned(f"r{i}", call), call)
        if common.close(got, std_params(k, m, n) / sep_params(k, m, n)):
            continue
        # the same call with the two parameter counts swapped for stand-ins: a wrong count is not charged here
        with_stand_ins = results.values.get(f"rs{i}")
        if isinstance(with_stand_ins, (int, float)) and not isinstance(with_stand_ins, bool):
            numerators = (std_params(k, m, n), stand_in(coefs["std"], k, m, n))
            denominators = (sep_params(k, m, n), stand_in(coefs["sep"], k, m, n))
            if any(common.close(float(with_stand_ins), a / b) for a in numerators for b in denominators):
                continue
        raise Fail(f"{call} returned {got:.6g}, which is not standard weights / separable weights "
                   f"(that way round: how many times fewer weights the separable version needs)")


def madds_cases(rng):
    kmn = kmn_cases(rng, 10, k_choices=(1, 3, 5, 7))
    cases = [[k, m, n, rng.randint(1, 64)] for k, m, n in kmn]
    cases += [[3, rng.randint(16, 64), rng.randint(32, 128), rng.randint(100, 230)], [rng.choice([3, 5]), 2, 3, 1]]
    return {"cases": cases, "coefs": stand_in_coefs(rng)}


def madds_probe(cases, rec):
    for i, (k, m, n, d_f) in enumerate(cases["cases"]):
        rec.call(f"s{i}", "standard_conv_madds", k, m, n, d_f)
        rec.call(f"d{i}", "dwsep_madds", k, m, n, d_f)
        call_with_stand_ins(rec, f"ss{i}", "standard_conv_madds", (k, m, n, d_f), cases["coefs"])
        call_with_stand_ins(rec, f"ds{i}", "dwsep_madds", (k, m, n, d_f), cases["coefs"])


def madds_verdict(cases, results):
    coefs = cases["coefs"]
    for i, (k, m, n, d_f) in enumerate(cases["cases"]):
        for key, name, true_count, coef, what in (
                ("s", "standard_conv_madds", std_params(k, m, n), coefs["std"],
                 f"{n * d_f * d_f} output values, each a sum over {k * k * m} weighted inputs"),
                ("d", "dwsep_madds", sep_params(k, m, n), coefs["sep"],
                 "each stage's weights are used once at every position of its own output map")):
            call = f"{name}({k}, {m}, {n}, {d_f})"
            got = common.integer(results.returned(f"{key}{i}", call), call)
            if got == true_count * d_f * d_f:
                continue
            with_stand_ins = results.values.get(f"{key}s{i}")
            if (isinstance(with_stand_ins, (int, float)) and not isinstance(with_stand_ins, bool)
                    and with_stand_ins in (true_count * d_f * d_f, stand_in(coef, k, m, n) * d_f * d_f)):
                continue
            raise Fail(f"{call} returned {got}, which is not right: {what} (a {d_f}x{d_f} output map)")


WORKED = (("std_params", "standard_conv_params", (3, 64, 128)),
          ("sep_params", "dwsep_params", (3, 64, 128)),
          ("ratio", "reduction_ratio", (3, 64, 128)),
          ("formula_fraction", "cost_ratio_formula", (3, 128)),
          ("std_madds", "standard_conv_madds", (3, 64, 128, 56)),
          ("sep_madds", "dwsep_madds", (3, 64, 128, 56)))


def worked_cases(rng):
    return [[name, fn, list(args)] for name, fn, args in WORKED]


def worked_probe(cases, rec):
    for name, fn, args in cases:
        if name in rec.ns:
            rec.put(name, rec.ns[name])
        rec.call(f"{name}.own", fn, *args)


def worked_verdict(cases, results):
    truth = {"std_params": std_params(3, 64, 128), "sep_params": sep_params(3, 64, 128),
             "ratio": std_params(3, 64, 128) / sep_params(3, 64, 128), "formula_fraction": 1 / 128 + 1 / 9,
             "std_madds": std_params(3, 64, 128) * 56 * 56, "sep_madds": sep_params(3, 64, 128) * 56 * 56}
    # A wrong function is charged to its own test: each value passes when it is the true answer or what
    # the student's own function returns for these arguments (the text says so).
    for name, fn, args in cases:
        if name not in results:
            raise Fail(f"define {name} in the worked-example cell")
        got = common.number(results.returned(name, name), name)
        own = results.values.get(f"{name}.own")
        if common.close(got, truth[name]) or (isinstance(own, (int, float)) and not isinstance(own, bool)
                                              and common.close(got, float(own))):
            continue
        call = f"{fn}({', '.join(str(a) for a in args)})"
        raise Fail(f"{name} is {got:.6g}: it should be {call}, computed with your function")


# -- exercise 4: kernel-side probes ---------------------------------------------------------------

def seeded_input(shape, seed, like):
    """A seeded float64 normal batch, cast to the module's device and floating dtype."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(tuple(shape), generator=gen, dtype=torch.float64)
    p = next(iter(like.parameters()), None)
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    return x.to(device=p.device if p is not None else "cpu", dtype=dtype)


def build_filled(rec, key, name, args, seed, kwargs=None):
    """``name(*args)`` filled with seeded values, in eval mode; its fill table and module table recorded."""
    try:
        block = rec.lookup(name)(*args, **(kwargs or {}))
        table = fill_module(block, seed)  # noqa: F821 - a helper pasted beside the probe
        block.eval()
    except Exception as exc:  # noqa: BLE001 - the student's exception is data for the verdict
        rec.error(key, exc)
        return None
    rec.put(f"{key}.fill", table)
    rec.put(f"{key}.table", module_table(block))  # noqa: F821
    return block


def structure_probe(cases, rec):
    import torch

    # full float32 convolutions on a GPU too (TF32 would round far above float32 precision)
    flags = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        structure_runs(cases, rec)
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = flags


def structure_runs(cases, rec):
    import torch

    for i, (name, in_ch, out_ch, stride, size, seed) in enumerate(cases):
        block = build_filled(rec, i, name, (in_ch, out_ch), seed, {"stride": stride})
        if block is None:
            continue
        rec.put(f"{i}.built", True)
        x = seeded_input((2, in_ch, size, size), seed + 1, block)
        with torch.no_grad():
            if name == "DWSepConv":
                try:
                    rec.put(f"{i}.dw", block.dw(x))
                except Exception as exc:  # noqa: BLE001
                    rec.error(f"{i}.dw", exc)
            try:
                rec.put(f"{i}.out", block(x))
            except Exception as exc:  # noqa: BLE001
                rec.error(f"{i}.out", exc)


def shapes_probe(cases, rec):
    import torch

    for i, (name, in_ch, out_ch, stride, size) in enumerate(cases):
        try:
            block = rec.lookup(name)(in_ch, out_ch, stride=stride).eval()
            x = seeded_input((2, in_ch, size, size), 1000 + i, block)
            with torch.no_grad():
                rec.put(i, tuple(block(x).shape))
        except Exception as exc:  # noqa: BLE001
            rec.error(i, exc)


def activations_probe(cases, rec):
    import torch
    import torch.nn as nn

    for i, (name, in_ch, out_ch, stride, seed) in enumerate(cases):
        try:
            block = rec.lookup(name)(in_ch, out_ch, stride=stride)
            fill_module(block, seed)  # noqa: F821 - a helper pasted beside the probe
            with torch.no_grad():   # scale every BatchNorm so the pre-activations reach far beyond 6
                for m in block.modules():
                    if isinstance(m, nn.BatchNorm2d) and m.weight is not None:
                        m.weight.fill_(50.0)
            block.eval()
            x = seeded_input((2, in_ch, 10, 10), seed + 1, block)
            with torch.no_grad():
                if name == "DWSepConv":
                    rec.put(f"{i}.dw", block.dw(x))
                rec.put(f"{i}.out", block(x))
        except Exception as exc:  # noqa: BLE001
            rec.error(f"{i}.out", exc)


def param_counts_probe(cases, rec):
    for i, (name, in_ch, out_ch) in enumerate(cases):
        try:
            block = rec.lookup(name)(in_ch, out_ch)
            shapes = [[n, [int(s) for s in p.shape]] for n, p in block.named_parameters()]
            rec.put(i, [sum(int(p.numel()) for p in block.parameters()), shapes])
        except Exception as exc:  # noqa: BLE001
            rec.error(i, exc)


def comparison_probe(cases, rec):
    import torch

    for name in cases["names"]:
        if name in rec.ns:
            rec.put(name, rec.ns[name])
    # what the student's own classes give, so that a wrong class is charged to its own cells only
    for key, name in (("own_dwsep", "DWSepConv"), ("own_standard", "StandardConv")):
        try:
            block = rec.lookup(name)(64, 128).eval()
            rec.put(f"{key}.count", sum(int(p.numel()) for p in block.parameters()))
            x = seeded_input((2, 64, 56, 56), 7, block)
            with torch.no_grad():
                rec.put(f"{key}.shape", tuple(block(x).shape))
        except Exception as exc:  # noqa: BLE001
            rec.error(f"{key}.count", exc)


# -- exercise 4: verdicts -------------------------------------------------------------------------

def as_tensor(value, call):
    import torch

    if not isinstance(value, np.ndarray):
        raise Fail(f"{call} should return a tensor, got {common.describe(value)}")
    return torch.from_numpy(np.asarray(value, dtype=np.float64))


def _tuple(value):
    return tuple(value) if isinstance(value, list) else value


def find_layers(table, prefix, where, stage):
    """The one Conv2d and the one BatchNorm2d of the rows under ``prefix`` (by type, any names)."""
    rows = [r for r in table if isinstance(r, (list, tuple)) and len(r) == 5 and isinstance(r[0], str)
            and (prefix is None or r[0] == prefix or r[0].startswith(prefix + "."))]
    convs = [r for r in rows if r[2] == "Conv2d"]
    norms = [r for r in rows if r[2] == "BatchNorm2d"]
    if len(convs) != 1:
        raise Fail(f"{where}: {stage} should hold exactly one nn.Conv2d, found {len(convs)}")
    if len(norms) != 1:
        raise Fail(f"{where}: {stage} should hold exactly one nn.BatchNorm2d, found {len(norms)}")
    return convs[0], norms[0]


def check_conv(row, where, what, want):
    """``want``: field -> (value, how the text writes it); the message shows the text's form."""
    config = row[3] if isinstance(row[3], dict) else {}
    got = {k: _tuple(config.get(k)) for k in want}
    kernel_size = got.get("kernel_size")
    if got.get("padding") == "valid":
        got["padding"] = (0, 0)
    elif got.get("padding") == "same" and got.get("stride") == (1, 1) and isinstance(kernel_size, tuple):
        got["padding"] = tuple(int(k) // 2 for k in kernel_size)   # the same thing for an odd kernel
    for field_name, (value, text) in want.items():
        if got[field_name] != value:
            shown = got[field_name]
            shown = shown[0] if isinstance(shown, tuple) and len(set(shown)) == 1 else shown
            extra = ""
            if field_name == "groups" and what == "the depthwise conv":
                extra = ", so that each channel gets its own 3x3 filter"
            elif field_name == "bias":
                extra = ": the BatchNorm after it has its own shift"
            elif field_name == "stride" and what == "the pointwise conv":
                extra = ": the depthwise 3x3 conv carries the stride, the 1x1 conv only mixes channels"
            raise Fail(f"{where}: {what} has {field_name}={shown}; the text asks for {text}{extra}")


def check_norm(row, where, channels):
    config = row[3] if isinstance(row[3], dict) else {}
    if config.get("num_features") != channels:
        raise Fail(f"{where}: its BatchNorm2d has {config.get('num_features')} features; it normalises the "
                   f"output channels of the conv before it")
    if config.get("affine") is False:
        raise Fail(f"{where}: use BatchNorm2d with its default learnable weight and bias (affine=True)")


def conv_bn(x, fill, conv_row, norm_row, stride, padding, groups):
    """The stage's pre-activation, recomputed in float64 from the regenerated values."""
    import torch.nn.functional as F

    conv, norm = conv_row[0], norm_row[0]
    eps = norm_row[3].get("eps", 1e-5) if isinstance(norm_row[3], dict) else 1e-5
    eps = eps if isinstance(eps, float) else 1e-5
    need = [f"{conv}.weight", f"{norm}.weight", f"{norm}.bias", f"{norm}.running_mean", f"{norm}.running_var"]
    if any(n not in fill for n in need):
        raise Fail("the layers' parameters could not be matched to the module's table: keep the standard "
                   "nn.Conv2d and nn.BatchNorm2d parameters")
    weight = fill[need[0]].double()
    z = F.conv2d(x, weight, None, stride, padding, 1, groups)
    return F.batch_norm(z, fill[need[3]].double(), fill[need[4]].double(), fill[need[1]].double(),
                        fill[need[2]].double(), False, 0.0, eps)


def compare_linear_part(got, z, where, what, upper):
    """``got`` must equal ``z`` wherever 0 < z < upper (where the activation is the identity)."""
    import torch

    if tuple(got.shape) != tuple(z.shape):
        raise Fail(f"{where}: {what} has shape {tuple(got.shape)}, not the shape conv -> BatchNorm gives with "
                   f"the layers the text asks for: check the channels, padding and stride")
    mask = (z > 1e-3) & (z < upper - 1e-3)
    scale = max(1.0, float(z.abs().max()))      # float32 (or reduced-precision GPU) rounding, not mistakes
    if mask.any() and not torch.allclose(got[mask], z[mask], rtol=1e-3, atol=1e-3 * scale):
        raise Fail(f"{where}: {what} does not match conv -> BatchNorm computed from your layers' own weights "
                   f"(where the activation should leave the values unchanged): check the order of the steps, "
                   f"the conv arguments and that forward uses the layers it holds")


def regenerated(fill_table, seed, where):
    """``common.filled_values`` for a table of sane size (a table is student data: never trust its sizes)."""
    total = 0
    for row in fill_table if isinstance(fill_table, list) else [None]:
        if not (isinstance(row, list) and len(row) == 3 and isinstance(row[1], list)
                and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 2**16 for d in row[1])):
            raise Fail(f"{where}: its parameters could not be described")
        total += int(np.prod(row[1])) if row[1] else 1
    if total > 2**22:
        raise Fail(f"{where} holds far more parameters than the text's layers")
    return common.filled_values(fill_table, seed)


def filled_input(shape, seed):
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(tuple(shape), generator=gen, dtype=torch.float64).float().double()


def dwsep_structure_verdict(cases, results):
    for i, (_, in_ch, out_ch, stride, size, seed) in enumerate(cases):
        where = f"DWSepConv({in_ch}, {out_ch}, stride={stride})"  # the call, as the message names it
        if f"{i}.built" not in results:
            results.returned(str(i), where)
            raise Fail(f"{where} could not be built")
        table = results.returned(f"{i}.table", where)
        fill = regenerated(results.returned(f"{i}.fill", where), seed, where)
        names = {r[0] for r in table if isinstance(r, (list, tuple)) and r}
        if "dw" not in names or "pw" not in names:
            raise Fail(f"{where} needs two attributes: dw (the depthwise stage) and pw (the pointwise stage)")
        dw_conv, dw_norm = find_layers(table, "dw", where, "self.dw")
        pw_conv, pw_norm = find_layers(table, "pw", where, "self.pw")
        check_conv(dw_conv, where, "the depthwise conv",
                   {"in_channels": (in_ch, "in_ch input channels"), "out_channels": (in_ch, "in_ch output channels"),
                    "kernel_size": ((3, 3), "a 3x3 kernel"), "groups": (in_ch, "groups=in_ch"),
                    "stride": ((stride, stride), "stride=stride"), "padding": ((1, 1), "padding=1"),
                    "dilation": ((1, 1), "no dilation"), "bias": (False, "bias=False")})
        check_norm(dw_norm, where + " (depthwise stage)", in_ch)
        check_conv(pw_conv, where, "the pointwise conv",
                   {"in_channels": (in_ch, "in_ch input channels"), "out_channels": (out_ch, "out_ch output channels"),
                    "kernel_size": ((1, 1), "a 1x1 kernel"), "groups": (1, "groups=1"),
                    "stride": ((1, 1), "stride 1"), "padding": ((0, 0), "no padding"), "bias": (False, "bias=False")})
        check_norm(pw_norm, where + " (pointwise stage)", out_ch)
        x = filled_input((2, in_ch, size, size), seed + 1)
        got_dw = as_tensor(results.returned(f"{i}.dw", f"{where}: self.dw(x)"), f"{where}: self.dw(x)")
        z = conv_bn(x, fill, dw_conv, dw_norm, stride, 1, in_ch)
        compare_linear_part(got_dw, z, where, "self.dw(x)", 6.0)
        got = as_tensor(results.returned(f"{i}.out", f"{where}(x)"), f"{where}(x)")
        z = conv_bn(got_dw, fill, pw_conv, pw_norm, 1, 0, 1)     # the pointwise stage on your dw output
        compare_linear_part(got, z, where, "the block's output (self.pw applied to self.dw(x))", 6.0)


def standard_structure_verdict(cases, results):
    for i, (_, in_ch, out_ch, stride, size, seed) in enumerate(cases):
        where = f"StandardConv({in_ch}, {out_ch}, stride={stride})"  # the call, as the message names it
        if f"{i}.built" not in results:
            results.returned(str(i), where)
            raise Fail(f"{where} could not be built")
        table = results.returned(f"{i}.table", where)
        fill = regenerated(results.returned(f"{i}.fill", where), seed, where)
        conv, norm = find_layers(table, None, where, "it")
        check_conv(conv, where, "the conv",
                   {"in_channels": (in_ch, "in_ch input channels"), "out_channels": (out_ch, "out_ch output channels"),
                    "kernel_size": ((3, 3), "a 3x3 kernel"), "groups": (1, "groups=1 (a full convolution)"),
                    "stride": ((stride, stride), "stride=stride"), "padding": ((1, 1), "padding=1"),
                    "dilation": ((1, 1), "no dilation"), "bias": (False, "bias=False")})
        check_norm(norm, where, out_ch)
        x = filled_input((2, in_ch, size, size), seed + 1)
        got = as_tensor(results.returned(f"{i}.out", f"{where}(x)"), f"{where}(x)")
        # compared where 0 < z < 6 only: the activation (ReLU here) is judged by its own cell
        compare_linear_part(got, conv_bn(x, fill, conv, norm, stride, 1, 1), where, "the output", 6.0)


def structure_cases(name, rng, fixed):
    configs = [list(c) for c in fixed]
    while len(configs) < 7:
        configs.append([rng.randint(1, 24), rng.randint(1, 32), rng.choice([1, 2])])
    return [[name, a, b, s, rng.randint(5, 17), rng.randint(1, 10**6)] for a, b, s in configs]


def dwsep_structure_cases(rng):
    return structure_cases("DWSepConv", rng, [(1, 1, 1), (3, 3, 2), (rng.randint(4, 16), rng.randint(4, 16), 2)])


def standard_structure_cases(rng):
    return structure_cases("StandardConv", rng, [(1, rng.randint(2, 8), 2), (rng.randint(2, 8), 1, 1)])


def shapes_cases(rng):
    out = []
    for _ in range(5):
        in_ch, out_ch, stride, size = rng.randint(1, 24), rng.randint(1, 32), rng.choice([1, 2]), rng.randint(3, 33)
        out += [["DWSepConv", in_ch, out_ch, stride, size], ["StandardConv", in_ch, out_ch, stride, size]]
    size = rng.choice([5, 7, 9, 11])                # an odd size with stride 2
    out += [["DWSepConv", 3, 5, 2, size], ["StandardConv", 3, 5, 2, size]]
    return out


def shapes_verdict(cases, results):
    for i, (name, in_ch, out_ch, stride, size) in enumerate(cases):
        call = f"{name}({in_ch}, {out_ch}, stride={stride}) on a (2, {in_ch}, {size}, {size}) batch"
        got = _tuple(results.returned(i, call))
        side = (size - 1) // stride + 1
        if got != (2, out_ch, side, side):
            raise Fail(f"{call} returned shape {common.describe(got)}: a 3x3 conv with padding=1 and stride "
                       f"{stride} keeps ceil(size / stride) pixels per side, and the output has out_ch channels")


def activations_cases(rng):
    out = []
    for _ in range(4):
        seed = rng.randint(1, 10**6)
        in_ch, out_ch, stride = rng.randint(2, 24), rng.randint(2, 32), rng.choice([1, 2])
        out += [["DWSepConv", in_ch, out_ch, stride, seed], ["StandardConv", in_ch, out_ch, stride, seed + 7]]
    return out


def activations_verdict(cases, results):
    for i, (name, in_ch, out_ch, stride, _) in enumerate(cases):
        block = f"{name}({in_ch}, {out_ch}, stride={stride})"
        stages = (("self.dw(x)", "dw"), ("its output", "out")) if name == "DWSepConv" else (("its output", "out"),)
        if results.raised(f"{i}.out"):
            results.returned(f"{i}.out", block)          # raises: the block could not be built or run
        for stage, key in stages:
            where = f"{block} with very large pre-activations: {stage}"
            values = as_tensor(results.returned(f"{i}.{key}", where), where)
            low, high = float(values.min()), float(values.max())
            if name == "DWSepConv":
                if low < 0:
                    raise Fail(f"{where} has negative values: is the stage's last step ReLU6?")
                if high > 6 + 1e-6:
                    raise Fail(f"{where} reaches {high:.1f}: ReLU6 clamps at 6 (did you use ReLU instead of ReLU6?)")
                if not bool((values == 6).any()) or not bool((values == 0).any()):
                    raise Fail(f"{where} never reaches both 0 and 6 on very large inputs: is ReLU6 applied?")
            else:
                if low < 0:
                    raise Fail(f"{where} has negative values: end with a ReLU")
                if high <= 6:
                    raise Fail(f"{where} never exceeds 6 on very large inputs (max {high:.1f}): StandardConv "
                               f"uses the ordinary ReLU, not ReLU6")
                if not bool((values == 0).any()):
                    raise Fail(f"{where} has no zeros: ReLU sets every negative value to 0")


def param_counts_cases(rng):
    out = []
    for _ in range(4):
        in_ch, out_ch = rng.randint(1, 64), rng.randint(1, 96)
        out += [["DWSepConv", in_ch, out_ch], ["StandardConv", in_ch, out_ch]]
    return out


def param_counts_verdict(cases, results):
    for i, (name, in_ch, out_ch) in enumerate(cases):
        call = f"{name}({in_ch}, {out_ch})"
        got = results.returned(i, call)
        if not (isinstance(got, list) and len(got) == 2):
            raise Fail(f"{call}: its parameters could not be counted")
        count = common.integer(got[0], f"{call}'s parameter count")
        if name == "DWSepConv":
            expected = 9 * in_ch + 2 * in_ch + in_ch * out_ch + 2 * out_ch
            parts = "depthwise 3x3 weights (one filter per channel), pointwise 1x1 weights, and a weight and a " \
                    "bias per channel in each BatchNorm"
        else:
            expected = 9 * in_ch * out_ch + 2 * out_ch
            parts = "3x3 conv weights and a weight and a bias per output channel in the BatchNorm"
        if count != expected:
            shapes = ", ".join(f"{n} {tuple(s)}" for n, s in got[1][:12]) if isinstance(got[1], list) else "?"
            raise Fail(f"{call} has {count} parameters ({shapes}), which is not right: it should hold the "
                       f"{parts}, and no conv bias")


COMPARISON_NAMES = ["dwsep_count", "standard_count", "count_ratio", "dwsep_shape", "standard_shape"]


def comparison_cases(rng):
    return {"names": COMPARISON_NAMES}


def comparison_verdict(cases, results):
    for name in COMPARISON_NAMES:
        if name not in results:
            raise Fail(f"define {name} in the comparison cell")
    true_dwsep = 9 * 64 + 2 * 64 + 64 * 128 + 2 * 128
    true_standard = 9 * 64 * 128 + 2 * 128
    counts = {}
    for name, own_key, true_value, cls in (("dwsep_count", "own_dwsep", true_dwsep, "DWSepConv(64, 128)"),
                                           ("standard_count", "own_standard", true_standard, "StandardConv(64, 128)")):
        got = common.integer(results.returned(name, name), name)
        own = results.values.get(f"{own_key}.count")
        if got != true_value and not (isinstance(own, int) and got == own):
            has = own if isinstance(own, int) else "a different number of"
            raise Fail(f"{name} is {got}, but your {cls} has {has} parameters: count every parameter of the "
                       f"module, BatchNorm included")
        counts[name] = got
    ratio = common.number(results.returned("count_ratio", "count_ratio"), "count_ratio")
    if not common.close(ratio, counts["standard_count"] / counts["dwsep_count"]):
        raise Fail(f"count_ratio is {ratio:.6g}: it should be standard_count / dwsep_count")
    for name, own_key, cls in (("dwsep_shape", "own_dwsep", "DWSepConv(64, 128)"),
                               ("standard_shape", "own_standard", "StandardConv(64, 128)")):
        got = results.returned(name, name)
        if not isinstance(got, tuple):
            raise Fail(f"{name} is {common.describe(got)}: store the output shape as a tuple, e.g. tuple(out.shape)")
        own = results.values.get(f"{own_key}.shape")
        if got != (2, 128, 56, 56) and got != own:
            raise Fail(f"{name} is {got}, but your {cls} gives {own} on a (2, 64, 56, 56) batch: store the shape "
                       f"of the output for that batch")


HELPERS = (kernel.fill_module, kernel.module_table, seeded_input, build_filled, structure_runs)

CHECKS = [
    Check("ex3_test_param_counts", counts_cases, counts_probe, counts_verdict),
    Check("ex3_test_ratios", ratios_cases, ratios_probe, ratios_verdict, helpers=(call_with_stand_ins,)),
    Check("ex3_test_madds", madds_cases, madds_probe, madds_verdict, helpers=(call_with_stand_ins,)),
    Check("ex3_test_worked_example", worked_cases, worked_probe, worked_verdict),
    Check("ex4_test_dwsep_structure", dwsep_structure_cases, structure_probe, dwsep_structure_verdict,
          helpers=HELPERS),
    Check("ex4_test_standard_conv", standard_structure_cases, structure_probe, standard_structure_verdict,
          helpers=HELPERS),
    Check("ex4_test_shapes", shapes_cases, shapes_probe, shapes_verdict, helpers=(seeded_input,)),
    Check("ex4_test_activations", activations_cases, activations_probe, activations_verdict,
          helpers=(kernel.fill_module, seeded_input)),
    Check("ex4_test_param_counts", param_counts_cases, param_counts_probe, param_counts_verdict),
    Check("ex4_test_comparison", comparison_cases, comparison_probe, comparison_verdict, helpers=(seeded_input,)),
]
