"""Hidden checks of exercises 5-6 (transfer learning).

Exercise 5 is plain functions of numbers. Exercise 6 works on torchvision's MobileNetV2; each of its
functions is checked on its own: ``build_model`` on the models it returns (weights=None only: no
check downloads or reads torch.hub's cache), and ``count_trainable``, ``unfreeze_last_blocks`` and
``make_optimizer`` on a frozen MobileNetV2 with a new head that the probe prepares itself (a grader
stand-in for build_model's result, built from ``mobilenet_v2(weights=None, num_classes=c)``), so a
mistake in build_model is charged to build_model's cell only. The verdicts count blocks and
parameters on their own copy of the architecture (``torchvision.models.mobilenet_v2`` built here)."""
from __future__ import annotations

import functools
import math

from ..probes import Check, Fail
from . import common, kernel

SMALL, LARGE = 1_000, 50_000          # the thresholds of the exercise's table


# -- exercise 5: choose_strategy -----------------------------------------------------------------
def strategy_expected(num_images: int, similar: bool) -> str:
    # the course's table, column by column (a value on a threshold belongs to the column on its right)
    if num_images < SMALL:
        return "A"
    if num_images < LARGE:
        return "B"
    return "B" if similar else "C"


def _strategy_fail(num_images, similar, got) -> None:
    call = f"choose_strategy({num_images:_}, similar_domain={similar})"
    if not isinstance(got, str) or got not in ("A", "B", "C"):
        raise Fail(f"{call} returned {common.describe(got)}: return one of the strings 'A', 'B' or 'C'")
    if num_images in (SMALL, LARGE):
        hint = "a value equal to a threshold belongs to the column on its right (compare with <, not <=)"
    elif num_images >= LARGE:
        hint = "in the large column the domain decides: look at the last column of the table"
    else:
        hint = "find the column of this number of images in the table, then the row of the domain"
    raise Fail(f"{call} returned {got!r}, which is not what the table gives: {hint}")


def _strategy_verdict(pairs, results, prefix):
    for i, (num_images, similar) in enumerate(pairs):
        call = f"choose_strategy({num_images:_}, similar_domain={similar})"
        got = results.returned(f"{prefix}{i}", call)
        if got != strategy_expected(num_images, similar):
            _strategy_fail(num_images, similar, got)


def scenarios_cases(rng):
    # the three scenarios of the statement, and other datasets from each scenario's cell of the table
    # (below, around and above the scenario's size; off the thresholds, which the table cell checks)
    cases = [[300, True], [5_000, False], [200_000, False]]
    for low, high, similar in ((2, 299, True), (301, 699, True), (700, 989, True),
                               (1_010, 4_999, False), (5_001, 19_999, False), (20_000, 49_000, False),
                               (51_000, 199_999, False), (200_001, 10**6, False), (10**6, 10**8, False)):
        cases.append([rng.randint(low, high), similar])
    return cases


def strategy_probe(cases, rec):
    for i, (num_images, similar) in enumerate(cases):
        rec.call(f"s{i}", "choose_strategy", num_images, similar)


def scenarios_verdict(cases, results):
    _strategy_verdict(cases, results, "s")


def table_cases(rng):
    cases = [[n, similar] for similar in (True, False)
             for threshold in (SMALL, LARGE) for n in (threshold - 1, threshold, threshold + 1)]
    cases += [[1, True], [1, False], [rng.randint(10**6, 10**8), True], [rng.randint(10**6, 10**8), False]]
    cases += [[max(1, int(10 ** rng.uniform(0, 6.5))), rng.random() < 0.5] for _ in range(30)]
    rng.shuffle(cases)
    return cases


def table_verdict(cases, results):
    _strategy_verdict(cases, results, "s")


# -- exercise 5: discriminative_lrs and scenario 2 -----------------------------------------------
def lrs_expected(head_lr: float, r: float, num_groups: int) -> list[float]:
    rates = []
    for i in range(num_groups):
        rate = head_lr
        for _ in range(num_groups - 1 - i):       # one factor r per group between group i and the head
            rate *= r
        rates.append(rate)
    return rates


def lrs_cases(rng):
    cases = [[10 ** rng.uniform(-5, -1), rng.uniform(0.05, 0.95), rng.randint(2, 9)] for _ in range(12)]
    cases.append([10 ** rng.uniform(-5, -1), rng.uniform(0.05, 0.95), 1])     # the head alone
    return [[float(f"{h:.4g}"), round(r, 3), g] for h, r, g in cases]


def lrs_probe(cases, rec):
    for i, (head_lr, r, num_groups) in enumerate(cases):
        rec.call(f"l{i}", "discriminative_lrs", head_lr, r, num_groups)


def _rates(value, call):
    if not isinstance(value, list):
        raise Fail(f"{call} should return a list of learning rates, got {common.describe(value)}")
    return [common.number(v, f"each rate of {call}") for v in value]


def lrs_verdict(cases, results):
    for i, (head_lr, r, num_groups) in enumerate(cases):
        call = f"discriminative_lrs({head_lr:g}, {r:g}, {num_groups})"
        got = _rates(results.returned(f"l{i}", call), call)
        expected = lrs_expected(head_lr, r, num_groups)
        if len(got) != num_groups:
            raise Fail(f"{call} returned {len(got)} rates: return one rate per group ({num_groups} groups)")
        if not common.close(got[-1], expected[-1]):
            raise Fail(f"{call}: the last rate is {got[-1]:.6g}; the last rate belongs to the head and should "
                       f"be head_lr itself (is the list ordered from the earliest group to the head?)")
        for j, (a, b) in enumerate(zip(got, expected, strict=True)):
            if not common.close(a, b):
                raise Fail(f"{call}: rate {j} is {a:.6g}, which is not right: group i trains at "
                           f"head_lr·r^(num_groups - 1 - i)")


def scenario2_cases(rng):
    return {}


def scenario2_probe(cases, rec):
    if "SCENARIO2_BACKBONE_LR" in rec.ns:
        rec.put("value", rec.ns["SCENARIO2_BACKBONE_LR"])
    rec.call("own", "discriminative_lrs", 5e-4, 0.1, 2)


def scenario2_verdict(cases, results):
    # The statement asks for the value computed with the student's own discriminative_lrs: it passes
    # when it is the true rate OR the backbone rate that function gives (a wrong function is charged
    # to its own cell; the text says so).
    if "value" not in results:
        raise Fail("define SCENARIO2_BACKBONE_LR in the scenario-2 cell")
    value = results.returned("value", "SCENARIO2_BACKBONE_LR")
    if value is None:
        raise Fail("SCENARIO2_BACKBONE_LR is still None: store the backbone's learning rate in it")
    if isinstance(value, bool) or not isinstance(value, float):
        raise Fail(f"SCENARIO2_BACKBONE_LR should be a float, got {common.describe(value)}")
    if common.close(value, lrs_expected(5e-4, 0.1, 2)[0]):
        return
    own = results.values.get("own")
    numbers = isinstance(own, (list, tuple)) and len(own) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in own)
    if numbers and common.close(value, float(own[0])):
        return
    raise Fail(f"SCENARIO2_BACKBONE_LR = {value:.6g} is not the backbone group's rate of scenario 2: two groups "
               f"(backbone, head), head_lr = 5e-4, r = 0.1; take the backbone's entry of "
               f"discriminative_lrs(5e-4, 0.1, 2) (the group one step before the head)")


# -- exercise 6: the grader's side of MobileNetV2 --------------------------------------------------
@functools.lru_cache(maxsize=8)
def _reference_shapes(num_classes: int) -> tuple:
    """(name, shape) of every parameter of torchvision's MobileNetV2 with a num_classes head, and the
    number of blocks of ``features`` (built here, in the grader)."""
    net = mnv2_standin(num_classes)  # the same architecture; shapes only
    shapes = tuple((name, tuple(p.shape)) for name, p in net.named_parameters())
    return shapes, len(net.features)


def _feature_names(num_classes: int) -> list[str]:
    return [n for n, _ in _reference_shapes(num_classes)[0] if n.startswith("features.")]


def _numel(shape) -> int:
    return math.prod(int(s) for s in shape)


# -- kernel side: the grader's stand-in for build_model's result (no student code) --------------
def mnv2_standin(num_classes, head_trainable=True):
    """torchvision's MobileNetV2 with a num_classes Dropout + Linear head; the backbone frozen. Built by
    the probe itself, so unfreeze/optimizer/count are checked on their own.

    Its weights are left as allocated: torch.nn.init's fills, two thirds of the build, are skipped while
    it is built (and put back after), as what is checked with it is shapes and requires_grad only."""
    import torch.nn.init as init
    from torchvision.models import mobilenet_v2

    fills = ("kaiming_normal_", "kaiming_uniform_", "normal_", "uniform_", "zeros_", "ones_", "constant_")
    kept = {name: getattr(init, name) for name in fills}
    try:
        for name in fills:
            setattr(init, name, lambda tensor, *args, **kwargs: tensor)
        net = mobilenet_v2(weights=None, num_classes=int(num_classes))
    finally:
        for name, fill in kept.items():
            setattr(init, name, fill)
    net.features.requires_grad_(False)
    net.classifier.requires_grad_(bool(head_trainable))
    return net


def block_flags(model):
    """[[any trainable, all trainable] per block of model.features], [requires_grad of each head tensor]."""
    blocks = [[any(p.requires_grad for p in b.parameters()), all(p.requires_grad for p in b.parameters())]
              for b in model.features]
    return blocks, [bool(p.requires_grad) for p in model.classifier.parameters()]


# -- exercise 6: build_model ---------------------------------------------------------------------
def build_cases(rng):
    return {"classes": rng.sample([2, 3, 5, 6, 7, 9, 10, 12], 2), "seed": rng.randrange(2**31),
            "x_seed": rng.randrange(2**31), "size": rng.choice([32, 40, 48, 64]), "batch": rng.choice([1, 2])}


def build_probe(cases, rec):
    import torch

    for i, classes in enumerate(cases["classes"]):
        key = f"m{i}"
        model = rec.call(key, "build_model", num_classes=classes, weights=None)
        if model is None:
            continue
        try:
            import torchvision

            rec.put(key + "_is_mnv2", isinstance(model, torchvision.models.MobileNetV2))
            rec.put(key + "_params", [[n, [int(s) for s in p.shape], bool(p.requires_grad)]
                                      for n, p in model.named_parameters()])
            rec.put(key + "_head", module_table(model.classifier))  # noqa: F821 - a helper
            table = fill_module(model, cases["seed"] + i)  # noqa: F821 - a helper
            rec.put(key + "_table", table)
            # float64 on the model's own device: 52 layers of random weights would turn float32 rounding
            # (threads, GPU kernels) into visible differences
            model.eval().double()
            device = next(iter(model.parameters()), torch.empty(0)).device
            gen = torch.Generator().manual_seed(int(cases["x_seed"]) + i)
            x = torch.randn(cases["batch"], 3, cases["size"], cases["size"], generator=gen).double()
            with torch.no_grad():
                out, calls = run_traced(model, x.to(device))  # noqa: F821 - a helper
            rec.put(key + "_out", out)
            rec.put(key + "_calls", calls)
        except Exception as exc:  # noqa: BLE001 - recorded for the verdict
            rec.error(key + "_probe", exc)


def _expected_output(classes: int, table: list, seed: int, cases: dict):
    """The grader's own MobileNetV2 with the filled values of the student's model: its output."""
    import torch
    from torchvision.models import mobilenet_v2

    values = common.filled_values(table, seed)
    net = mobilenet_v2(weights=None, num_classes=classes)
    state = net.state_dict()
    head = {tuple(v.shape): v for name, v in values.items() if not name.startswith("features.")}
    for name, value in values.items():
        if name.startswith("features."):
            if name not in state or tuple(state[name].shape) != tuple(value.shape):
                raise Fail("model.features differs from torchvision's MobileNetV2: keep the backbone as "
                           "mobilenet_v2 builds it and replace only model.classifier")
            state[name] = value
    state["classifier.1.weight"] = head[(classes, 1280)]
    state["classifier.1.bias"] = head[(classes,)]
    net.load_state_dict(state)
    net.eval().double()
    gen = torch.Generator().manual_seed(int(cases["x_seed"]))
    x = torch.randn(cases["batch"], 3, cases["size"], cases["size"], generator=gen).double()
    with torch.no_grad():
        return net(x).numpy()


def build_verdict(cases, results):
    import numpy as np

    for i, classes in enumerate(cases["classes"]):
        key, call = f"m{i}", f"build_model(num_classes={classes}, weights=None)"
        got = results.returned(key, call)
        if results.raised(key + "_probe"):
            raise Fail(f"{call} returned {common.describe(got)}, which could not be used as a model: "
                       f"{results.raised(key + '_probe')}")
        if results.values.get(key + "_is_mnv2") is not True:
            raise Fail(f"{call} returned {common.describe(got)}: return torchvision's MobileNetV2, built with "
                       f"mobilenet_v2(weights=weights)")
        params = results.returned(key + "_params", f"the parameters of {call}")
        reference, _ = _reference_shapes(classes)
        features = [(n, tuple(s)) for n, s, _ in params if str(n).startswith("features.")]
        if features != [(n, s) for n, s in reference if n.startswith("features.")]:
            raise Fail(f"{call}: model.features differs from torchvision's MobileNetV2: keep the backbone as "
                       f"mobilenet_v2 builds it and replace only model.classifier")
        head = [(str(n), tuple(s), flag) for n, s, flag in params if not str(n).startswith("features.")]
        if any(not n.startswith("classifier.") for n, _, _ in head):
            raise Fail(f"{call}: the model has parameters outside model.features and model.classifier "
                       f"({[n for n, _, _ in head if not n.startswith('classifier.')][:3]}): put the new head "
                       f"in model.classifier")
        shapes = sorted(s for _, s, _ in head)
        if shapes == sorted([(1000, 1280), (1000,)]):
            raise Fail(f"{call}: model.classifier still ends with the ImageNet head's 1000 outputs: replace "
                       f"model.classifier with nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))")
        if shapes != sorted([(classes, 1280), (classes,)]):
            raise Fail(f"{call}: the head's parameters have shapes {shapes}; the head should hold one "
                       f"Linear(1280, num_classes) with a bias, and no other parameter")
        still = [n for n, _, flag in params if str(n).startswith("features.") and flag]
        if still:
            raise Fail(f"{call}: {len(still)} backbone tensors are still trainable (e.g. {still[0]}): freeze "
                       f"every pretrained parameter (requires_grad = False)")
        if not all(flag for _, _, flag in head):
            raise Fail(f"{call}: the new head is frozen: create it after freezing the pretrained parameters")
        _check_head_modules(call, classes, results.returned(key + "_head", "the head's modules"),
                            results.returned(key + "_calls", "the forward pass"))
        out = results.returned(key + "_out", f"the model of {call}")
        if not (hasattr(out, "shape") and tuple(out.shape) == (cases["batch"], classes)):
            raise Fail(f"{call}: for a batch of {cases['batch']} images the model returned "
                       f"{common.describe(out)}; expected shape ({cases['batch']}, {classes}), one score per class")
        table = results.returned(key + "_table", "the model's parameter table")
        case = dict(cases, x_seed=cases["x_seed"] + i)
        expected = _expected_output(classes, table, cases["seed"] + i, case)
        scale = max(1.0, float(np.abs(expected).max()))
        if not np.allclose(out, expected, rtol=1e-6, atol=1e-6 * scale):
            raise Fail(f"{call}: with the grader's weights the model's scores differ from those of MobileNetV2 "
                       f"with a Dropout + Linear head: model.classifier should compute Dropout(0.2) then "
                       f"Linear(1280, num_classes) and nothing else")


def _check_head_modules(call, classes, table, calls) -> None:
    """model.classifier by role: one Dropout(p=0.2) that runs before one Linear(1280, classes)."""
    if not isinstance(table, list) or not isinstance(calls, list):
        raise Fail(f"{call}: model.classifier could not be read")
    dropouts = [row for row in table if isinstance(row, list) and len(row) == 5 and row[2] == "Dropout"]
    linears = [row for row in table if isinstance(row, list) and len(row) == 5 and row[2] == "Linear"]
    if len(dropouts) != 1:
        raise Fail(f"{call}: model.classifier holds {len(dropouts)} nn.Dropout layers; the head is "
                   f"nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))")
    p = dropouts[0][3].get("p") if isinstance(dropouts[0][3], dict) else None
    if not isinstance(p, (int, float)) or not math.isclose(float(p), 0.2):
        raise Fail(f"{call}: the head's Dropout has p={p!r}; use nn.Dropout(0.2)")
    if len(linears) != 1:
        raise Fail(f"{call}: model.classifier holds {len(linears)} nn.Linear layers; the head is one "
                   f"Linear(1280, num_classes) after the Dropout")
    ran = [str(c[0]) for c in calls if isinstance(c, list) and c]

    def position(row):
        name = "classifier" + ("." + str(row[0]) if row[0] else "")
        return ran.index(name) if name in ran else None

    where_dropout, where_linear = position(dropouts[0]), position(linears[0])
    if where_dropout is None or where_linear is None:
        raise Fail(f"{call}: the head's Dropout and Linear did not both run in the forward pass: put them in "
                   f"model.classifier as nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))")
    if where_dropout > where_linear:
        raise Fail(f"{call}: the head runs its Linear layer before the Dropout: dropout belongs on the 1280 "
                   f"features, before the Linear layer")


# -- exercise 6: count_trainable -----------------------------------------------------------------
def count_cases(rng):
    toys = []
    for _ in range(4):
        layers = [["conv", rng.randint(1, 6), rng.randint(1, 6), rng.choice([1, 3, 5])] for _ in range(3)]
        layers += [["bn", rng.randint(1, 9)], ["linear", rng.randint(1, 20), rng.randint(1, 20)]]
        toys.append({"layers": layers, "flags": [rng.random() < 0.5 for _ in range(10)]})
    classes = rng.choice([2, 3, 5, 6, 7, 9])
    total = len(_reference_shapes(classes)[0])
    scattered = sorted(rng.sample(range(total), rng.randint(5, 40)))
    return {"toys": toys, "classes": classes, "scattered": scattered}


def count_probe(cases, rec):
    import torch.nn as nn

    for i, toy in enumerate(cases["toys"]):
        layers = []
        for spec in toy["layers"]:
            if spec[0] == "conv":
                layers.append(nn.Conv2d(spec[1], spec[2], spec[3]))
            elif spec[0] == "bn":
                layers.append(nn.BatchNorm2d(spec[1]))
            else:
                layers.append(nn.Linear(spec[1], spec[2]))
        net = nn.ModuleList(layers)
        for p, flag in zip(net.parameters(), toy["flags"], strict=True):
            p.requires_grad_(bool(flag))
        rec.call(f"t{i}", "count_trainable", net)
    net = mnv2_standin(cases["classes"])
    rec.call("head_only", "count_trainable", net)
    chosen = set(cases["scattered"])
    for j, p in enumerate(net.parameters()):
        p.requires_grad_(j in chosen)
    rec.call("scattered", "count_trainable", net)


def _toy_shapes(layers) -> list[tuple]:
    shapes = []
    for spec in layers:
        if spec[0] == "conv":
            _, cin, cout, k = spec
            shapes += [(cout, cin, k, k), (cout,)]
        elif spec[0] == "bn":
            shapes += [(spec[1],), (spec[1],)]
        else:
            _, fin, fout = spec
            shapes += [(fout, fin), (fout,)]
    return shapes


def _expect_count(results, key, expected, call, what):
    got = results.returned(key, call)
    if isinstance(got, bool) or not isinstance(got, int):
        raise Fail(f"{call} should return an int, got {common.describe(got)}: sum p.numel() as Python ints")
    if got != expected:
        raise Fail(f"{call} returned {got:,} for {what}: count every scalar of each parameter with "
                   f"requires_grad=True (p.numel()), and nothing else")


def count_verdict(cases, results):
    for i, toy in enumerate(cases["toys"]):
        shapes = _toy_shapes(toy["layers"])
        expected = sum(_numel(s) for s, flag in zip(shapes, toy["flags"], strict=True) if flag)
        _expect_count(results, f"t{i}", expected, "count_trainable(model)",
                      "a small model of 3 Conv2d, a BatchNorm2d and a Linear with some parameters frozen")
    shapes, _ = _reference_shapes(cases["classes"])
    head = sum(_numel(s) for n, s in shapes if not n.startswith("features."))
    _expect_count(results, "head_only", head, "count_trainable(model)",
                  "a MobileNetV2 whose backbone is frozen and whose new head is trainable")
    chosen = set(cases["scattered"])
    expected = sum(_numel(s) for j, (_, s) in enumerate(shapes) if j in chosen)
    _expect_count(results, "scattered", expected, "count_trainable(model)",
                  "a MobileNetV2 with some scattered parameter tensors trainable")


# -- exercise 6: unfreeze_last_blocks ------------------------------------------------------------
def unfreeze_cases(rng):
    _, blocks = _reference_shapes(2)
    runs = [{"n": 0}, {"n": 1}, {"n": rng.randint(2, blocks - 2)}, {"n": blocks},
            {"n": rng.randint(blocks + 1, 3 * blocks)},
            {"n": rng.randint(1, 6), "head": False},                          # a frozen head stays frozen
            {"n": rng.randint(2, 6), "pre": sorted(rng.sample(range(blocks - 8), 2))}]  # earlier trainable blocks stay
    return {"classes": rng.choice([2, 3, 5, 6, 7, 9]), "runs": runs}


def unfreeze_probe(cases, rec):
    import copy

    base = mnv2_standin(cases["classes"])
    for i, run in enumerate(cases["runs"]):
        model = copy.deepcopy(base)
        if not run.get("head", True):
            model.classifier.requires_grad_(False)
        for index in run.get("pre", []):
            model.features[index].requires_grad_(True)
        try:
            returned = rec.lookup("unfreeze_last_blocks")(model, run["n"])
        except Exception as exc:  # noqa: BLE001 - the student's exception is data for the verdict
            rec.error(f"u{i}", exc)
            continue
        rec.put(f"u{i}", returned)
        rec.put(f"u{i}_same", returned is model)
        rec.put(f"u{i}_flags", block_flags(model))


def unfreeze_verdict(cases, results):
    _, blocks = _reference_shapes(cases["classes"])
    for i, run in enumerate(cases["runs"]):
        n = run["n"]
        call = f"unfreeze_last_blocks(model, {n})"
        setting = ("on a MobileNetV2 whose backbone is frozen" + (" and whose head is frozen too"
                   if not run.get("head", True) else "") + (f" except blocks {run['pre']}" if run.get("pre") else ""))
        results.returned(f"u{i}", call)
        if results.values.get(f"u{i}_same") is not True:
            raise Fail(f"{call} {setting} did not return the model it was given: change it in place and "
                       f"return it")
        flags = results.returned(f"u{i}_flags", call)
        blocks_got, head_got = flags
        if not isinstance(blocks_got, list) or len(blocks_got) != blocks:
            raise Fail(f"{call} changed the number of blocks of model.features: only change requires_grad")
        wanted = set(range(max(blocks - n, 0), blocks)) | set(run.get("pre", []))
        partly = [j for j, (anyp, _) in enumerate(blocks_got) if anyp]
        fully = [j for j, (_, allp) in enumerate(blocks_got) if allp]
        if set(partly) != wanted or set(fully) != wanted:
            if n == 0:
                hint = "n = 0 must unfreeze nothing (model.features[-0:] is the whole sequence)"
            elif set(partly) < wanted and run.get("pre") and set(partly) >= wanted - set(run["pre"]):
                hint = "blocks that were already trainable were frozen again: leave all other parameters as they are"
            elif set(partly) == wanted:
                hint = "some parameters of the unfrozen blocks are still frozen: unfreeze every parameter of them"
            else:
                hint = (f"unfreeze every parameter of the LAST {n} blocks of model.features (all of them when n "
                        f"is larger than the number of blocks)")
            raise Fail(f"{call} {setting}: afterwards the blocks with trainable parameters are {partly}: {hint}")
        head_expected = bool(run.get("head", True))
        if not isinstance(head_got, list) or any(flag != head_expected for flag in head_got):
            raise Fail(f"{call} {setting} changed requires_grad in model.classifier: leave all other parameters "
                       f"as they are")


# -- exercise 6: make_optimizer ------------------------------------------------------------------
def optimizer_cases(rng):
    classes = rng.choice([2, 3, 5, 6, 7, 9])
    features = len(_feature_names(classes))

    def rates():
        return {"backbone_lr": rng.choice([1e-5, 3e-5, 5e-5, 2e-4]), "head_lr": rng.choice([5e-4, 2e-3, 1e-2])}

    settings = [{"kind": "none", **rates()},
                {"kind": "last", "k": rng.randint(1, 6), **rates()},
                {"kind": "scattered", "idx": sorted(rng.sample(range(features), rng.randint(10, 50))), **rates()},
                {"kind": "last", "k": rng.randint(1, 6)}]                   # the default learning rates
    rng.shuffle(settings)
    return {"classes": classes, "settings": settings}


def optimizer_probe(cases, rec):
    import copy

    import torch

    base = mnv2_standin(cases["classes"])
    for i, setting in enumerate(cases["settings"]):
        model = copy.deepcopy(base)
        if setting["kind"] == "last":
            for block in list(model.features)[-int(setting["k"]):]:
                block.requires_grad_(True)
        elif setting["kind"] == "scattered":
            chosen = set(setting["idx"])
            for j, p in enumerate(model.features.parameters()):
                p.requires_grad_(j in chosen)
        kwargs = {k: setting[k] for k in ("backbone_lr", "head_lr") if k in setting}
        optimizer = rec.call(f"o{i}", "make_optimizer", model, **kwargs)
        if optimizer is None:
            continue
        try:
            names = {id(p): n for n, p in model.named_parameters()}
            rec.put(f"o{i}_adam", isinstance(optimizer, torch.optim.Adam))
            rec.put(f"o{i}_groups", [[g["lr"], [names.get(id(p), "?") for p in g["params"]]]
                                     for g in optimizer.param_groups])
        except Exception as exc:  # noqa: BLE001 - recorded for the verdict
            rec.error(f"o{i}_groups", exc)


def optimizer_verdict(cases, results):
    classes = cases["classes"]
    shapes, _ = _reference_shapes(classes)
    features = _feature_names(classes)
    head_names = {n for n, _ in shapes if not n.startswith("features.")}
    for i, setting in enumerate(cases["settings"]):
        backbone_lr, head_lr = setting.get("backbone_lr", 1e-4), setting.get("head_lr", 1e-3)
        if setting["kind"] == "none":
            what, backbone = "no backbone parameter trainable", set()
        elif setting["kind"] == "last":
            k = setting["k"]
            what = f"the last {k} blocks of model.features trainable"
            backbone = {n for n in features if int(n.split(".")[1]) >= _reference_shapes(classes)[1] - k}
        else:
            what = "a few scattered backbone tensors trainable (not whole blocks)"
            backbone = {features[j] for j in setting["idx"]}
        args = f", backbone_lr={backbone_lr:g}, head_lr={head_lr:g}" if "head_lr" in setting else ""
        call = f"make_optimizer(model{args}) with {what}"
        optimizer = results.returned(f"o{i}", call)
        if results.values.get(f"o{i}_adam") is not True:
            raise Fail(f"{call} returned {common.describe(optimizer)}: return a torch.optim.Adam")
        groups = results.returned(f"o{i}_groups", f"the parameter groups of {call}")
        listed = [n for _, names in groups for n in names]
        if "?" in listed:
            raise Fail(f"{call}: the optimizer holds tensors that are not parameters of the model: pass the "
                       f"model's own parameters")
        if len(listed) != len(set(listed)):
            raise Fail(f"{call}: a parameter appears twice (in two groups, or twice in one)")
        trainable = head_names | backbone
        frozen = set(listed) - trainable
        if frozen:
            raise Fail(f"{call}: {len(frozen)} frozen parameter tensors are in the optimizer: pass only "
                       f"parameters with requires_grad=True")
        missing = trainable - set(listed)
        if missing:
            raise Fail(f"{call}: {len(missing)} trainable parameter tensors are missing from the optimizer "
                       f"(e.g. {sorted(missing)[0]})")
        seen = []
        for lr, names in groups:
            names = set(names)
            if not names:
                raise Fail(f"{call}: the optimizer has an empty parameter group: leave out a group with no "
                           f"trainable parameter" + (" (here: the backbone's)" if not backbone else ""))
            if not (names <= head_names or not names & head_names):
                raise Fail(f"{call}: a parameter group mixes head and backbone parameters: one group for "
                           f"model.classifier, one for the rest")
            kind = "head" if names <= head_names else "backbone"
            rate = common.number(lr, f"the {kind} group's lr")
            expected = head_lr if kind == "head" else backbone_lr
            if not common.close(rate, expected):
                raise Fail(f"{call}: the {kind} group has lr={rate:g}: the head group trains at head_lr, the "
                           f"backbone group at backbone_lr")
            seen.append(kind)
        if sorted(seen) != (["head"] if not backbone else ["backbone", "head"]):
            raise Fail(f"{call}: expected one head group" + (" and one backbone group" if backbone else "")
                       + f", got groups {sorted(seen)}")


CHECKS = [
    Check("ex5_test_scenarios", scenarios_cases, strategy_probe, scenarios_verdict),
    Check("ex5_test_strategy_table", table_cases, strategy_probe, table_verdict),
    Check("ex5_test_discriminative_lrs", lrs_cases, lrs_probe, lrs_verdict),
    Check("ex5_test_scenario2_lr", scenario2_cases, scenario2_probe, scenario2_verdict),
    Check("ex6_test_build_model", build_cases, build_probe, build_verdict,
          helpers=(kernel.fill_module, kernel.module_table, kernel.run_traced)),
    Check("ex6_test_count_trainable", count_cases, count_probe, count_verdict, helpers=(mnv2_standin,)),
    Check("ex6_test_unfreeze", unfreeze_cases, unfreeze_probe, unfreeze_verdict,
          helpers=(mnv2_standin, block_flags)),
    Check("ex6_test_optimizer", optimizer_cases, optimizer_probe, optimizer_verdict, helpers=(mnv2_standin,)),
]
