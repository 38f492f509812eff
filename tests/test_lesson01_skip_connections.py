"""Lesson 1 (skip connections): the notebook runs top to bottom, prints what it claims, and its
pure functions and widgets compute the right things for many inputs.

Expectations are computed here independently: plain formulas with math.pow, brute-force searches,
autograd on scalar chains, and real torchvision layers/models (built on the "meta" device when only
their parameter counts matter)."""

from __future__ import annotations

import ast
import itertools
import math
import os
import re
import urllib.error
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet  # noqa: E402

from tests.conftest import LAYOUT  # noqa: E402
from tools.notebooks import (  # noqa: E402
    execute_notebook,
    notebook_namespace,
    outputs_text,
    stderr_text,
)

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "01_skip_connections.ipynb"
DELTAS = (0.3, 0.5, 0.7, 0.85, 0.9, 0.95, 0.99)


@pytest.fixture(scope="module")
def ns():
    return notebook_namespace(NOTEBOOK)


def brute_force_depth_below(delta, threshold):
    depth = 1
    while math.pow(delta, depth - 1) >= threshold:
        depth += 1
    return depth


def meta_model(builder, *args):
    with torch.device("meta"):
        return builder(*args)


def n_params(model):
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------- the committed file


def test_notebook_is_committed_clean():
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    ids = [cell.get("id") for cell in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), "every cell needs a unique id"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "clear outputs before committing"
    assert any("functions" in c.metadata.get("tags", []) for c in code)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert markdown.count("<details>") >= 5 and markdown.count("<details>") == markdown.count("</details>")


def test_functions_cells_only_define_things():
    # Cells tagged "functions" are exec'd by the tests: imports, definitions and constants only.
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    allowed = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
    for cell in nb.cells:
        if "functions" not in cell.metadata.get("tags", []):
            continue
        for node in ast.parse(cell.source).body:
            constant = isinstance(node, ast.Assign) and all(
                isinstance(t, ast.Name) and t.id.isupper() for t in node.targets
            )
            assert isinstance(node, allowed) or constant, (
                f"cell {cell.id}: top-level statement at line {node.lineno} is not a definition"
            )


# --------------------------------------------------------------------------- gradient product


@pytest.mark.parametrize("delta", DELTAS)
def test_plain_gradient_fraction_is_delta_to_the_L_minus_1(ns, delta):
    for depth in (1, 2, 5, 6, 20, 49, 50, 100):
        assert math.isclose(ns["plain_gradient_fraction"](delta, depth), math.pow(delta, depth - 1), rel_tol=1e-12)


def residual_closed_form(delta, num_layers, block_size):
    """Exercise 1's convention: d a_L / d a_1, with layer 1 inside block 1 (whose skip carries a_0)."""
    blocks = num_layers // block_size
    return math.pow(delta, block_size - 1) * math.pow(1 + math.pow(delta, block_size), blocks - 1)


@pytest.mark.parametrize("block_size", (1, 2, 3, 5))
def test_residual_gradient_fraction_closed_form(ns, block_size):
    for delta in DELTAS + (1.2,):
        for blocks in (1, 2, 3, 10, 25):
            depth = blocks * block_size
            got = ns["residual_gradient_fraction"](delta, depth, block_size)
            assert math.isclose(got, residual_closed_form(delta, depth, block_size), rel_tol=1e-9)
            if delta < 1:  # never below the attenuation inside block 1, however deep
                assert got >= math.pow(delta, block_size - 1) * (1 - 1e-12)
                assert got > ns["plain_gradient_fraction"](delta, depth) or blocks == 1


def test_one_block_around_everything_gives_the_plain_value(ns):
    for delta, depth in [(0.7, 4), (0.9, 9), (0.5, 1)]:
        assert math.isclose(
            ns["residual_gradient_fraction"](delta, depth, depth),
            ns["plain_gradient_fraction"](delta, depth),
            rel_tol=1e-12,
        )


@pytest.mark.parametrize("depth,block_size", [(5, 2), (7, 3), (0, 2), (4, 0), (-2, 2)])
def test_residual_gradient_fraction_rejects_partial_blocks(ns, depth, block_size):
    with pytest.raises(ValueError):
        ns["residual_gradient_fraction"](0.8, depth, block_size)


def test_plain_gradient_fraction_rejects_empty_networks(ns):
    with pytest.raises(ValueError):
        ns["plain_gradient_fraction"](0.8, 0)


def exercise_functions():
    """The reference solution of exercise 1 (in source/), if present: lesson and exercise must agree."""
    source = LAYOUT.source() / "ex12_skip_connections.ipynb"
    if not source.exists():
        pytest.skip(f"exercise 1 source not found at {source}")
    nb = nbformat.read(str(source), as_version=4)
    cells = {c.get("id"): c.source for c in nb.cells if c.cell_type == "code"}
    wanted = ("ex1_plain_gradient", "ex1_residual_gradient")
    if not all(w in cells for w in wanted):
        pytest.skip("exercise 1's solution cells were renamed")
    namespace: dict = {}
    for cell_id in wanted:
        exec(compile(cells[cell_id], f"<{source.name}:{cell_id}>", "exec"), namespace)
    return namespace


def test_lesson_uses_exercise_1_convention(ns):
    exercise = exercise_functions()
    for delta in DELTAS:
        for block_size in (1, 2, 3):
            for blocks in (1, 2, 3, 7):
                depth = blocks * block_size
                assert math.isclose(
                    ns["plain_gradient_fraction"](delta, depth),
                    exercise["plain_gradient_fraction"](delta, depth),
                    rel_tol=1e-9,
                )
                assert math.isclose(
                    ns["residual_gradient_fraction"](delta, depth, block_size),
                    exercise["residual_gradient_fraction"](delta, depth, block_size),
                    rel_tol=1e-9,
                )


def scalar_chain_gradients(delta, depth, block_size):
    """Autograd on the scalar linear model, written here independently of the notebook."""
    x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    layer1 = delta * x  # output of layer 1
    h = layer1
    for _ in range(depth - 1):
        h = delta * h
    (plain_grad_at_layer1,) = torch.autograd.grad(h, layer1)

    # residual: blocks of block_size layers, each skip adds the block's input; measure d out / d a_1
    x_res = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    layer_outputs, h = [], x_res
    for _ in range(depth // block_size):
        branch = h
        for _ in range(block_size):
            branch = delta * branch
            layer_outputs.append(branch)
        h = h + branch
    (residual_grad,) = torch.autograd.grad(h, layer_outputs[0])
    return plain_grad_at_layer1.item(), residual_grad.item()


@pytest.mark.parametrize("delta,depth,block_size", [(0.7, 6, 2), (0.85, 20, 2), (0.9, 12, 3), (0.5, 8, 4)])
def test_fractions_match_autograd_on_the_scalar_model(ns, delta, depth, block_size):
    plain, residual = scalar_chain_gradients(delta, depth, block_size)
    assert math.isclose(ns["plain_gradient_fraction"](delta, depth), plain, rel_tol=1e-9)
    assert math.isclose(ns["residual_gradient_fraction"](delta, depth, block_size), residual, rel_tol=1e-9)


@pytest.mark.parametrize("threshold", (0.5, 0.1, 0.01, 0.001, 1e-6))
def test_depth_below_matches_brute_force(ns, threshold):
    for i in range(60):
        delta = 0.3 + i * (0.995 - 0.3) / 59
        assert ns["depth_below"](delta, threshold) == brute_force_depth_below(delta, threshold), delta


def test_depth_below_at_exact_powers_and_invalid_delta(ns):
    # delta**k == threshold exactly: "below" is strict, so the answer is one layer deeper.
    assert ns["depth_below"](0.5, 0.25) == brute_force_depth_below(0.5, 0.25) == 4
    assert ns["depth_below"](0.1, 0.01) == brute_force_depth_below(0.1, 0.01)
    assert ns["depth_below"](0.9) == brute_force_depth_below(0.9, 0.01)
    for bad in (0.0, 1.0, 1.2, -0.5):
        with pytest.raises(ValueError):
            ns["depth_below"](bad)


# --------------------------------------------------------------------------- widget 1


def controls(widget):
    return {c.description: c for c in widget.children if hasattr(c, "value") and c.description}


def test_gradient_widget_follows_its_sliders(ns, capsys):
    widget = ns["make_gradient_widget"]()
    sliders = controls(widget)
    assert set(sliders) == {"delta", "depth L"}
    seen = []
    for delta, depth in [(0.9, 44), (0.9, 45), (0.7, 6), (0.85, 50), (0.95, 7), (0.6, 100)]:
        sliders["delta"].value = delta
        sliders["depth L"].value = depth
        result = widget.result
        assert result["delta"] == pytest.approx(delta) and result["depth"] == depth
        assert math.isclose(result["plain"], math.pow(delta, depth - 1), rel_tol=1e-9)
        assert result["depth_below_threshold"] == brute_force_depth_below(delta, 0.01)
        if depth % 2:
            assert result["residual"] is None
        else:
            assert math.isclose(result["residual"], residual_closed_form(delta, depth, 2), rel_tol=1e-9)
            assert math.isclose(result["residual_floor"], delta, rel_tol=1e-12)
        printed = capsys.readouterr().out
        if result["residual"] is not None:
            assert f"{result['residual']:.3g}" in printed
        assert f"{math.pow(delta, depth - 1):.3g}" in printed
        assert f"L = {brute_force_depth_below(delta, 0.01)}" in printed
        seen.append(result["plain"])
    assert len(set(seen)) == len(seen), "each slider setting should change the readout"
    plt.close("all")


def test_gradient_plot_draws_the_formula(ns):
    fig, ax = plt.subplots()
    ns["plot_gradient_fraction"](0.8, 30, ax, max_depth=60)
    curve = ax.lines[0]
    depths = list(curve.get_xdata())
    assert depths == list(range(1, 61))
    heights = curve.get_ydata()
    assert all(math.isclose(y, math.pow(0.8, d - 1), rel_tol=1e-12) for d, y in zip(depths, heights, strict=True))
    assert ax.get_xlabel() and ax.get_ylabel()
    plt.close(fig)


# --------------------------------------------------------------------------- measurement (widget 2)

SMALL = {"depths": (2, 8), "steps": 10}


@pytest.fixture(scope="module")
def small_results(ns):
    return ns["measure_depth_effect"](**SMALL)


def test_measurement_is_cached(ns, small_results):
    assert ns["measure_depth_effect"](**SMALL) is small_results


def test_plain_and_residual_stacks_share_their_layers(ns):
    plain = ns["make_stack"](6, residual=False, seed=3)
    residual = ns["make_stack"](6, residual=True, seed=3)
    plain_params, residual_params = list(plain.parameters()), list(residual.parameters())
    assert len(plain_params) == len(residual_params) == 2 * (6 + 2)
    assert all(torch.equal(a, b) for a, b in zip(plain_params, residual_params, strict=True))
    # residual forward = input layer, then h + f2(f1(h)) per pair, then the head
    x = torch.randn(5, 8)
    layers = list(plain[1:-1])
    h = plain[0](x)
    for i in range(0, 6, 2):
        h = h + layers[i + 1](layers[i](h))
    assert torch.allclose(residual(x), plain[-1](h), atol=1e-6)
    with pytest.raises(ValueError):
        ns["make_stack"](5, residual=True)


def test_measured_gradient_norms_are_real_backward_passes(ns, small_results):
    inputs, labels = ns["make_teacher_task"](seed=0)
    for i, depth in enumerate(SMALL["depths"]):
        for kind in ("plain", "residual"):
            model = ns["make_stack"](depth, residual=(kind == "residual"), seed=0)
            loss = F.cross_entropy(model(inputs), labels)
            (grad,) = torch.autograd.grad(loss, model[0].weight)
            assert math.isclose(small_results[kind]["grad_norm"][i], grad.norm().item(), rel_tol=1e-4)
    # the plain stack's gradient shrinks with depth, the residual one does not collapse
    plain, residual = small_results["plain"]["grad_norm"], small_results["residual"]["grad_norm"]
    assert plain[1] < plain[0] / 5
    assert residual[1] > plain[1] * 10


def test_measured_loss_is_the_loss_after_that_training(ns, small_results):
    inputs, labels = ns["make_teacher_task"](seed=0)
    model = ns["make_stack"](8, residual=True, seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(SMALL["steps"]):
        optimizer.zero_grad()
        F.cross_entropy(model(inputs), labels).backward()
        optimizer.step()
    with torch.no_grad():
        logits = model(inputs)
    assert math.isclose(small_results["residual"]["loss"][1], F.cross_entropy(logits, labels).item(), rel_tol=1e-4)
    error = (logits.argmax(1) != labels).float().mean().item()
    assert math.isclose(small_results["residual"]["error"][1], error, abs_tol=1e-6)
    counts = [int((labels == c).sum()) for c in range(4)]
    assert math.isclose(small_results["baseline_error"], 1 - max(counts) / len(labels))


@pytest.mark.parametrize("delta", (0.3, 0.58, 0.9))
def test_effective_delta_recovers_a_geometric_decay(ns, delta):
    depths = (2, 4, 8, 16, 32)
    grads = [3.0 * math.pow(delta, d) for d in depths]
    assert math.isclose(ns["effective_delta"](depths, grads), delta, rel_tol=1e-9)


def test_depth_widget_follows_its_slider(ns, small_results, capsys):
    widget = ns["make_depth_widget"](small_results)
    slider = widget.children[0]
    assert list(slider.options) == [2, 8]
    for i, depth in [(0, 2), (1, 8), (0, 2)]:
        slider.value = depth
        report = widget.result
        assert report["depth"] == depth
        for kind in ("plain", "residual"):
            assert report[kind]["grad_norm"] == small_results[kind]["grad_norm"][i]
            assert report[kind]["error"] == small_results[kind]["error"][i]
        printed = capsys.readouterr().out
        assert f"{small_results['plain']['grad_norm'][i]:.2e}" in printed
        assert f"depth {depth:2d}" in printed
    plt.close("all")


# --------------------------------------------------------------------------- residual block


@pytest.mark.parametrize(
    "in_ch,out_ch,stride,size",
    [(64, 128, 2, 32), (64, 64, 1, 32), (16, 16, 2, 9), (8, 24, 1, 7), (32, 64, 2, 15), (3, 3, 1, 4)],
)
def test_residual_block_shape_shortcut_and_parameters(ns, in_ch, out_ch, stride, size):
    block = ns["ResidualBlock"](in_ch, out_ch, stride)
    out = block(torch.randn(2, in_ch, size, size))
    side = math.floor((size + 2 - 3) / stride) + 1
    assert tuple(out.shape) == (2, out_ch, side, side)
    projected = stride != 1 or in_ch != out_ch
    if projected:
        conv, bn = block.shortcut
        assert type(conv) is nn.Conv2d and conv.kernel_size == (1, 1) and conv.stride == (stride, stride)
        assert conv.bias is None and type(bn) is nn.BatchNorm2d
        downsample = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))
    else:
        assert type(block.shortcut) is nn.Identity
        downsample = None
    # torchvision's BasicBlock is the same design: equal parameter counts
    reference = BasicBlock(in_ch, out_ch, stride, downsample=downsample)
    assert n_params(block) == n_params(reference)
    assert (out >= 0).all(), "ReLU comes after the addition"


def test_block_without_projection_fails_only_when_shapes_change(ns):
    with pytest.raises(RuntimeError):
        ns["NoProjectionBlock"](64, 128, stride=2)(torch.randn(1, 64, 8, 8))
    with pytest.raises(RuntimeError):
        ns["NoProjectionBlock"](16, 16, stride=2)(torch.randn(1, 16, 8, 8))
    assert ns["NoProjectionBlock"](16, 16)(torch.randn(1, 16, 8, 8)).shape == (1, 16, 8, 8)


@pytest.mark.parametrize(
    "size,kernel,stride,padding",
    [(32, 3, 2, 1), (224, 7, 2, 3), (7, 1, 1, 0), (15, 3, 2, 1), (56, 3, 1, 1), (9, 5, 3, 2)],
)
def test_conv_output_size_matches_a_real_convolution(ns, size, kernel, stride, padding):
    conv = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding)
    assert ns["conv_output_size"](size, kernel, stride, padding) == conv(torch.zeros(1, 1, size, size)).shape[-1]


@pytest.mark.parametrize("channels", (16, 64, 256, 512))
def test_basic_block_formula_matches_torchvision(ns, channels):
    assert ns["basic_block_params"](channels) == n_params(BasicBlock(channels, channels))


@pytest.mark.parametrize("channels", (64, 256, 1024, 2048))
def test_bottleneck_formula_matches_torchvision(ns, channels):
    assert ns["bottleneck_params"](channels) == n_params(Bottleneck(channels, channels // Bottleneck.expansion))


def test_count_parameters_trainable_only(ns):
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    model[0].weight.requires_grad = False
    assert ns["count_parameters"](model) == 4 * 3 + 3 + 3 * 2 + 2
    assert ns["count_parameters"](model, trainable_only=True) == 3 + 3 * 2 + 2


@pytest.mark.parametrize(
    "name,depth", [("resnet18", 18), ("resnet34", 34), ("resnet50", 50), ("resnet101", 101), ("resnet152", 152)]
)
def test_weighted_depth_gives_the_name(ns, name, depth):
    assert ns["weighted_depth"](meta_model(getattr(torchvision.models, name))) == depth


def test_basic_blocks_in_3_4_6_3_are_resnet34(ns):
    stacked = meta_model(ResNet, BasicBlock, [3, 4, 6, 3])
    assert ns["weighted_depth"](stacked) == 34
    assert n_params(stacked) == n_params(meta_model(torchvision.models.resnet34))
    assert n_params(stacked) != n_params(meta_model(torchvision.models.resnet50))


# --------------------------------------------------------------------------- inference helpers


def test_top_k_orders_labels_by_probability(ns):
    logits = torch.tensor([[0.5, 3.0, -1.0, 2.0, 0.0, 1.5, 2.5]])

    class Fixed(nn.Module):
        def forward(self, x):
            return logits.repeat(len(x), 1)

    names = [f"class{i}" for i in range(7)]
    probs = [math.exp(v) / sum(math.exp(u) for u in logits[0].tolist()) for v in logits[0].tolist()]
    expected = sorted(zip(names, probs, strict=True), key=lambda pair: -pair[1])
    for k in (1, 3, 5):
        got = ns["top_k"](Fixed(), torch.zeros(2, 3, 4, 4), names, k=k)
        assert [label for label, _ in got] == [label for label, _ in expected[:k]]
        assert all(math.isclose(p, q, rel_tol=1e-5) for (_, p), (_, q) in zip(got, expected[:k], strict=True))


@pytest.mark.parametrize("name,num_classes", [("resnet18", 2), ("resnet18", 10), ("resnet50", 5), ("resnet50", 3)])
def test_replace_head_and_freeze(ns, name, num_classes):
    model = meta_model(getattr(torchvision.models, name))
    in_features = model.fc.in_features
    ns["replace_head_and_freeze"](model, num_classes)
    assert model.fc.out_features == num_classes
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    assert ns["count_parameters"](model, trainable_only=True) == in_features * num_classes + num_classes


def test_differential_param_groups_are_disjoint_and_complete(ns):
    model = meta_model(torchvision.models.resnet18)
    model.fc = nn.Linear(model.fc.in_features, 4, device="meta")
    for p in model.layer1.parameters():  # a partly frozen backbone: frozen weights stay out
        p.requires_grad = False
    groups = ns["differential_param_groups"](model, head_lr=3e-3, backbone_lr=2e-5)
    by_name = {g["name"]: g for g in groups}
    assert by_name["head"]["lr"] == 3e-3 and by_name["backbone"]["lr"] == 2e-5
    head_ids = {id(p) for p in by_name["head"]["params"]}
    body_ids = {id(p) for p in by_name["backbone"]["params"]}
    assert head_ids == {id(model.fc.weight), id(model.fc.bias)}
    assert not head_ids & body_ids
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert head_ids | body_ids == trainable
    assert not {id(p) for p in model.layer1.parameters()} & body_ids


# --------------------------------------------------------------------------- weights: both paths


def resnet_and_weights(arch):
    return getattr(torchvision.models, arch), torchvision.models.get_model_weights(arch).DEFAULT


def random_checkpoint(tmp_path, ns, arch):
    """Write a state_dict of the right architecture where torch.hub looks for the cached download."""
    weights = resnet_and_weights(arch)[1]
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(123)
    state = getattr(torchvision.models, arch)(weights=None).state_dict()
    torch.save(state, checkpoints / os.path.basename(weights.url))
    return state


def refuse_downloads(monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)


@pytest.mark.parametrize("arch", ("resnet18", "resnet50"))
def test_loader_uses_a_cached_pretrained_checkpoint(ns, tmp_path, monkeypatch, capsys, arch):
    saved = random_checkpoint(tmp_path, ns, arch)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    refuse_downloads(monkeypatch)  # proves the file was found, not fetched
    builder, weights = resnet_and_weights(arch)
    model, pretrained = ns["load_pretrained"](builder, weights)
    assert pretrained is True
    out = capsys.readouterr().out
    assert "Notice" not in out and out.splitlines() == [f"Loaded pretrained {weights}."]
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k].cpu(), v) for k, v in saved.items())
    assert not model.training


@pytest.mark.parametrize("arch", ("resnet18", "resnet50"))
def test_loader_falls_back_offline_with_one_line(ns, tmp_path, monkeypatch, capsys, arch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    refuse_downloads(monkeypatch)
    builder, weights = resnet_and_weights(arch)
    model, pretrained = ns["load_pretrained"](builder, weights)
    assert pretrained is False
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Notice: pretrained {weights} weights unavailable")
    assert "random weights" in lines[0] and "URLError" in lines[0]
    assert not model.training
    assert len(weights.meta["categories"]) == model.fc.out_features
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64, device=next(model.parameters()).device)).shape == (1, 1000)


# --------------------------------------------------------------------------- the whole notebook


def table_rows(text):
    """Parse the depth experiment's printed table: depth | grad loss error% | grad loss error%."""
    number = r"([-+0-9.e]+)"
    pattern = re.compile(rf"^\s*(\d+) \|\s+{number}\s+{number}\s+{number}%\s+\|\s+{number}\s+{number}\s+{number}%\s*$")
    rows = []
    for line in text.splitlines():
        match = pattern.match(line)
        if match:
            d, pg, pl, pe, rg, rl, re_ = match.groups()
            rows.append((int(d), float(pg), float(pe) / 100, float(rg), float(re_) / 100))
    return rows


@pytest.fixture(scope="module")
def executed():
    nb, seconds = execute_notebook(NOTEBOOK, timeout=600)
    print(f"\nlesson 1 executed top to bottom in {seconds:.1f} s")
    return nb, seconds


@pytest.mark.slow
def test_notebook_runs_clean(executed, record_property):
    nb, seconds = executed
    record_property("lesson01_seconds", round(seconds, 1))
    err = stderr_text(nb)
    for bad in ("Traceback", "Error", "Warning", "warn"):
        assert bad not in err, f"stderr output in lesson 1:\n{err}"
    assert all(o.get("output_type") != "error" for c in nb.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_notebook_prints_the_gradient_facts(executed):
    text = outputs_text(executed[0])
    for depth in (5, 20, 50):
        assert f"0.85^{depth - 1} = {math.pow(0.85, depth - 1):.3g}" in text
    assert f"0.01: {0.01 * math.pow(0.85, 49):.3g}" in text
    answer = brute_force_depth_below(0.9, 0.01)
    assert f"ln(0.01) / ln(0.9) = {math.log(0.01) / math.log(0.9):.2f}" in text
    assert f"first depth below 1 % is L = {answer}" in text
    assert "equal to the identity: True" in text


@pytest.mark.slow
def test_notebook_measurement_shows_degradation(executed):
    text = outputs_text(executed[0])
    rows = table_rows(text)
    assert [r[0] for r in rows] == [2, 4, 8, 16, 32]
    plain_grad = [r[1] for r in rows]
    plain_err = [r[2] for r in rows]
    res_grad = [r[3] for r in rows]
    res_err = [r[4] for r in rows]
    assert all(a > b for a, b in itertools.pairwise(plain_grad)), "plain gradient should shrink with depth"
    assert plain_grad[-1] < plain_grad[0] * 1e-4
    assert max(res_grad) < 10 * min(res_grad), "residual gradient should stay within an order of magnitude"
    assert plain_err[-1] > plain_err[0] + 0.2, "plain training error should rise with depth"
    assert all(b <= a + 1e-9 for a, b in itertools.pairwise(res_err)), "residual error should not rise with depth"
    baseline = float(re.search(r"most frequent class gives ([0-9.]+)% error", text).group(1)) / 100
    assert abs(plain_err[-1] - baseline) < 0.05
    # the printed per-layer factor is the geometric fit of the printed plain gradients
    printed_delta = float(re.search(r"plain tanh stack: delta ≈ ([0-9.]+)", text).group(1))
    depths = [r[0] for r in rows]
    mean_d = sum(depths) / len(depths)
    logs = [math.log(g) for g in plain_grad]
    mean_l = sum(logs) / len(logs)
    covariance = sum((d - mean_d) * (lg - mean_l) for d, lg in zip(depths, logs, strict=True))
    slope = covariance / sum((d - mean_d) ** 2 for d in depths)
    assert abs(printed_delta - math.exp(slope)) < 0.015


@pytest.mark.slow
def test_notebook_prints_the_architecture_facts(executed):
    text = outputs_text(executed[0])
    assert "RuntimeError: The size of tensor" in text
    side = (32 + 2 - 3) // 2 + 1
    assert f"output (4, 128, {side}, {side}) expected (4, 128, {side}, {side}) -> OK" in text
    assert "branch zeroed -> block(x) == relu(x): True" in text
    assert f"BasicBlock(256 -> 256):  {n_params(BasicBlock(256, 256)):>9,}" in text
    assert f"Bottleneck(256 -> 256):  {n_params(Bottleneck(256, 64)):>9,}" in text
    counts = {
        name: n_params(meta_model(getattr(torchvision.models, name))) for name in ("resnet18", "resnet34", "resnet50")
    }
    for name, layers in (("resnet18", "18"), ("resnet34", "34"), ("resnet50", "50")):
        row = next(ln for ln in text.splitlines() if ln.startswith(f"ResNet-{layers} "))
        assert row.split()[-1] == f"{counts[name]:,}" and row.split()[-2] == layers
    stacked = next(ln for ln in text.splitlines() if ln.startswith("ResNet(BasicBlock, [3, 4, 6, 3])"))
    assert f"{counts['resnet34']:,} parameters, 34 weighted layers" in stacked
    assert re.search(rf"resnet34:\s+{counts['resnet34']:,} parameters -> same model: True", text)
    assert re.search(rf"resnet50:\s+{counts['resnet50']:,} parameters -> same model: False", text)


@pytest.mark.slow
def test_notebook_prints_the_transfer_learning_facts(executed):
    text = outputs_text(executed[0])
    weights = torchvision.models.ResNet50_Weights.DEFAULT
    categories = set(weights.meta["categories"])
    assert f"{len(categories)} class names in weights.meta" in text
    for name in ("ResNet-18", "ResNet-50"):
        block = text.split(f"{name} top-5", 1)[1].splitlines()[1:]
        entries = [ln for ln in block if ln.strip()][:5]
        probs = [float(ln.split("%")[0]) for ln in entries]
        labels = [ln.split("%", 1)[1].strip() for ln in entries]
        assert all(label in categories for label in labels)
        assert probs == sorted(probs, reverse=True)
    width = meta_model(torchvision.models.resnet50).fc.in_features
    side = 224 // 32  # ResNet downsamples by 32 overall
    assert f"embedding shape: (1, {width}) | fc.in_features = {width}" in text
    assert f"layer4 output:   (1, {width}, {side}, {side})" in text
    assert "spatial average of layer4 == embedding: True" in text
    assert f"trainable {width * 5 + 5:,} of" in text
    head = float(re.search(r"change\| of head\s+weights after one step: ([0-9.e+-]+)", text).group(1))
    body = float(re.search(r"change\| of backbone weights after one step: ([0-9.e+-]+)", text).group(1))
    assert head > 20 * body, "the head's learning rate is 100x the backbone's"
    train = float(re.search(r"train mode: .* max logit difference ([0-9.e+-]+)", text).group(1))
    evaluation = float(re.search(r"eval mode: .* max logit difference ([0-9.e+-]+)", text).group(1))
    assert evaluation < 1e-4 < train


@pytest.mark.slow
def test_offline_run_says_so_once_per_model(executed):
    text = outputs_text(executed[0])
    offline = "(pretrained: False)" in text
    for arch in ("resnet18", "resnet50"):
        weights = torchvision.models.get_model_weights(arch).DEFAULT
        notices = [ln for ln in text.splitlines() if ln.startswith(f"Notice: pretrained {weights} weights unavailable")]
        assert len(notices) == (1 if offline else 0)
    if offline:
        assert text.count("(random weights: these labels are meaningless)") == 2


# --------------------------------------------------------------------------- issue 20: corrected claims, pinned


def test_make_stack_batchnorm_only_adds_normalisation(ns):
    plain = ns["make_stack"](6, residual=False, seed=4)
    normed = ns["make_stack"](6, residual=False, seed=4, batchnorm=True)
    assert sum(isinstance(m, nn.BatchNorm1d) for m in normed.modules()) == 6
    assert not any(isinstance(m, nn.BatchNorm1d) for m in plain.modules())
    plain_linears = [m for m in plain.modules() if isinstance(m, nn.Linear)]
    normed_linears = [m for m in normed.modules() if isinstance(m, nn.Linear)]
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(plain_linears, normed_linears, strict=True))


def test_block_chain_gradient_is_exactly_one_with_zeroed_last_bn(ns):
    # With bn2's scale at 0 every BasicBlock is relu(x + 0) = x for x >= 0: the gradient passes unchanged.
    for blocks in (1, 3, 8):
        assert math.isclose(ns["block_chain_gradient"](blocks, zero_init_last_bn=True), 1.0, rel_tol=1e-6)
    default = [ns["block_chain_gradient"](blocks) for blocks in (1, 4, 16)]
    assert default[0] < default[1] < default[2], "with the default init the gradient grows with the blocks"
    assert default[2] < 1e-2 * (1 + 0.85**2) ** 16, "but far more slowly than the scalar model"


def test_degradation_verdict(ns):
    results = {"depths": (2, 4, 8), "error": [0.1, 0.0, 0.05]}
    verdict = ns["degradation_verdict"](results)
    assert verdict == {"best_depth": 4, "best_error": 0.0, "deepest_depth": 8, "deepest_error": 0.05, "degrades": True}
    assert ns["degradation_verdict"]({"depths": (2, 4), "error": [0.1, 0.1]})["degrades"] is False


@pytest.mark.slow
def test_notebook_prints_the_calculator_answer(executed):
    text = outputs_text(executed[0])
    d85, d95 = brute_force_depth_below(0.85, 0.01), brute_force_depth_below(0.95, 0.01)
    assert f"delta = 0.85 -> L = {d85}, delta = 0.95 -> L = {d95}: {d95 / d85:.2f}x deeper" in text
    assert f"ln(0.85) / ln(0.95) = {math.log(0.85) / math.log(0.95):.2f}" in text


@pytest.mark.slow
def test_notebook_shows_real_blocks_do_not_compound_like_the_scalar_model(executed):
    text = outputs_text(executed[0])
    rows = [ln.split("|") for ln in text.splitlines() if re.match(r"^\s*\d+ \|\s+[0-9.]+ \|\s+[0-9.]+ \|", ln)]
    assert [int(r[0]) for r in rows] == [1, 2, 4, 8, 16, 32]
    for blocks, _default, zeroed, scalar in ((int(a), float(b), c.strip(), d.strip()) for a, b, c, d in rows):
        assert zeroed == "1.000", "with the last BN scale zeroed every block is the identity"
        assert scalar == f"{(1 + 0.85**2) ** blocks:.3g}"
    assert float(rows[-1][1]) < 1e-3 * (1 + 0.85**2) ** 32


@pytest.mark.slow
def test_notebook_separates_vanishing_gradients_from_degradation(executed):
    text = outputs_text(executed[0])
    plain = table_rows(text)
    bn_rows = [
        tuple(float(v.rstrip("%")) for v in m.groups())
        for m in re.finditer(r"^\s*(\d+) \|\s+([0-9.e+-]+)\s+([0-9.]+)\s+([0-9.]+)%$", text, flags=re.M)
    ]
    assert [int(r[0]) for r in bn_rows] == [r[0] for r in plain] == [2, 4, 8, 16, 32]
    bn_grad = [r[1] for r in bn_rows]
    bn_err = [r[3] / 100 for r in bn_rows]
    assert min(bn_grad) > 1e4 * plain[-1][1], "with BatchNorm the first-layer gradient must not vanish"
    assert min(bn_grad) > 0.05
    degrades = bn_err[-1] > min(bn_err[:-1])
    assert degrades, "the BN stack is meant to show degradation with healthy gradients"
    assert re.search(
        rf"deepest \(depth 32\) training error {bn_err[-1]:.1%} vs {min(bn_err[:-1]):.1%} at depth "
        rf"\d+ -> worse when deeper: {degrades}",
        text,
    )
    baseline = float(re.search(r"most frequent class gives ([0-9.]+)% error", text).group(1)) / 100
    stuck = [r[0] for r in plain if r[2] >= baseline - 0.05]
    assert f"within 5 points of the majority baseline ({baseline:.1%}): {stuck[0]}" in text


@pytest.mark.parametrize("in_ch,out_ch,stride,size", [(64, 128, 2, 32), (64, 64, 1, 32), (16, 16, 2, 9)])
def test_block_diagram_shows_the_shortcut_and_the_shapes(ns, in_ch, out_ch, stride, size):
    fig = ns["Figure"]()
    ax = fig.subplots()
    ns["draw_residual_block"](ax, in_ch, out_ch, stride, size=size)
    texts = " | ".join(t.get_text() for t in ax.texts)
    side = (size + 2 - 3) // stride + 1
    assert f"x: ({in_ch}, {size}, {size})" in texts and f"out: ({out_ch}, {side}, {side})" in texts
    projected = stride != 1 or in_ch != out_ch
    assert ("1×1 conv" in texts) is projected and ("identity" in texts) is not projected
    assert "ReLU (after the addition)" in texts
