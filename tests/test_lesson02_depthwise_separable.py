"""Lesson 2 (depthwise separable convolutions, MobileNet): the notebook runs top to bottom offline and
with pretrained weights, its cost functions agree with real layers and PyTorch's FLOP counter, and its
widgets respond to new values. Expectations come from torch layers, torchvision models and the
MobileNet architecture table typed in here, never from a previous run of the notebook."""

from __future__ import annotations

import math
import random
import re
import socket
import urllib.error
from pathlib import Path

import matplotlib
import nbformat
import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode
from torchvision import models

from tools.notebooks import execute_notebook, notebook_namespace, outputs_text, stderr_text

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NB = Path(__file__).resolve().parents[1] / "notebooks" / "02_depthwise_separable.ipynb"
# Weights the notebook loads; the pretrained-path tests fake their checkpoint files.
PRETRAINED = [
    (models.mobilenet_v2, models.MobileNet_V2_Weights.DEFAULT),
    (models.mobilenet_v3_small, models.MobileNet_V3_Small_Weights.DEFAULT),
]
# Any download attempt inside a kernel goes to a closed local port, so "offline" holds everywhere.
NO_NETWORK = {
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "https_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "http_proxy": "http://127.0.0.1:9",
    "NO_PROXY": "",
    "no_proxy": "",
}


@pytest.fixture(scope="module")
def ns():
    return notebook_namespace(NB)


# --------------------------------------------------------------------------- independent references
def madds_by_flop_counter(module, input_shape):
    """PyTorch's own FLOP counter (2 FLOPs per multiply-add), on shape-only meta tensors."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(torch.zeros(input_shape, device="meta"))
    return counter.get_total_flops() // 2


def mobilenet_v1_expected_params(num_classes=1000):
    """From the MobileNets paper's table: conv 3->32 s2, 13 depthwise separable blocks, FC 1024."""
    channels = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    total = 3 * 3 * 3 * 32 + 2 * 32  # stem conv + its BN
    for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
        total += 3 * 3 * c_in + 2 * c_in  # depthwise + BN
        total += c_in * c_out + 2 * c_out  # pointwise + BN
    return total + 1024 * num_classes + num_classes


def meta_model(builder, **kwargs):
    with torch.device("meta"):
        return builder(weights=None, **kwargs).eval()


def write_fake_checkpoint(torch_home: Path, builder, weights, seed=0) -> dict:
    """A state_dict of the right architecture where torch.hub looks for ``weights``' download."""
    torch.manual_seed(seed)
    state = builder(weights=None).state_dict()
    target = torch_home / "hub" / "checkpoints" / Path(weights.url).name
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    return state


def controls(widget):
    """The interactive widget's controls, keyed by the keyword argument each one feeds."""
    return {c._kwarg: c for c in widget.kwargs_widgets}


def assert_axes_labelled(fig):
    for ax in fig.axes:
        assert ax.get_xlabel() and ax.get_ylabel(), f"unlabelled axes in {ax.get_title()!r}"


# --------------------------------------------------------------------------- the committed file
def test_notebook_is_committed_clean():
    nb = nbformat.read(str(NB), as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    ids = [c.get("id") for c in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), "every cell needs a unique id"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"cell {cell.id} has outputs"
        if "<details>" in cell.source:
            assert cell.source.count("<details>") == cell.source.count("</details>")
            assert cell.source.count("<details><summary>") == cell.source.count("<details>")
    assert any("functions" in c.metadata.get("tags", []) for c in nb.cells)


def test_functions_cells_define_the_demos_silently(capsys):
    plt.close("all")
    namespace = notebook_namespace(NB)
    assert capsys.readouterr().out == ""
    assert plt.get_fignums() == [], "functions cells must not draw"
    for name in [
        "standard_conv_params",
        "dwsep_params",
        "standard_conv_madds",
        "dwsep_madds",
        "reduction_ratio",
        "cost_ratio_formula",
        "count_madds",
        "DWSepConv",
        "MobileNetV1",
        "load_pretrained",
        "make_cost_widget",
        "make_speed_widget",
        "measure_speed",
    ]:
        assert name in namespace, f"{name} should be defined in a cell tagged 'functions'"


# --------------------------------------------------------------------------- cost formulas
def random_configs(count, seed):
    rng = random.Random(seed)
    return [
        (rng.choice([1, 3, 5, 7]), rng.randint(1, 300), rng.randint(1, 300), rng.randint(1, 40)) for _ in range(count)
    ]


@pytest.mark.parametrize("k, m, n, d_f", random_configs(30, seed=2))
def test_cost_functions_match_real_layers(ns, k, m, n, d_f):
    standard = nn.Conv2d(m, n, k, padding=k // 2, bias=False, device="meta")
    depthwise = nn.Conv2d(m, m, k, padding=k // 2, groups=m, bias=False, device="meta")
    pointwise = nn.Conv2d(m, n, 1, bias=False, device="meta")
    shape = (1, m, d_f, d_f)
    std_params = standard.weight.numel()
    sep_params = depthwise.weight.numel() + pointwise.weight.numel()
    std_madds = madds_by_flop_counter(standard, shape)
    sep_madds = madds_by_flop_counter(nn.Sequential(depthwise, pointwise), shape)

    assert ns["standard_conv_params"](k, m, n) == std_params
    assert ns["dwsep_params"](k, m, n) == sep_params
    assert ns["standard_conv_madds"](k, m, n, d_f) == std_madds
    assert ns["dwsep_madds"](k, m, n, d_f) == sep_madds
    assert math.isclose(ns["reduction_ratio"](k, m, n), std_params / sep_params)
    assert math.isclose(ns["cost_ratio_formula"](k, n), sep_madds / std_madds)
    assert math.isclose(ns["cost_ratio_formula"](k, n), sep_params / std_params)


def test_count_madds_agrees_with_flop_counter_on_random_layers(ns):
    for k, m, n, d_f in random_configs(10, seed=5):
        standard, separable = ns["make_conv_pair"](m, n, k, device="meta")
        shape = (1, m, d_f, d_f)
        assert ns["count_madds"](standard, shape) == madds_by_flop_counter(standard, shape)
        assert ns["count_madds"](separable, shape) == madds_by_flop_counter(separable, shape)
    with pytest.raises(ValueError):
        ns["make_conv_pair"](8, 8, 4)


@pytest.mark.parametrize(
    "builder, weights",
    [
        (models.mobilenet_v2, models.MobileNet_V2_Weights.DEFAULT),
        (models.mobilenet_v3_small, models.MobileNet_V3_Small_Weights.DEFAULT),
        (models.resnet50, models.ResNet50_Weights.DEFAULT),
    ],
)
def test_count_madds_matches_torchvision_metadata(ns, builder, weights):
    model = meta_model(builder)
    counted = ns["count_madds"](model)
    assert counted == madds_by_flop_counter(model, (1, 3, 224, 224))
    assert round(counted / 1e9, 3) == pytest.approx(weights.meta["_ops"], abs=1e-9)
    assert ns["count_parameters"](model) == weights.meta["num_params"]
    assert model.training is False, "count_madds must leave an eval-mode model in eval mode"
    model.train()
    ns["count_madds"](model)
    assert model.training, "count_madds must leave a training-mode model in training mode"


# --------------------------------------------------------------------------- the block and MobileNetV1
def test_dwsep_block_shapes_and_parameters(ns):
    rng = random.Random(11)
    for _ in range(12):
        in_ch, out_ch, stride, size = rng.randint(1, 48), rng.randint(1, 48), rng.choice([1, 2]), rng.randint(3, 24)
        block = ns["DWSepConv"](in_ch, out_ch, stride)
        out = block(torch.randn(2, in_ch, size, size))
        expected_side = (size + 2 * 1 - 3) // stride + 1
        assert tuple(out.shape) == (2, out_ch, expected_side, expected_side)
        dw_convs = [m for m in block.dw.modules() if isinstance(m, nn.Conv2d)]
        pw_convs = [m for m in block.pw.modules() if isinstance(m, nn.Conv2d)]
        assert len(dw_convs) == len(pw_convs) == 1
        assert dw_convs[0].groups == in_ch and tuple(dw_convs[0].weight.shape) == (in_ch, 1, 3, 3)
        assert dw_convs[0].stride == (stride, stride)
        assert tuple(pw_convs[0].weight.shape) == (out_ch, in_ch, 1, 1)
        assert dw_convs[0].bias is None and pw_convs[0].bias is None
        assert sum(p.numel() for p in block.parameters()) == 9 * in_ch + in_ch * out_ch + 2 * (in_ch + out_ch)
        assert out.min() >= 0 and out.max() <= 6, "ReLU6 bounds the block's output"
        stage = block.dw(torch.randn(2, in_ch, size, size))  # the dw stage ends in its activation
        assert tuple(stage.shape) == (2, in_ch, expected_side, expected_side) and stage.min() >= 0


def test_mobilenet_v1_matches_the_paper_table(ns):
    with torch.device("meta"):
        net = ns["MobileNetV1"]()
        small_head = ns["MobileNetV1"](num_classes=7)
    assert sum(p.numel() for p in net.parameters()) == mobilenet_v1_expected_params()
    assert sum(p.numel() for p in small_head.parameters()) == mobilenet_v1_expected_params(7)
    depthwise = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(depthwise) == 13 and all(m.groups == m.in_channels for m in depthwise)
    with torch.no_grad():
        fmap = net.features(torch.zeros(2, 3, 224, 224, device="meta"))
        logits = net(torch.zeros(2, 3, 224, 224, device="meta"))
    assert tuple(fmap.shape) == (2, 1024, 7, 7)
    assert tuple(logits.shape) == (2, 1000)
    assert ns["count_madds"](net) == madds_by_flop_counter(net, (1, 3, 224, 224))


# --------------------------------------------------------------------------- pretrained / offline loader
def test_loader_falls_back_to_random_weights_offline(ns, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    timeout_before = socket.getdefaulttimeout()
    builder, weights = PRETRAINED[1]
    model, pretrained = ns["load_pretrained"](builder, weights)
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert pretrained is False
    assert isinstance(model, models.MobileNetV3)
    assert len(out) == 1 and out[0].startswith("Notice: pretrained") and "random weights" in out[0], out
    assert captured.err == "", "torch.hub's download chatter should be replaced by the one notice"
    assert socket.getdefaulttimeout() == timeout_before, "the loader must restore the socket timeout"


def test_loader_uses_cached_pretrained_checkpoint(ns, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(
        torch.hub,
        "download_url_to_file",
        lambda *a, **k: pytest.fail("the cached checkpoint should be used, not downloaded"),
    )
    builder, weights = PRETRAINED[1]
    saved = write_fake_checkpoint(tmp_path, builder, weights, seed=3)
    model, pretrained = ns["load_pretrained"](builder, weights)
    assert pretrained is True
    assert "Loaded pretrained" in capsys.readouterr().out
    loaded = model.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[key], saved[key]) for key in saved)


# --------------------------------------------------------------------------- widget 1: cost explorer
def test_cost_explorer_follows_its_sliders(ns):
    plt.close("all")
    widget = ns["make_cost_widget"]()
    sliders = controls(widget)
    assert set(sliders) == {"M", "N", "D_K", "D_F"}
    assert widget.result["standard_params"] == nn.Conv2d(32, 64, 3, bias=False).weight.numel()
    rng = random.Random(4)
    for _ in range(4):
        k, m, n, d_f = rng.choice([1, 3, 5, 7]), rng.randint(1, 1024), rng.randint(1, 1024), rng.randint(1, 224)
        sliders["M"].value, sliders["N"].value, sliders["D_K"].value, sliders["D_F"].value = m, n, k, d_f
        r = widget.result
        assert (r["m"], r["n"], r["k"], r["d_f"]) == (m, n, k, d_f)
        standard = nn.Conv2d(m, n, k, padding=k // 2, bias=False, device="meta")
        separable = nn.Sequential(
            nn.Conv2d(m, m, k, padding=k // 2, groups=m, bias=False, device="meta"),
            nn.Conv2d(m, n, 1, bias=False, device="meta"),
        )
        assert r["standard_params"] == r["standard_params_real"] == standard.weight.numel()
        assert r["dwsep_params"] == r["dwsep_params_real"] == sum(p.numel() for p in separable.parameters())
        assert r["standard_madds"] == madds_by_flop_counter(standard, (1, m, d_f, d_f))
        assert r["dwsep_madds"] == madds_by_flop_counter(separable, (1, m, d_f, d_f))
        assert math.isclose(r["reduction"], r["standard_params"] / r["dwsep_params"])
        assert r["verified"] is True
    assert plt.get_fignums() == [], "the widget should close the figures it shows"
    fig = ns["plot_cost_report"](widget.result)
    assert_axes_labelled(fig)
    plt.close(fig)
    text = ns["format_cost_report"](widget.result)
    assert f"{widget.result['dwsep_params']:,}" in text and "✓" in text


# --------------------------------------------------------------------------- widget 2: measured speed
def test_speed_widget_measures_and_caches(ns):
    plt.close("all")
    widget = ns["make_speed_widget"](device="cpu")
    knobs = controls(widget)
    assert set(knobs) == {"M", "N", "D_K", "D_F", "threads"}
    knobs["M"].value, knobs["N"].value, knobs["D_F"].value, knobs["D_K"].value = 16, 8, 7, 5
    r = widget.result
    assert (r["m"], r["n"], r["k"], r["d_f"], r["threads"]) == (16, 8, 5, 7, 1)
    assert r["standard_ms"] > 0 and r["dwsep_ms"] > 0 and r["repeats"] >= 5
    promised = (25 * 16 * 8 * 49) / (25 * 16 * 49 + 16 * 8 * 49)
    assert math.isclose(r["madds_speedup"], promised)
    assert math.isclose(r["measured_speedup"], r["standard_ms"] / r["dwsep_ms"])
    assert plt.get_fignums() == []

    cache = {}
    first = ns["measure_speed"](8, 16, 3, 7, device="cpu", cache=cache)
    again = ns["measure_speed"](8, 16, 3, 7, device="cpu", cache=cache)
    assert again is first and len(cache) == 1, "a configuration already measured must come from the cache"
    threads_before = torch.get_num_threads()
    ns["measure_speed"](8, 16, 3, 7, device="cpu", threads=2, cache=cache)
    assert len(cache) == 2 and torch.get_num_threads() == threads_before

    fig = ns["plot_speed"](r)
    assert_axes_labelled(fig)
    fig2 = ns["plot_speed_sweep"]([first, r])
    assert_axes_labelled(fig2)
    plt.close("all")


@pytest.mark.parametrize(
    "measured, promised, expected",
    [
        (0.5, 8.0, "SLOWER"),
        (2.0, 8.0, "short of"),
        (7.5, 8.0, "close to"),
        (1.1, 1.03, "close to"),
        (13.7, 8.7, "beyond"),
    ],
)
def test_speed_verdict_reports_what_was_measured(ns, measured, promised, expected):
    verdict = ns["speed_verdict"]({"measured_speedup": measured, "madds_speedup": promised})
    assert expected in verdict


# --------------------------------------------------------------------------- whole notebook
def markdown_numbers(nb) -> set[str]:
    """Figures quoted in prose (thousands-grouped or decimal), formulas and bibliography (arXiv ids, section
    numbers in References / Where to go next) excluded."""
    found = set()
    for cell in nb.cells:
        if cell.cell_type == "markdown" and not cell.source.startswith(("## References", "## Where to go next")):
            prose = re.sub(r"\$[^$]*\$", " ", cell.source)
            found |= set(re.findall(r"(?<![\w.])\d{1,3}(?:,\d{3})+|(?<![\w.])\d+\.\d+", prose))
    return found


def independent_figures() -> list[str]:
    """Patterns the executed notebook must print, computed here from layers and torchvision models."""
    std = nn.Conv2d(32, 64, 3, padding=1, bias=False, device="meta")
    v2, v3s = meta_model(models.mobilenet_v2), meta_model(models.mobilenet_v3_small)
    with torch.no_grad():
        v2_dim = v2.features(torch.zeros(1, 3, 224, 224, device="meta")).shape[1]
        v3_dim = v3s.features(torch.zeros(1, 3, 224, 224, device="meta")).shape[1]

    def params(builder, **kwargs):
        return f"{sum(p.numel() for p in meta_model(builder, **kwargs).parameters()):,}"

    return [
        rf"weight\.numel\(\) = {std.weight.numel():,}\b",
        rf"counted multiply-adds = {madds_by_flop_counter(std, (1, 32, 112, 112)):,}\b",
        rf"MobileNetV1 +{mobilenet_v1_expected_params():,} ",
        rf"ResNet-50 +{params(models.resnet50)} ",
        rf"VGG-16 +{params(models.vgg16)} ",
        rf"MobileNetV2 feature vector: \(1, {v2_dim}\)",
        rf"MobileNetV3-small feature vector: \(1, {v3_dim}\)",
        rf"0\.5 +{params(models.mobilenet_v2, width_mult=0.5)} ",
        *width_multiplier_figures(),
        *squeeze_excitation_figures(),
        inverted_residual_pointwise_share(),
        rf"VGG-16's weights in float32 \(4 bytes each\): "
        rf"{4 * float(params(models.vgg16).replace(',', '')) / 1e6:.0f} MB",
        rf"more than 8× fewer multiply-adds from N = {smallest_n_above(8)} on \(N = {smallest_n_above(8) - 1}: ",
    ]


def width_multiplier_figures() -> list[str]:
    """Issue 20: the backbone keeps far more than α² (0.309 at α = 0.5, 0.178 at 0.35), mainly because the last
    1×1 conv stays 1,280 wide; without it the rest is close to α². Counted here on torchvision's own models."""

    def backbone(alpha):
        net = meta_model(models.mobilenet_v2, width_mult=alpha)
        last = net.features[-1]
        return (
            sum(p.numel() for p in net.features.parameters()),
            sum(p.numel() for p in last.parameters()),
            last[0].in_channels,
            last[0].out_channels,
        )

    full, full_last, _, _ = backbone(1.0)
    patterns = []
    for alpha in (0.35, 0.5, 0.75):
        total, last, c_in, c_out = backbone(alpha)
        frac, rest = total / full, (total - last) / (full - full_last)
        assert frac > alpha**2 + 0.04 and abs(rest - alpha**2) < abs(frac - alpha**2) / 2
        patterns.append(
            rf"α = {alpha}: backbone keeps {frac:.3f} of its parameters \(α² = {alpha**2:.4f}\); "
            rf"its last 1×1 conv \({c_in} -> {c_out}\) is {last / total:.0%} of it; "
            rf"the rest keeps {rest:.3f}"
        )
    whole = sum(p.numel() for p in meta_model(models.mobilenet_v2).parameters())
    for alpha in (0.35, 0.5):
        kept = sum(p.numel() for p in meta_model(models.mobilenet_v2, width_mult=alpha).parameters()) / whole
        patterns.append(
            rf"Q6: α = {alpha} keeps {kept:.3f} of all parameters, "
            rf"{backbone(alpha)[0] / full:.3f} of the backbone's"
        )
    return patterns


def squeeze_excitation_figures() -> list[str]:
    """Issue 20: SE is not "a few extra weights" (≈18 % of MobileNetV3-Small) but few multiply-adds."""
    from torchvision.ops.misc import SqueezeExcitation

    net = meta_model(models.mobilenet_v3_small)
    se_layers = [m for m in net.modules() if isinstance(m, SqueezeExcitation)]
    se_params = sum(p.numel() for se in se_layers for p in se.parameters())
    total = sum(p.numel() for p in net.parameters())
    assert 0.15 < se_params / total < 0.25
    fc_madds = sum(se.fc1.weight.numel() + se.fc2.weight.numel() for se in se_layers)
    all_madds = madds_by_flop_counter(net, (1, 3, 224, 224))
    assert fc_madds / all_madds < 0.02
    return [
        rf"{len(se_layers)} SE layers holding {se_params:,} of them \({100 * se_params / total:.1f}%\)",
        rf"SE multiply-adds: {fc_madds:,} in the 1x1 layers \({100 * fc_madds / all_madds:.1f}% of the network's "
        rf"{all_madds:,}\)",
    ]


def inverted_residual_pointwise_share() -> str:
    block = meta_model(models.mobilenet_v2).features[3]
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    pointwise = sum(m.weight.numel() for m in convs if m.kernel_size == (1, 1))
    share = pointwise / sum(m.weight.numel() for m in convs)
    assert share > 0.5, "the 1x1 convolutions hold most of an inverted residual's weights"
    return rf"the two 1×1 convolutions hold {pointwise:,} of them \({share:.0%}\)"


def smallest_n_above(factor: int, k: int = 3) -> int:
    """Smallest N with standard / separable multiply-adds > factor, in exact integer arithmetic."""
    n = 1
    while k * k * n <= factor * (k * k + n):  # k²N / (k² + N) > factor
        n += 1
    return n


def check_executed(nb):
    text = outputs_text(nb)
    for pattern in independent_figures():
        assert re.search(pattern, text), f"expected the notebook to print something matching {pattern!r}"
    missing = sorted(n for n in markdown_numbers(nb) if n not in text)
    assert not missing, f"numbers quoted in markdown but printed by no cell: {missing}"
    noise = [
        line
        for line in stderr_text(nb).splitlines()
        if line.strip() and "Kernel is running over TCP without encryption" not in line
    ]  # jupyter, not the notebook
    assert "Downloading: " not in text, "the loader should replace torch.hub's chatter by one line"
    assert not noise, f"unexpected stderr (warnings?): {noise}"
    return text


@pytest.mark.slow
def test_notebook_runs_offline_top_to_bottom(tmp_path):
    nb, seconds = execute_notebook(NB, timeout=300, env={"TORCH_HOME": str(tmp_path), **NO_NETWORK})
    text = check_executed(nb)
    notices = [line for line in text.splitlines() if line.startswith("Notice: pretrained")]
    assert len(notices) == len(PRETRAINED), notices
    assert "Loaded pretrained" not in text
    print(f"\nlesson 2 executed offline in {seconds:.1f} s")


@pytest.mark.slow
def test_notebook_runs_with_pretrained_checkpoints(tmp_path):
    for builder, weights in PRETRAINED:
        write_fake_checkpoint(tmp_path, builder, weights)
    nb, seconds = execute_notebook(NB, timeout=300, env={"TORCH_HOME": str(tmp_path), **NO_NETWORK})
    text = check_executed(nb)
    for _, weights in PRETRAINED:
        assert f"Loaded pretrained {weights}." in text
    assert "Notice: pretrained" not in text
    print(f"\nlesson 2 executed with (fake) pretrained checkpoints in {seconds:.1f} s")


def test_diagrams_label_what_they_draw(ns):
    fig = ns["Figure"]()
    axes = fig.subplots(3, 1)
    ns["draw_conv_split"](*axes, m=5, n=6, k=3)
    titles = [ax.get_title(loc="left") for ax in axes]
    assert titles == [
        f"standard conv: {nn.Conv2d(5, 6, 3, bias=False).weight.numel():,} weights",
        f"depthwise conv (groups = M): {nn.Conv2d(5, 5, 3, groups=5, bias=False).weight.numel():,} weights",
        f"pointwise 1×1 conv: {nn.Conv2d(5, 6, 1, bias=False).weight.numel():,} weights",
    ]
    fig2 = ns["Figure"]()
    ax = fig2.subplots()
    ns["draw_block_widths"](ax, [24, 144, 144, 24], ["a", "b", "c"], "v2")
    heights = sorted(p.get_height() for p in ax.patches if hasattr(p, "get_height"))
    assert heights[-1] / heights[0] == pytest.approx(144 / 24)
    assert {"24", "144", "shortcut (+)"} <= {t.get_text() for t in ax.texts}
