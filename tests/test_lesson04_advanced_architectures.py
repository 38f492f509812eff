"""Lesson 4 (advanced architectures): the notebook runs top to bottom, and its pure functions and widgets
agree with torchvision's real models and with arithmetic done independently here."""

import ast
import itertools
import math
from types import SimpleNamespace

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision import models
from torchvision.models import get_model_weights

from tests.conftest import REPO
from tools.notebooks import FUNCTIONS_TAG, execute_notebook, notebook_namespace, outputs_text, stderr_text

NOTEBOOK = REPO / "notebooks" / "04_advanced_architectures.ipynb"
EFFNET_NAMES = [f"efficientnet_b{i}" for i in range(8)]


@pytest.fixture(scope="module")
def ns():
    return notebook_namespace(NOTEBOOK)


@pytest.fixture(scope="module")
def effnets(ns):
    return ns["efficientnet_records"]()


def meta_model(name):
    """A torchvision model on the meta device, built here without the notebook's helper."""
    with torch.device("meta"):
        return getattr(models, name)()


def numel(module):
    return sum(p.numel() for p in module.parameters())


def controls(widget):
    return {c.description: c for c in widget.children if getattr(c, "description", "")}


# ----------------------------------------------------------------------------------------------- notebook


def test_notebook_is_self_contained_and_well_formed():
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4 and all(c.get("id") for c in nb.cells), "nbformat 4 with cell ids"
    code = [c for c in nb.cells if c.cell_type == "code"]
    functions = [c for c in code if FUNCTIONS_TAG in c.metadata.get("tags", [])]
    assert functions, "pure functions and widget builders live in cells tagged 'functions'"
    for cell in functions:  # cheap and side-effect free: nothing displayed, nothing plotted when they run
        tree = ast.parse(cell.source)
        uses_pyplot = any(isinstance(n, ast.Name) and n.id == "plt" for n in ast.walk(tree))
        assert not uses_pyplot, f"widgets draw on a Figure with show_figure, not pyplot: {cell.source[:80]}"
        top_level = [ast.unparse(node) for node in tree.body if isinstance(node, ast.Expr)]
        assert not any("display(" in line or "show_figure(" in line for line in top_level), cell.source[:80]
    for cell in code:
        assert not cell.outputs and cell.execution_count is None, "commit the lesson without outputs"
        assert "from tests" not in cell.source and "import autograder" not in cell.source, "must run on Colab"
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert markdown.count("<details>") >= 5, "quick checks are collapsible <details> blocks"


@pytest.fixture(scope="module")
def executed():
    """The lesson run once, top to bottom, for every test of this module that reads its outputs."""
    nb, seconds = execute_notebook(NOTEBOOK, timeout=300)
    print(f"\n{NOTEBOOK.name} executed in {seconds:.1f} s")  # a figure for the report, never asserted
    return nb


@pytest.mark.slow
def test_notebook_runs_top_to_bottom_without_warnings(executed):
    nb = executed
    text = outputs_text(nb)
    assert stderr_text(nb) == "", f"the lesson wrote to stderr (warnings?):\n{stderr_text(nb)}"
    for evidence in [
        "parameter counts of the built models equal weights.meta['num_params'] for all eight",
        "all five levels match the stride arithmetic",
        "matches the formula",
        "nearest real variant:",
        "Pareto front",
    ]:
        assert evidence in text, f"expected the lesson to print {evidence!r}"


# ------------------------------------------------------------------------------------- compound scaling


def test_compound_scaling_follows_the_rule_for_many_inputs(ns):
    for phi, alpha, beta, gamma in itertools.product([0, 0.5, 1, 2.3, 7], [1.0, 1.2, 1.5], [1.1, 1.3], [1.15, 2.0]):
        s = ns["compound_scaling"](phi, alpha, beta, gamma)
        assert s["depth_mult"] == pytest.approx(alpha**phi)
        assert s["width_mult"] == pytest.approx(beta**phi)
        assert s["resolution_mult"] == pytest.approx(gamma**phi)
        assert s["resolution"] == pytest.approx(224 * gamma**phi)
        assert s["flops_factor"] == pytest.approx((alpha * beta**2 * gamma**2) ** phi)
    assert ns["compound_scaling"](0)["flops_factor"] == 1


def test_paper_constants_about_double_the_flops_per_step(ns):
    alpha, beta, gamma = ns["PAPER_ALPHA"], ns["PAPER_BETA"], ns["PAPER_GAMMA"]
    assert (alpha, beta, gamma) == (1.2, 1.1, 1.15)
    assert 1.85 < ns["compound_scaling"](1)["flops_per_step"] < 2.05


def test_flops_rule_matches_multiply_adds_of_a_real_convolution(ns):
    """FLOPs x width^2 x resolution^2: count a real conv's multiply-adds at two widths and resolutions."""

    def conv_macs(channels, side):
        conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        out = conv(torch.zeros(1, channels, side, side))
        return out.numel() * conv.weight[0].numel()  # every output value: one dot product over a filter

    for width, resolution in [(2, 2), (3, 1), (1, 3), (2, 1.5)]:
        ratio = conv_macs(int(8 * width), int(16 * resolution)) / conv_macs(8, 16)
        assert ratio == pytest.approx(ns["flops_factor"](1, width, resolution))


def make_divisible(value, divisor=8):
    # round to the nearest multiple of `divisor`, never more than 10% down (MobileNet / EfficientNet rounding)
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def test_efficientnet_records_agree_with_torchvision(effnets):
    b0 = meta_model("efficientnet_b0")
    b0_stage_blocks = [len(stage) for stage in b0.features[1:-1]]
    b0_last_stage_channels = b0.features[-2][-1].block[-1][0].out_channels
    assert [r["name"] for r in effnets] == EFFNET_NAMES
    for r in effnets:
        weights = get_model_weights(r["name"]).DEFAULT
        assert r["params"] == weights.meta["num_params"] == r["meta_params"]
        assert r["gflops"] == weights.meta["_ops"]
        assert r["acc1"] == weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
        assert r["resolution"] == weights.transforms().crop_size[0]
        # the recorded multipliers explain the real architecture: blocks rounded up, channels to multiples of 8
        assert r["blocks"] == sum(math.ceil(n * r["depth_mult"]) for n in b0_stage_blocks), r["name"]
        assert r["head_channels"] == 4 * make_divisible(b0_last_stage_channels * r["width_mult"]), r["name"]
    b7 = meta_model("efficientnet_b7")
    assert [len(s) for s in b7.features[1:-1]] == [math.ceil(n * effnets[7]["depth_mult"]) for n in b0_stage_blocks]


@pytest.mark.parametrize("name", ["efficientnet_b0", "resnet18", "mobilenet_v3_small"])
def test_meta_build_counts_like_a_real_build_and_leaves_init_alone(ns, name):
    on_meta = ns["build_on_meta"](getattr(models, name))
    assert next(on_meta.parameters()).device.type == "meta"
    assert numel(on_meta) == numel(getattr(models, name)(weights=None))
    layer = nn.Linear(64, 64)  # nn.init must work again once the meta build is over
    assert layer.weight.abs().sum() > 0 and nn.init.kaiming_normal_(torch.zeros(4, 4)).abs().sum() > 0


def test_flops_rule_predicts_torchvision_gflops(ns, effnets):
    rows = ns["compare_with_rule"](effnets)
    for row in rows:
        assert row["flops_effective"] == pytest.approx(row["flops_measured"], rel=0.2), row["name"]
        assert row["params_rule"] == pytest.approx(row["params_measured"], rel=0.15), row["name"]

    def mean_log_error(key):
        return sum(abs(math.log(r[key] / r["flops_measured"])) for r in rows) / len(rows)

    assert mean_log_error("flops_effective") < mean_log_error("flops_nominal"), "rounding explains the gap"
    assert ns["fitted_phi"](1.2**3.5, 1.2) == pytest.approx(3.5)
    assert rows[0]["phi_depth"] == rows[0]["phi_width"] == rows[0]["phi_resolution"] == 0


def test_nearest_variant_recovers_each_torchvision_variant(ns, effnets):
    nearest = ns["nearest_variant"]
    for r in effnets:
        assert nearest(r["depth_mult"], r["width_mult"], r["resolution"], effnets) is r
        assert nearest(r["depth_mult"] * 1.01, r["width_mult"] * 0.99, r["resolution"] + 2, effnets) is r
    # the ideal rule walks through the variants in order as phi grows
    picks = [
        nearest(s["depth_mult"], s["width_mult"], s["resolution"], effnets)["name"]
        for s in (ns["compound_scaling"](phi / 4) for phi in range(33))
    ]
    indices = [EFFNET_NAMES.index(p) for p in picks]
    assert indices == sorted(indices) and indices[0] == 0 and indices[-1] == 7


def test_scaling_widget_is_driven_by_its_sliders(ns, effnets, capsys):
    widget = ns["make_scaling_widget"](effnets)
    ctl = controls(widget)
    assert {"φ", "α (depth)", "β (width)", "γ (resolution)"} <= set(ctl)
    ctl["φ"].value = 0.0
    assert widget.result["nearest"] == "efficientnet_b0" and widget.result["flops_factor"] == 1
    ctl["α (depth)"].value = 1.3
    ctl["φ"].value = 2.5
    expected = ns["compound_scaling"](2.5, 1.3, ctl["β (width)"].value, ctl["γ (resolution)"].value)
    for key in ("depth_mult", "width_mult", "resolution", "flops_factor"):
        assert widget.result[key] == pytest.approx(expected[key])
    assert f"nearest real variant: {widget.result['nearest']}" in capsys.readouterr().out


def test_scaling_plot_puts_the_choice_on_the_real_b0_to_b7_points(ns, effnets):
    # The reference points, read here straight from torchvision's weights metadata.
    meta = [get_model_weights(name).DEFAULT.meta for name in EFFNET_NAMES]
    gflops = [m["_ops"] for m in meta]
    acc1 = [m["_metrics"]["ImageNet-1K"]["acc@1"] for m in meta]
    for phi, alpha in [(0.0, 1.2), (3.0, 1.2), (6.5, 1.5)]:
        report = ns["scaling_report"](phi, alpha, 1.1, 1.15, effnets)
        fig = ns["plot_scaling"](report, effnets)
        (ax,) = fig.axes
        real, budget, yours, ring = ax.lines  # B0..B7, your GFLOPS as a vertical line and a star, the nearest
        assert list(real.get_xdata()) == gflops and list(real.get_ydata()) == acc1
        factor = ns["compound_scaling"](phi, alpha, 1.1, 1.15)["flops_factor"]
        assert yours.get_xdata()[0] == budget.get_xdata()[0] == pytest.approx(gflops[0] * factor)
        nearest = EFFNET_NAMES.index(report["nearest"])
        assert (ring.get_xdata()[0], ring.get_ydata()[0]) == (gflops[nearest], acc1[nearest])
        assert ax.get_xscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
        assert [t.get_text() for t in ax.texts] == [f"B{i}" for i in range(8)]


# ----------------------------------------------------------------------- grouped convs, width, ConvNeXt


def test_conv_weight_count_on_real_layers(ns):
    for c_in, c_out, k, groups in [(3, 8, 3, 1), (64, 128, 1, 1), (128, 128, 3, 32), (96, 96, 7, 96), (12, 18, 5, 6)]:
        layer = nn.Conv2d(c_in, c_out, k, groups=groups, bias=False)
        assert ns["conv_weight_count"](c_in, c_out, k, groups) == layer.weight.numel()
    with pytest.raises(ValueError):
        ns["conv_weight_count"](10, 12, 3, groups=4)


@pytest.mark.parametrize("name", ["resnet50", "resnext50_32x4d", "wide_resnet50_2", "resnext101_64x4d"])
def test_bottleneck_formula_on_every_block(ns, name):
    model = meta_model(name)
    blocks = [b for layer in (model.layer1, model.layer2, model.layer3, model.layer4) for b in layer]
    for block in blocks:
        facts = ns["bottleneck_facts"](block)
        assert facts["conv2_formula"] == facts["conv2_real"] and facts["block_formula"] == facts["block_real"]


def test_resnext_and_wide_resnet_arithmetic_on_real_layers():
    r50, rx50, wide = meta_model("resnet50"), meta_model("resnext50_32x4d"), meta_model("wide_resnet50_2")
    base, wider = r50.layer1[1], wide.layer1[1]
    assert wider.conv2.in_channels == 2 * base.conv2.in_channels
    assert wider.conv2.weight.numel() == 4 * base.conv2.weight.numel()  # 3x3: width squared
    assert wider.conv1.weight.numel() == 2 * base.conv1.weight.numel()  # 1x1: linear in width
    grouped = rx50.layer1[1].conv2
    dense = nn.Conv2d(grouped.in_channels, grouped.out_channels, 3, bias=False, device="meta")
    assert dense.weight.numel() == grouped.groups * grouped.weight.numel()


@pytest.mark.parametrize("name", ["convnext_tiny", "convnext_base"])
def test_convnext_block_formula_on_every_block(ns, name):
    from torchvision.models.convnext import CNBlock

    model = meta_model(name)
    blocks = [m for m in model.modules() if isinstance(m, CNBlock)]
    for block in blocks:
        assert numel(block) == ns["convnext_block_params"](block.block[0].in_channels)
    stages = ns["convnext_stage_facts"](model)
    assert sum(n for _, n in stages) == len(blocks)
    assert [c for c, _ in stages] == [stages[0][0] * 2**i for i in range(4)]


# ------------------------------------------------------------------------------------------------ ViT


@pytest.mark.parametrize("name", ["vit_b_16", "vit_b_32", "vit_l_16"])
def test_vit_formula_matches_torchvision(ns, name):
    model = meta_model(name)
    config = ns["torchvision_vit_config"](model)
    assert ns["vit_param_count"](**config) == numel(model) == get_model_weights(name).DEFAULT.meta["num_params"]


@pytest.mark.parametrize(
    "image_size,patch,dim,depth,heads,mlp,classes",
    [(32, 4, 64, 2, 2, 128, 5), (64, 8, 128, 4, 4, 512, 10), (48, 16, 96, 1, 3, 192, 3)],
)
def test_small_vit_counts_and_shapes(ns, image_size, patch, dim, depth, heads, mlp, classes):
    torch.manual_seed(0)
    vit = ns["SmallViT"](image_size, patch, dim, depth, heads, mlp, classes).eval()
    assert numel(vit) == ns["vit_param_count"](image_size, patch, dim, depth, mlp, classes)
    trace = []
    with torch.no_grad():
        logits = vit(torch.rand(2, 3, image_size, image_size), trace=trace)
    n = (image_size // patch) ** 2
    shapes = dict(trace)
    assert logits.shape == (2, classes)
    assert shapes["patch grid (conv, kernel = stride = p)"] == (2, dim, image_size // patch, image_size // patch)
    assert shapes["patch tokens (flatten + transpose)"] == (2, n, dim)
    assert shapes["with [CLS] prepended"] == shapes["after the transformer encoder"] == (2, n + 1, dim)


def test_token_stats_agree_with_running_the_layers(ns):
    for image_size, patch in [(224, 16), (225, 16), (100, 14), (64, 32), (384, 8)]:
        stats = ns["vit_token_stats"](image_size, patch, dim=32, heads=4)
        grid = image_size // patch
        assert ns["measure_patch_tokens"](image_size, patch, dim=32) == (1, grid * grid, 32)
        assert stats["seq_len"] == grid * grid + 1
        assert stats["uncovered_pixels_per_side"] == image_size % patch
        mha = nn.MultiheadAttention(32, 4, batch_first=True)
        tokens = torch.zeros(1, stats["seq_len"], 32)
        _, scores = mha(tokens, tokens, tokens, need_weights=True, average_attn_weights=False)
        assert scores.numel() == stats["attention_entries_per_layer"]
        assert scores.shape[-1] ** 2 == stats["attention_entries_per_head"]


def test_attention_and_linear_costs_match_a_flop_counter(ns):
    dim, heads, seq_len = 48, 4, 50  # 7x7 patches + [CLS]
    stats = ns["vit_token_stats"](7 * 16, 16, dim=dim, heads=heads)
    assert stats["seq_len"] == seq_len
    mha = nn.MultiheadAttention(dim, heads, batch_first=True)
    mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
    tokens = torch.zeros(1, seq_len, dim)
    with FlopCounterMode(display=False) as counter:  # counts 2 FLOPs per multiply-add
        mlp(mha(tokens, tokens, tokens, need_weights=True)[0])
    counts = {str(op): flops for op, flops in counter.get_flop_counts()["Global"].items()}
    assert counts["aten.bmm"] == 2 * stats["attention_macs"]  # Q K^T and attention x V
    assert counts["aten.addmm"] == 2 * stats["linear_macs"]  # q/k/v/out projections and the MLP
    bigger = ns["vit_token_stats"](14 * 16, 16, dim=dim, heads=heads)
    assert bigger["attention_entries_per_head"] / stats["attention_entries_per_head"] == pytest.approx(
        (4 * 49 + 1) ** 2 / 50**2
    )


def test_tokens_widget_is_driven_by_its_controls(ns, capsys):
    widget = ns["make_tokens_widget"](dim=32, heads=2)
    ctl = controls(widget)
    ctl["patch"].value = 14
    ctl["image side"].value = 104
    assert widget.result["num_patches"] == (104 // 14) ** 2 and widget.result["agrees"]
    assert widget.result["measured_shape"] == (1, (104 // 14) ** 2, 32)
    assert widget.result["attention_entries_per_layer"] == 2 * ((104 // 14) ** 2 + 1) ** 2
    out = capsys.readouterr().out
    assert "104x104 image, 14x14 patches" in out and "matches" in out


@pytest.mark.parametrize("image_size, patch", [(224, 16), (104, 14), (640, 32), (32, 4)])
def test_token_plot_marks_the_chosen_side_on_the_formula_curves(ns, image_size, patch):
    report = ns["token_report"](image_size, patch, dim=64, heads=4)
    fig = ns["plot_token_costs"](report, dim=64, heads=4)
    ax_mem, ax_share = fig.axes
    for ax, key, scale in [(ax_mem, "attention_mib_per_layer", 1), (ax_share, "attention_share", 100)]:
        curve, mark = ax.lines
        sides = list(curve.get_xdata())
        assert sides == list(range(32, 641, 8))
        tokens = [(side // patch) ** 2 + 1 for side in sides]  # patches + [CLS], computed here
        if key == "attention_mib_per_layer":
            expected = [4 * n * n * 4 / 2**20 for n in tokens]
        else:
            expected = [100 * 2 * n * n * 64 / (2 * n * n * 64 + 12 * n * 64 * 64) for n in tokens]
        assert list(curve.get_ydata()) == pytest.approx(expected)
        assert mark.get_xdata()[0] == image_size and mark.get_ydata()[0] == pytest.approx(scale * report[key])
        assert ax.get_xlabel() and ax.get_ylabel()


# ------------------------------------------------------------------------------------------ multi-task


@pytest.fixture(scope="module")
def multitask_batch():
    torch.manual_seed(0)
    images = torch.rand(4, 3, 32, 32)
    targets = {
        "class": torch.tensor([0, 2, 1, 2]),
        "box": torch.rand(4, 4),
        "embedding": F.normalize(torch.randn(4, 8), dim=1),
    }
    return images, targets


def test_multitask_step_moves_the_backbone_and_every_head(ns, multitask_batch):
    images, targets = multitask_batch
    torch.manual_seed(0)
    model = ns["MultiTaskNet"](num_classes=3, embedding_dim=8).train()
    weights = {"class": 1.0, "box": 5.0, "embedding": 0.5}
    step = ns["multitask_step"](model, images, targets, weights, lr=1e-3)  # small enough to be a descent step
    before = step["losses_before"]
    assert step["total_before"] == pytest.approx(sum(weights[t] * before[t] for t in weights), rel=1e-5)
    assert set(step["moved"]) == {"backbone", "head class", "head box", "head embedding"}
    assert all(distance > 0 for distance in step["moved"].values()), step["moved"]
    assert set(step["task_gradients"]) == set(weights)
    assert all(torch.isfinite(g).all() and g.norm() > 0 for g in step["task_gradients"].values())
    assert step["total_after"] < step["total_before"]


def test_task_weights_decide_which_heads_learn(ns, multitask_batch):
    images, targets = multitask_batch
    torch.manual_seed(0)
    model = ns["MultiTaskNet"](num_classes=3, embedding_dim=8).train()
    step = ns["multitask_step"](model, images, targets, {"class": 1.0, "box": 0.0, "embedding": 0.0})
    assert step["moved"]["backbone"] > 0 and step["moved"]["head class"] > 0
    assert step["moved"]["head box"] == 0 and step["moved"]["head embedding"] == 0
    losses = ns["task_losses"](model(images), targets)  # a head gets no gradient from another task's loss
    box_grads = torch.autograd.grad(losses["class"], list(model.heads["box"].parameters()), allow_unused=True)
    assert all(g is None for g in box_grads)


# ------------------------------------------------------------------------------------------------- FPN

FPN_SIZES = [(64, 64), (100, 150), (97, 203), (33, 47), (128, 96)]


@pytest.fixture(scope="module")
def backbone(ns):
    torch.manual_seed(0)
    return ns["resnet50_c3_c5"]().eval()


def test_expected_pyramid_shapes_are_ceil_of_the_strides(ns):
    for h, w in itertools.product(range(1, 300, 7), [1, 31, 32, 33, 150, 203]):
        shapes = ns["expected_pyramid_shapes"](h, w, channels=64)
        for level in range(3, 8):
            assert shapes[f"P{level}"] == (64, math.ceil(h / 2**level), math.ceil(w / 2**level)), (h, w, level)


@pytest.mark.parametrize("height,width", FPN_SIZES)
def test_fpn_output_shapes_for_several_input_sizes(ns, backbone, height, width):
    torch.manual_seed(0)
    fpn = ns["FPN"]().eval()
    with torch.no_grad():
        features = backbone(torch.rand(1, 3, height, width))
        pyramid = fpn(features)
    for level, name in [(3, "C3"), (4, "C4"), (5, "C5")]:
        assert features[name].shape[-2:] == (math.ceil(height / 2**level), math.ceil(width / 2**level))
    assert list(pyramid) == ["P3", "P4", "P5", "P6", "P7"]
    for level in range(3, 8):
        expected = (1, 256, math.ceil(height / 2**level), math.ceil(width / 2**level))
        assert tuple(pyramid[f"P{level}"].shape) == expected, f"P{level} for a {height}x{width} input"


@pytest.mark.parametrize("in_channels,channels,side", [((512, 1024, 2048), 256, 100), ((16, 32, 64), 8, 75)])
def test_fpn_equals_torchvision_feature_pyramid(ns, in_channels, channels, side):
    torch.manual_seed(0)
    ours = ns["FPN"](in_channels, channels).eval()
    theirs = ns["torchvision_fpn_from"](ours).eval()
    sizes = [math.ceil(side / 2**level) for level in (3, 4, 5)]
    features = {
        name: torch.randn(1, c, s, s + 1) for name, c, s in zip(("C3", "C4", "C5"), in_channels, sizes, strict=True)
    }
    with torch.no_grad():
        mine, reference = ours(features), theirs(features)
    assert numel(ours) == numel(theirs)
    assert [tuple(t.shape) for t in mine.values()] == [tuple(t.shape) for t in reference.values()]
    for a, b in zip(mine.values(), reference.values(), strict=True):
        torch.testing.assert_close(a, b)


# ------------------------------------------------------------------------------------------- model zoo


@pytest.fixture(scope="module")
def zoo(ns):
    return ns["zoo_records"]()


def test_zoo_covers_every_classification_model_from_weights_meta(zoo):
    names = models.list_models(module=models)
    assert zoo and [r["name"] for r in zoo] == names
    for name in ["resnet50", "vit_b_16", "efficientnet_b0", "convnext_tiny", "mobilenet_v3_small"]:
        row = next(r for r in zoo if r["name"] == name)
        weights = get_model_weights(name).DEFAULT
        assert row["acc1"] == weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
        assert row["gflops"] == weights.meta["_ops"] and row["params"] == weights.meta["num_params"]
        assert row["weights"] == str(weights)
    for name in ["resnet18", "mobilenet_v3_small", "squeezenet1_1"]:  # metadata vs the built architecture
        assert next(r for r in zoo if r["name"] == name)["params"] == numel(meta_model(name))


def test_zoo_reads_the_installed_metadata_not_typed_numbers(ns, monkeypatch):
    real = ns["get_model_weights"]
    fake_weights = SimpleNamespace(
        meta={"_metrics": {"ImageNet-1K": {"acc@1": 12.5}}, "_ops": 0.123, "num_params": 4321},
        transforms=lambda: SimpleNamespace(crop_size=[99]),
    )
    monkeypatch.setitem(
        ns, "get_model_weights", lambda name: SimpleNamespace(DEFAULT=fake_weights) if name == "alexnet" else real(name)
    )
    row = next(r for r in ns["zoo_records"]() if r["name"] == "alexnet")
    assert (row["acc1"], row["gflops"], row["params"], row["input"]) == (12.5, 0.123, 4321, 99)


def test_pareto_front(ns, zoo):
    def dominates(a, b):
        at_least_as_good = a["gflops"] <= b["gflops"] and a["acc1"] >= b["acc1"]
        return at_least_as_good and (a["gflops"], a["acc1"]) != (b["gflops"], b["acc1"])

    front = ns["pareto_front"](zoo)
    names = {r["name"] for r in front}
    assert front and [r["gflops"] for r in front] == sorted(r["gflops"] for r in front)
    for r in zoo:
        assert (r["name"] in names) == (not any(dominates(o, r) for o in zoo)), r["name"]
    toy = [{"name": n, "gflops": g, "acc1": a} for n, g, a in [("a", 1, 70), ("b", 2, 69), ("c", 2, 75), ("d", 4, 75)]]
    assert [r["name"] for r in ns["pareto_front"](toy)] == ["a", "c"]


def test_model_family(ns):
    family = ns["model_family"]
    assert [family(n) for n in ["resnext50_32x4d", "wide_resnet50_2", "vit_b_16", "efficientnet_v2_s", "resnet18"]] == [
        "resnext",
        "wide_resnet",
        "vit",
        "efficientnet",
        "resnet",
    ]


# ------------------------------------------------------------------------------- ViT patching picture


@pytest.mark.parametrize("shape,patch", [((300, 300), 50), ((64, 96), 16), ((70, 45), 16), ((32, 32), 32)])
def test_vit_patching_picture_cuts_the_image_into_its_tokens(ns, shape, patch):
    import numpy as np

    image = np.random.default_rng(0).integers(0, 255, (*shape, 3), dtype=np.uint8)
    rows, cols = shape[0] // patch, shape[1] // patch
    patches = ns["vit_patches"](image, patch)
    assert len(patches) == rows * cols and all(p.shape == (patch, patch, 3) for _, _, p in patches)
    r, c, last = patches[-1]
    assert (r, c) == (rows - 1, cols - 1)
    assert (last == image[r * patch : (r + 1) * patch, c * patch : (c + 1) * patch]).all()
    fig, facts = ns["plot_vit_patching"](image, patch, max_tokens=8)
    assert facts == {"grid": (rows, cols), "tokens": rows * cols, "shown": min(7, rows * cols)}
    image_ax = fig.axes[0]
    assert len(image_ax.texts) == rows * cols and image_ax.get_xlabel() and image_ax.get_ylabel()
    assert f"{rows * cols} tokens" in image_ax.get_title()
    assert sum(1 for ax in fig.axes[1:] if ax.images) == facts["shown"]
    tokens = ns["PatchEmbedding"](patch, 8)(torch.zeros(1, 3, *shape))
    assert tokens.shape[1] == facts["tokens"], "the picture shows as many patches as the embedding makes tokens"


# ------------------------------------------------------------------------------- FPN challenge self-check


@pytest.fixture(scope="module")
def resnet18_features(ns):
    torch.manual_seed(0)
    return ns["resnet18_c3_c5"]().eval()


def test_fpn_self_check_all_match_for_the_reference(ns, resnet18_features, capsys):
    report = ns["fpn_self_check"](lambda: ns["FPN"]((128, 256, 512), channels=128), resnet18_features, channels=128)
    assert report["implemented"] and report["all_match"]
    sizes = ns["CHALLENGE_SIZES"]
    assert len(report["checks"]) == len(sizes) * 6
    for check in report["checks"]:
        if check["check"].startswith("P") and "(channels" in check["check"]:
            h, w = check["size"]
            level = int(check["check"][1])
            side = [h, w]
            for _ in range(level):  # every stride-2 step rounds up: ceil(n / 2), computed here independently
                side = [-(-s // 2) for s in side]
            assert check["expected"] == (128, *side) == check["got"]
    out = capsys.readouterr().out
    assert "MISMATCH" not in out and f"{len(report['checks'])} of {len(report['checks'])} checks match" in out


class _DoubledUpsampling(nn.Module):
    """A planted wrong FPN: upsamples with scale_factor=2 (fails on odd sizes) and has no P7."""

    def __init__(self, in_channels=(128, 256, 512), channels=128):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.p6 = nn.Conv2d(in_channels[-1], channels, 3, stride=2, padding=1)

    def forward(self, features):
        c3, c4, c5 = (conv(features[k]) for conv, k in zip(self.lateral, ("C3", "C4", "C5"), strict=True))
        p5 = c5
        p4 = c4 + F.interpolate(p5, scale_factor=2)
        p3 = c3 + F.interpolate(p4, scale_factor=2)
        return {"P3": p3, "P4": p4, "P5": p5, "P6": self.p6(features["C5"])}


class _NoTopDown(nn.Module):
    """A planted wrong FPN: right shapes, but P3 never hears from C5, and P6 made with stride 1."""

    def __init__(self, in_channels=(128, 256, 512), channels=128):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.p6 = nn.Conv2d(in_channels[-1], channels, 3, stride=1, padding=1)
        self.p7 = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, features):
        p3, p4, p5 = (conv(features[k]) for conv, k in zip(self.lateral, ("C3", "C4", "C5"), strict=True))
        p6 = self.p6(features["C5"])
        return {"P3": p3, "P4": p4, "P5": p5, "P6": p6, "P7": self.p7(F.relu(p6))}


def test_fpn_self_check_reports_mismatches_of_planted_wrong_implementations(ns, resnet18_features, capsys):
    doubled = ns["fpn_self_check"](_DoubledUpsampling, resnet18_features)
    assert doubled["implemented"] and not doubled["all_match"]
    failed = {(c["size"], c["check"]) for c in doubled["checks"] if not c["ok"]}
    assert ((64, 64), "P7 (channels, height, width)") in failed, "a missing level is a mismatch"
    assert ((100, 150), "forward pass") in failed, "scale_factor=2 cannot add up on odd sizes"
    no_top_down = ns["fpn_self_check"](_NoTopDown, resnet18_features)
    bad = {c["check"] for c in no_top_down["checks"] if not c["ok"]}
    assert bad == {
        "P6 (channels, height, width)",
        "P7 (channels, height, width)",
        "P3 changes when only C5 changes (top-down pathway)",
    }
    assert all(c["ok"] for c in no_top_down["checks"] if c["check"].startswith(("P3 (", "P4", "P5")))
    out = capsys.readouterr().out
    assert "MISMATCH" in out and "match   " in out


def test_fpn_self_check_says_not_implemented_for_the_starter(ns, resnet18_features, capsys):
    class Starter(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()
            raise NotImplementedError("build the layers of your FPN")

    report = ns["fpn_self_check"](Starter, resnet18_features)
    assert report == {"implemented": False, "checks": [], "all_match": False}
    assert "not implemented yet" in capsys.readouterr().out


def test_starter_cell_of_the_challenge_raises_not_implemented():
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    starter = next(c for c in nb.cells if c.cell_type == "code" and "class MyFPN" in c.source)
    namespace = {"nn": nn}
    exec(starter.source, namespace)
    with pytest.raises(NotImplementedError):
        namespace["MyFPN"]()


@pytest.mark.slow
def test_executed_lesson_runs_the_challenge_and_the_computed_answers(executed):
    text = outputs_text(executed)
    assert "MyFPN is not implemented yet" in text
    assert "36 patch tokens, sequence length 37 with [CLS]" in text
    small, large = 197, 785  # (224 / 16)^2 + 1 and (448 / 16)^2 + 1 tokens
    assert f"attention entries x{large**2 / small**2:.2f}" in text and "patches x4" in text
    assert "alpha = 2, beta = gamma = 1: FLOPs factor for phi = 0..3: [1.0, 2.0, 4.0, 8.0]" in text
