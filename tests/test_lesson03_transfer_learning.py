"""Lesson 3 (transfer learning): the notebook runs top to bottom, its pure functions and widgets give the
right answers (counted independently on torchvision's mobilenet_v2), and its data/weights loaders take
every path: local copy, download, synthetic fallback, pretrained checkpoint, offline."""

from __future__ import annotations

import copy
import math
import re
import urllib.error
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch
import torchvision

from tests.conftest import LAYOUT
from tools.bench_cached_features import calibrate_batchnorm  # random weights -> features of a usable scale
from tools.notebooks import execute_notebook, notebook_namespace, outputs_text, stderr_text

NOTEBOOK = LAYOUT.lessons / "03_transfer_learning.ipynb"
RANK = {"A": 0, "B": 1, "C": 2}


@pytest.fixture(scope="module")
def ns():
    return notebook_namespace(NOTEBOOK)


@pytest.fixture(scope="module")
def photos(ns):
    return ns["photo_batch"](size=64)


def controls(widget):
    """The interactive's input widgets by argument name."""
    names = list(widget.kwargs.keys())
    return dict(zip(names, widget.kwargs_widgets, strict=True))


# ---------------------------------------------------------------- independent references


def independent_trainable(num_classes, strategy, n_unfreeze=3):
    """Trainable and total parameters, counted by parameter name on a fresh torchvision model."""
    model = torchvision.models.mobilenet_v2(num_classes=num_classes)
    num_blocks = len(model.features)
    first_trainable = {"A": num_blocks, "B": num_blocks - n_unfreeze, "C": 0}[strategy]
    trainable = 0
    for name, p in model.named_parameters():
        parts = name.split(".")
        if parts[0] == "classifier" or (parts[0] == "features" and int(parts[1]) >= first_trainable):
            trainable += p.numel()
    return trainable, sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- the notebook as a student runs it


@pytest.fixture(scope="module")
def executed():
    """The lesson run once, top to bottom, for every test of this module that reads its outputs."""
    nb, seconds = execute_notebook(NOTEBOOK, timeout=600)
    print(f"\nlesson 3 executed in {seconds:.1f} s (budget 30 s on an idle 2-core CPU; this machine is shared)")
    return nb


@pytest.mark.slow
def test_notebook_runs_top_to_bottom_and_prints_consistent_results(executed):
    nb = executed
    text = outputs_text(nb)
    assert "Traceback" not in stderr_text(nb) and "Warning:" not in stderr_text(nb), stderr_text(nb)

    # One visible notice for the dataset and for each pretrained model.
    assert re.search(r"^Dataset: (local copy|downloaded|no local copy)", text, re.M)
    for weights in (torchvision.models.ResNet18_Weights.DEFAULT, torchvision.models.MobileNet_V2_Weights.DEFAULT):
        said = [
            ln
            for ln in text.splitlines()
            if ln == f"Loaded pretrained {weights}."
            or ln.startswith(f"Notice: pretrained {weights} weights unavailable")
        ]
        assert len(said) == 1, f"one line about {weights}, got {said}"

    # The fine-tuning walk-through counts what torchvision's model really has.
    head_only, _ = independent_trainable(5, "A")
    partial, total = independent_trainable(5, "B", 3)
    assert f"after replacing the head:    {head_only:>9,} trainable" in text
    assert f"after unfreezing 3 blocks:   {partial:>9,} trainable of {total:,}" in text

    # Cached and uncached strategy A computed the same thing.
    m = re.search(r"accuracies ([\d.]+)% vs ([\d.]+)%", text)
    assert m and m.group(1) == m.group(2), text
    gap = float(re.search(r"training-loss difference between the two runs: ([\d.e+-]+)", text).group(1))
    assert gap < 1e-4
    assert re.search(r"speed-up [\d.]+×", text)

    # The traps printed their real errors and the BatchNorm fix worked.
    assert "optimizer got an empty parameter list" in text
    assert "does not require grad" in text
    assert "shapes cannot be multiplied" in text
    bn_layers = sum(isinstance(m, torch.nn.BatchNorm2d) for m in torchvision.models.mobilenet_v2().modules())
    assert f"model.train() only                : {bn_layers} of {bn_layers} BN layers changed" in text
    assert f"with the fix (frozen BN in eval)  : 0 of {bn_layers} BN layers changed" in text

    # Three widgets rendered (figures are not checked: the harness runs matplotlib with the Agg backend).
    views = [
        o
        for c in nb.cells
        for o in c.get("outputs", [])
        if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
        and "interactive" in o["data"].get("text/plain", "")
    ]
    assert len(views) == 3


def test_notebook_structure_follows_course_conventions():
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    assert all(c.get("id") for c in nb.cells)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert markdown.count("<details>") >= 5 and markdown.count("<details>") == markdown.count("</details>")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for needle in (
        "add_param_group",
        "from tqdm.auto import tqdm",
        'torch.device("cuda" if torch.cuda.is_available()',
        "COURSE_FULL_RUN",
        "skimage.data.chelsea()",
        "MobileNet_V2_Weights.DEFAULT",
    ):
        assert needle in code, needle
    functions = [c for c in nb.cells if "functions" in c.metadata.get("tags", [])]
    assert functions, "pure functions and widget builders belong in cells tagged 'functions'"
    for cell in functions:  # cheap and side-effect free: no training, no downloads, no display
        assert "display(make_" not in cell.source and "find_hymenoptera()" not in cell.source


def lesson_markdown():
    return "\n".join(c.source for c in nbformat.read(str(NOTEBOOK), as_version=4).cells if c.cell_type == "markdown")


def test_markdown_rule_table_and_quick_check_match_the_code(ns):
    markdown = lesson_markdown()
    edges = [ns["SMALL_MAX"], ns["LARGE_MIN"]]
    lows = [0] + edges
    for similar, label in [(True, "similar to ImageNet"), (False, "different from ImageNet")]:
        row = "| " + " | ".join([label] + [ns["choose_strategy"](low, similar) for low in lows]) + " |"
        assert row in markdown, f"the markdown table disagrees with choose_strategy: expected row {row}"
    for edge in edges:
        assert f"{edge:,}" in markdown
    # The quick check's number is printed by code, never typed: the answer comes after the cell that computes it.
    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    index = next(
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "discriminative_lrs(5e-4, 0.3, 3)" in c.source
    )
    answer = nb.cells[index + 1]
    assert answer.cell_type == "markdown" and answer.source.startswith("<details>")
    assert "cell above prints" in answer.source
    quick = ns["discriminative_lrs"](5e-4, 0.3, 3)[0]
    for typed in (f"{quick:.1e}", f"{quick:.2e}", "4.5\\times10^{-5}", "10^{-6}"):
        assert typed not in markdown, f"a number typed into the text: {typed}"


# ---------------------------------------------------------------- strategy rule (widget 1)


def course_table(num_images, similar):
    """The course's table (lesson 3 and exercise 5), written independently, column by column."""
    columns = [(1_000, "A", "A"), (50_000, "B", "B")]
    for upper, if_similar, if_different in columns:
        if num_images < upper:
            return if_similar if similar else if_different
    return "B" if similar else "C"


def test_exercise_five_scenarios(ns):
    choose = ns["choose_strategy"]
    assert choose(300, True) == "A"
    assert choose(5_000, False) == "B"
    assert choose(200_000, False) == "C"


@pytest.mark.parametrize("similar", [True, False])
def test_rule_matches_the_course_table_and_is_monotone(ns, similar):
    choose = ns["choose_strategy"]
    sizes = sorted(
        {0, 1, 10, 299, 5_000, 10**6, 10**7} | {e + d for e in (1_000, 10_000, 50_000, 100_000) for d in (-1, 0, 1)}
    )
    for n in sizes:
        assert choose(n, similar) == course_table(n, similar), (n, similar)
        assert RANK[choose(n, False)] >= RANK[choose(n, True)], "a new domain never asks for less unfreezing"
    ranks = [RANK[choose(n, similar)] for n in sizes]
    assert ranks == sorted(ranks), "more data must never mean unfreezing less"
    with pytest.raises(ValueError):
        choose(-1, similar)


def test_rule_agrees_with_exercise_five_solution(ns):
    source = LAYOUT.source() / "ex56_transfer_learning.ipynb"
    if not source.exists():
        pytest.skip("exercise 5 source not there yet")
    cells = [
        c.source
        for c in nbformat.read(str(source), as_version=4).cells
        if c.cell_type == "code" and "def choose_strategy" in c.source
    ]
    assert len(cells) == 1
    exercise = {}
    exec(cells[0], exercise)
    lesson = ns["choose_strategy"]
    for n in list(range(0, 200_000, 997)) + [999, 1_000, 9_999, 10_000, 49_999, 50_000, 99_999, 100_000]:
        for similar in (True, False):
            assert lesson(n, similar) == exercise["choose_strategy"](n, similar), (n, similar)


def test_decide_strategy_explains_itself(ns):
    for n in (10, 300, 5_000, 20_000, 60_000, 200_000):
        for similar in (True, False):
            d = ns["decide_strategy"](n, similar)
            assert d["strategy"] == ns["choose_strategy"](n, similar) and d["band"] == ns["size_band"](n)
            assert d["reasoning"].startswith(f"{n:,} images ({d['band']})") and len(d["reasoning"]) > 80
            assert d["recommended_dataset"] == ns["recommended_dataset"](d["strategy"])


def test_decision_matrix_widget_follows_its_controls(ns):
    w = ns["make_decision_matrix_widget"]()
    c = controls(w)
    assert w.result["strategy"] == "A"
    for n, similar in [(5_000, False), (200_000, False), (60_000, True), (20, False), (1_000, True)]:
        c["num_images"].value = n
        c["similar_domain"].value = similar
        assert w.result["num_images"] == n
        assert w.result["strategy"] == ns["choose_strategy"](n, similar)
    fig = ns["plot_decision_matrix"](200_000, False)
    cells = [t.get_text().split("\n")[0] for t in fig.axes[0].texts]
    assert len(cells) == 6 and cells.count("A") == 2 and cells.count("B") == 3 and cells.count("C") == 1


# ---------------------------------------------------------------- MobileNetV2 selector (widget 2)


def test_block_count_matches_torchvision(ns):
    assert ns["NUM_BLOCKS"] == len(torchvision.models.mobilenet_v2().features)
    covered = sorted(i for r in ns["BACKBONE_GROUPS"].values() for i in r)
    assert covered == list(range(ns["NUM_BLOCKS"]))


@pytest.mark.parametrize("num_classes", [2, 5, 37, 1000])
def test_selector_counts_match_an_independent_count(ns, num_classes):
    model = ns["build_mobilenet_v2"](num_classes=7)  # built once, re-headed by strategy_summary
    for strategy, n in [("A", 3), ("B", 1), ("B", 3), ("B", 10), ("C", 3), ("A", 3)]:
        s = ns["strategy_summary"](model, strategy, num_classes, n_unfreeze=n)
        trainable, total = independent_trainable(num_classes, strategy, n)
        assert (s["trainable"], s["total"]) == (trainable, total), (strategy, n, num_classes)
        assert s["share"] == pytest.approx(trainable / total)
        expected_frozen = {"A": list(range(19)), "B": list(range(19 - n)), "C": []}[strategy]
        assert s["frozen_blocks"] == expected_frozen
        assert sum(b["trainable"] for b in s["blocks"]) == trainable
        assert s["blocks"][-1]["trainable"] == 1280 * num_classes + num_classes


def test_selector_rates_follow_the_discriminative_rule(ns):
    rates = ns["strategy_rates"]
    assert rates("A") == {"head": 1e-3}
    b = rates("B", n_unfreeze=3, head_lr=1e-3, r=0.1)
    assert list(b) == ["blocks 16–18", "head"] and b["blocks 16–18"] == pytest.approx(1e-4)
    c = rates("C", head_lr=2e-3, r=0.5)
    assert list(c) == ["early", "middle", "late", "head"]
    assert list(c.values()) == pytest.approx([2e-3 * 0.5**3, 2e-3 * 0.5**2, 2e-3 * 0.5, 2e-3])


def test_selector_widget_builds_the_model_once_and_follows_its_controls(ns):
    model = ns["build_mobilenet_v2"](num_classes=2)
    first_block_weight = model.features[0][0].weight
    w = ns["make_strategy_selector_widget"](model)
    c = controls(w)
    for strategy, k, n in [("B", 10, 5), ("C", 3, 5), ("A", 100, 5), ("B", 2, 18)]:
        c["strategy"].value, c["num_classes"].value, c["n_unfreeze"].value = strategy, k, n
        trainable, total = independent_trainable(k, strategy, n)
        assert (w.result["trainable"], w.result["total"]) == (trainable, total)
        assert w.result["recommended_dataset"] == ns["recommended_dataset"](strategy)
    assert model.features[0][0].weight is first_block_weight, "the backbone must be built once and reused"


# ---------------------------------------------------------------- discriminative learning rates (widget 3)


@pytest.mark.parametrize(
    "head_lr,r,groups", [(1e-3, 0.1, 3), (5e-4, 0.3, 3), (3e-2, 0.5, 6), (1e-4, 1.0, 4), (7e-3, 0.25, 1)]
)
def test_discriminative_lrs_formula(ns, head_lr, r, groups):
    lrs = ns["discriminative_lrs"](head_lr, r, groups)
    big_l = groups - 1
    assert lrs == pytest.approx([head_lr * r ** (big_l - layer) for layer in range(groups)])
    assert lrs[-1] == pytest.approx(head_lr)
    for earlier, later in zip(lrs, lrs[1:], strict=False):
        assert earlier == pytest.approx(later * r)


def test_discriminative_lrs_rejects_no_groups(ns):
    with pytest.raises(ValueError):
        ns["discriminative_lrs"](1e-3, 0.1, 0)


def test_lr_calculator_widget_follows_its_controls(ns):
    w = ns["make_lr_calculator_widget"]()
    c = controls(w)
    for head_lr, r, groups in [(1e-2, 0.5, 4), (1e-4, 0.2, 2), (1e-3, 1.0, 8)]:
        c["head_lr"].value, c["r"].value, c["num_groups"].value = head_lr, r, groups
        lrs = [row["lr"] for row in w.result]
        assert len(lrs) == groups
        assert lrs == pytest.approx([head_lr * r ** (groups - 1 - i) for i in range(groups)], rel=1e-6)
        assert w.result[-1]["name"] == "head" and w.result[0]["times_smaller"] == pytest.approx(1 / r ** (groups - 1))


# ---------------------------------------------------------------- the traps


def test_forgotten_head_gives_the_real_errors(ns, photos):
    x, y = photos
    model = torchvision.models.mobilenet_v2()
    result = ns["forgotten_head_demo"](model, x, y)
    assert result["logits_shape"] == (len(y), 1000)
    assert result["optimizer_error"].startswith("ValueError") and "empty parameter list" in result["optimizer_error"]
    assert result["backward_error"].startswith("RuntimeError") and "does not require grad" in result["backward_error"]
    assert "1280" in result["wrong_size_error"] and "512" in result["wrong_size_error"]
    assert all(p.requires_grad for p in model.parameters()), "the demo must work on a copy"


def test_frozen_batchnorm_statistics_move_unless_put_in_eval(ns, photos):
    x, _ = photos
    model = torchvision.models.mobilenet_v2()
    bn_layers = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    drift = ns["batchnorm_drift"](model, x, fix=False)
    assert drift["bn_layers"] == bn_layers and drift["bn_layers_changed"] == bn_layers
    assert drift["max_shift"] > 0 and not drift["params_changed"]
    fixed = ns["batchnorm_drift"](model, x, fix=True)
    assert fixed["bn_layers_changed"] == 0 and fixed["max_shift"] == 0 and not fixed["params_changed"]


def test_keep_frozen_bn_in_eval_leaves_trainable_bn_alone(ns):
    model = ns["apply_strategy"](ns["build_mobilenet_v2"](2), "B", n_unfreeze=2)
    ns["train_mode"](model)
    for i, block in enumerate(model.features):
        for m in block.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                assert m.training == (i >= 17), (i, m.training)
    assert model.classifier.training


def test_optimizer_only_moves_unfrozen_blocks_it_was_told_about(ns, photos):
    x, y = photos
    model = torchvision.models.mobilenet_v2(num_classes=2)
    silent = ns["optimizer_reach_demo"](model, x, y, add_group=False)
    assert silent == {"param_groups": 1, "got_gradient": True, "block_moved": False}
    told = ns["optimizer_reach_demo"](model, x, y, add_group=True)
    assert told == {"param_groups": 2, "got_gradient": True, "block_moved": True}


# ---------------------------------------------------------------- data loaders


def test_synthetic_fallback_split(ns):
    X, y, classes, paths = ns["make_synthetic_split"](5, 48, seed=3)
    assert X.shape == (10, 3, 48, 48) and y.tolist() == [0] * 5 + [1] * 5 and len(classes) == 2 and paths == []
    X2, *_ = ns["make_synthetic_split"](5, 48, seed=3)
    assert torch.equal(X, X2)


def test_no_copy_and_failed_download_means_synthetic(ns, tmp_path):
    root, notice = ns["find_hymenoptera"](tmp_path / "nb", env={}, url=(tmp_path / "missing.zip").as_uri())
    assert root is None and notice.startswith("Dataset:") and "synthetic" in notice


def test_download_path_extracts_the_zip(ns, tmp_path, hymenoptera):
    archive = tmp_path / "hymenoptera_data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for split in ("train", "val"):
            for cls in ("ants", "bees"):
                for path in sorted((hymenoptera / split / cls).iterdir())[:2]:
                    zf.write(path, f"hymenoptera_data/{split}/{cls}/{path.name}")
    notebook_dir = tmp_path / "colab"
    notebook_dir.mkdir()
    root, notice = ns["find_hymenoptera"](notebook_dir, env={}, url=archive.as_uri())
    assert root == notebook_dir / "data" / "hymenoptera_data" and notice.startswith("Dataset: downloaded")
    items, classes = ns["list_images"](root / "train")
    assert classes == ["ants", "bees"] and len(items) == 4
    again, notice = ns["find_hymenoptera"](notebook_dir, env={}, url="file:///nowhere.zip")
    assert again == root.resolve() and notice.startswith("Dataset: local copy")  # no second download


def test_local_copy_found_by_env_var_and_relative_path(ns, hymenoptera, tmp_path):
    root, notice = ns["find_hymenoptera"](tmp_path, env={"HYMENOPTERA_DIR": str(hymenoptera)})
    assert root == hymenoptera.resolve() and notice.startswith("Dataset: local copy")
    root, _ = ns["find_hymenoptera"](LAYOUT.lessons, env={})
    assert root == hymenoptera.resolve()


def test_list_images_skips_the_gif_and_keeps_the_space(ns, hymenoptera):
    for split in ("train", "val"):
        items, classes = ns["list_images"](hymenoptera / split)
        on_disk = [
            p
            for c in classes
            for p in (hymenoptera / split / c).iterdir()
            if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        ]
        assert len(items) == len(on_disk)
        assert not any(p.suffix == ".gif" for p, _ in items)
    train, _ = ns["list_images"](hymenoptera / "train")
    assert any(" " in p.name for p, _ in train)
    assert any(p.suffix == ".gif" for p in (hymenoptera / "train").rglob("*")), "the decoy should be on disk"


def test_load_split_balanced_subset_of_real_images(ns, hymenoptera):
    transform = ns["models"].MobileNet_V2_Weights.DEFAULT.transforms(crop_size=64, resize_size=72)
    X, y, classes, paths = ns["load_split"](hymenoptera, "train", transform, 72, per_class=3)
    assert X.shape == (6, 3, 64, 64) and y.bincount().tolist() == [3, 3] and classes == ["ants", "bees"]
    assert all(Path(p).parent.name == classes[label] for p, label in zip(paths, y.tolist(), strict=True))
    X2, *_ = ns["load_split"](hymenoptera, "train", transform, 72, per_class=3)
    assert torch.equal(X, X2), "the subset must be seeded"


# ---------------------------------------------------------------- the fine-tuning pipeline on real images


@pytest.fixture(scope="module")
def real_subset(ns, hymenoptera):
    transform = ns["models"].MobileNet_V2_Weights.DEFAULT.transforms(crop_size=64, resize_size=72)
    X_train, y_train, classes, _ = ns["load_split"](hymenoptera, "train", transform, 72, per_class=8)
    X_val, y_val, _, _ = ns["load_split"](hymenoptera, "val", transform, 72, per_class=6)
    return {"X_train": X_train, "y_train": y_train, "X_val": X_val, "y_val": y_val}, classes


def test_cached_and_uncached_strategy_a_agree(ns, real_subset):
    data, classes = real_subset
    torch.manual_seed(1)
    model = ns["replace_head"](calibrate_batchnorm(torchvision.models.mobilenet_v2(), data["X_train"]), len(classes))
    assert ns["extract_features"](model, data["X_val"]).std() > 1e-2, "features too small to test anything"
    head = {k: v.clone() for k, v in model.classifier.state_dict().items()}
    backbone = {k: v.clone() for k, v in model.features.state_dict().items()}
    uncached = ns["run_strategy_a"](model, data, cached=False, epochs=2, head_state=head, batch_size=4)
    cached = ns["run_strategy_a"](model, data, cached=True, epochs=2, head_state=head, batch_size=4)
    assert [h["val_acc"] for h in uncached["history"]] == [h["val_acc"] for h in cached["history"]]
    for a, b in zip(uncached["history"], cached["history"], strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4, abs=1e-6)
        assert a["train_acc"] == b["train_acc"]
    assert cached["extract_seconds"] > 0 and uncached["extract_seconds"] < cached["extract_seconds"]
    for k, v in model.features.state_dict().items():  # weights and BatchNorm statistics untouched
        assert torch.equal(v, backbone[k]), k
    assert not torch.equal(model.classifier[1].weight, head["1.weight"]), "the head must have trained"


def test_strategy_b_unfreezes_only_the_last_blocks(ns, real_subset):
    data, classes = real_subset
    torch.manual_seed(2)
    model = ns["replace_head"](calibrate_batchnorm(torchvision.models.mobilenet_v2(), data["X_train"]), len(classes))
    head = {k: v.clone() for k, v in model.classifier.state_dict().items()}
    a = ns["run_strategy_a"](model, data, cached=True, epochs=1, head_state=head, batch_size=8)
    before = [[p.detach().clone() for p in block.parameters()] for block in model.features]
    optimizer = a["optimizer"]
    b = ns["continue_with_strategy_b"](model, optimizer, data, n_unfreeze=2, backbone_lr=1e-4, epochs=1, batch_size=8)
    assert len(optimizer.param_groups) == 2 and optimizer.param_groups[1]["lr"] == 1e-4
    last_two = torchvision.models.mobilenet_v2().features[-2:]
    expected_new = sum(p.numel() for p in last_two.parameters())
    assert b["newly_trainable"] == expected_new
    for i, block in enumerate(model.features):
        moved = any(not torch.equal(p0, p) for p0, p in zip(before[i], block.parameters(), strict=True))
        assert moved == (i >= len(model.features) - 2), f"block {i} moved={moved}"
    assert 0.0 <= b["val_acc"] <= 1.0 and all(h["loss"] == h["loss"] for h in b["history"])


def test_batch_order_is_a_seeded_permutation(ns):
    batches = ns["batch_order"](23, 5, epoch=1, seed=0)
    assert [len(b) for b in batches] == [5, 5, 5, 5, 3]
    assert sorted(torch.cat(batches).tolist()) == list(range(23))
    assert all(torch.equal(a, b) for a, b in zip(batches, ns["batch_order"](23, 5, epoch=1, seed=0), strict=True))
    assert not torch.equal(torch.cat(batches), torch.cat(ns["batch_order"](23, 5, epoch=2, seed=0)))


# ---------------------------------------------------------------- pretrained weights: both paths


@pytest.mark.parametrize("arch,enum_name", [("mobilenet_v2", "MobileNet_V2_Weights"), ("resnet18", "ResNet18_Weights")])
def test_pretrained_checkpoint_is_used_when_present(ns, tmp_path, monkeypatch, arch, enum_name):
    builder, weights_enum = getattr(torchvision.models, arch), getattr(torchvision.models, enum_name)
    torch.manual_seed(5)
    reference = builder()
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(reference.state_dict(), checkpoints / weights_enum.DEFAULT.url.rsplit("/", 1)[-1])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model, pretrained = ns["load_pretrained"](builder, weights_enum.DEFAULT)
    assert pretrained is True and not model.training
    for (name, a), b in zip(model.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_offline_falls_back_to_random_weights_with_a_notice(ns, tmp_path, monkeypatch, capsys):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    weights = torchvision.models.MobileNet_V2_Weights.DEFAULT
    model, pretrained = ns["load_pretrained"](torchvision.models.mobilenet_v2, weights)
    assert pretrained is False
    assert isinstance(model, torchvision.models.MobileNetV2)
    out = capsys.readouterr()
    lines = out.out.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Notice: pretrained {weights} weights unavailable (URLError)")
    assert "random weights" in lines[0]
    assert out.err == "", "the one-line notice replaces torch.hub's own messages"


# ---------------------------------------------------------------- augmentation, schedule, best epoch, comparison, grid


@pytest.mark.parametrize("size,batch", [(16, 3), (24, 5), (32, 1)])
def test_augment_keeps_shape_and_only_crops_and_flips(ns, size, batch):
    torch.manual_seed(size)
    images = torch.rand(batch, 3, size, size)
    out = ns["make_augment"](size)(images)
    assert out.shape == images.shape and out.dtype == images.dtype
    flip_only = ns["make_augment"](size, scale=(1.0, 1.0))
    # With the full image as crop (aspect ratios still vary) a constant image stays constant,
    torch.manual_seed(0)
    constant = flip_only(torch.full((batch, 3, size, size), 0.25))
    assert torch.allclose(constant, torch.full_like(constant, 0.25), atol=1e-5)
    # and seeded runs repeat, while different seeds differ on a textured image.
    torch.manual_seed(1)
    first = ns["make_augment"](size)(images)
    torch.manual_seed(1)
    assert torch.equal(first, ns["make_augment"](size)(images))


@pytest.mark.parametrize(
    "values,start,expected_times", [([0.5, 0.25, 1.0], 0.0, [0.5, 0.75, 1.75]), ([2.0], 3.0, [5.0]), ([], 1.0, [])]
)
def test_accuracy_vs_time_accumulates_seconds(ns, values, start, expected_times):
    history = [{"seconds": s, "val_acc": 0.1 * i} for i, s in enumerate(values)]
    times, accs = ns["accuracy_vs_time"](history, start)
    assert times == pytest.approx(expected_times) and accs == [0.1 * i for i in range(len(values))]


@pytest.fixture(scope="module")
def calibrated(ns, real_subset):
    data, classes = real_subset
    torch.manual_seed(3)
    return calibrate_batchnorm(torchvision.models.mobilenet_v2(), data["X_train"])


def test_best_epoch_weights_are_those_of_the_best_validation_epoch(ns, real_subset, calibrated):
    data, classes = real_subset
    model = ns["replace_head"](copy.deepcopy(calibrated), len(classes))
    ns["apply_strategy"](model, "B", n_unfreeze=2)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    snapshots = []
    original = ns["evaluate"]

    def spying_evaluate(m, forward, inputs, labels, batch_size=64):
        acc = original(m, forward, inputs, labels, batch_size)
        snapshots.append(({k: v.clone() for k, v in m.state_dict().items()}, acc))
        return acc

    ns["evaluate"] = spying_evaluate
    try:
        history, best = ns["train_epochs"](
            model,
            ns["full_forward"],
            data["X_train"],
            data["y_train"],
            data["X_val"],
            data["y_val"],
            optimizer,
            4,
            batch_size=4,
            augment=ns["make_augment"](64),
        )
    finally:
        ns["evaluate"] = original
    accs = [h["val_acc"] for h in history]
    assert best["epoch"] == history[accs.index(max(accs))]["epoch"] and best["val_acc"] == max(accs)
    state, acc = snapshots[accs.index(max(accs))]
    assert acc == best["val_acc"]
    for key, value in state.items():
        assert torch.equal(best["state"][key], value), key
    final = {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best["state"])
    assert original(model, ns["full_forward"], data["X_val"], data["y_val"]) == best["val_acc"]
    if best["epoch"] != history[-1]["epoch"]:
        assert any(not torch.equal(final[k], v) for k, v in best["state"].items()), "a copy, not a live reference"


def test_best_epoch_ties_keep_the_earliest(ns):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # nothing moves: every epoch scores the same
    inputs, labels = torch.randn(6, 2), torch.tensor([0, 1, 0, 1, 0, 1])
    history, best = ns["train_epochs"](
        model, ns["full_forward"], inputs, labels, inputs, labels, optimizer, 3, batch_size=2
    )
    assert len({h["val_acc"] for h in history}) == 1 and best["epoch"] == 1


def test_cosine_schedule_lowers_every_group_per_epoch(ns, real_subset, calibrated):
    data, classes = real_subset
    model = ns["replace_head"](copy.deepcopy(calibrated), len(classes))
    head = {k: v.clone() for k, v in model.classifier.state_dict().items()}
    a = ns["run_strategy_a"](model, data, cached=True, epochs=1, head_state=head, lr=1e-3, batch_size=8)
    b = ns["continue_with_strategy_b"](
        model,
        a["optimizer"],
        data,
        n_unfreeze=1,
        backbone_lr=2e-4,
        epochs=3,
        batch_size=8,
        first_epoch=2,
        cosine=True,
        augment=ns["make_augment"](64),
    )
    for h in b["history"]:
        step = h["epoch"] - 2
        factor = (1 + math.cos(math.pi * step / 3)) / 2
        assert h["lrs"] == pytest.approx([1e-3 * factor, 2e-4 * factor]), h
    assert [h["epoch"] for h in b["history"]] == [2, 3, 4]


def test_compare_strategies_spends_the_same_budget_three_ways(ns, real_subset, calibrated):
    data, classes = real_subset
    small = ns["shrink"](data, 32)
    assert small["X_train"].shape[-2:] == (32, 32) and torch.equal(small["y_val"], data["y_val"])
    backbone = {k: v.clone() for k, v in calibrated.state_dict().items()}
    runs = ns["compare_strategies"](
        calibrated, small, len(classes), epochs_a=2, epochs_b=1, batch_size=8, augment=ns["make_augment"](32)
    )
    assert list(runs) == [
        "from scratch (random weights, all layers)",
        "frozen pretrained features (A, cached)",
        "partial fine-tuning (A, then B)",
    ]
    for label, curve in runs.items():
        assert len(curve["accs"]) == len(curve["times"]) == 3, label
        assert all(0 <= a <= 1 for a in curve["accs"]) and curve["times"] == sorted(curve["times"]), label
        assert curve["times"][0] > 0
    scratch = runs["from scratch (random weights, all layers)"]["run"]["model"]
    assert not torch.equal(scratch.features[0][0].weight, calibrated.features[0][0].weight), "starts from random"
    assert all(p.requires_grad for p in scratch.parameters()), "from scratch trains every layer"
    for k, v in calibrated.state_dict().items():
        assert torch.equal(v, backbone[k]), f"the pretrained model must not change: {k}"


def test_prediction_grid_labels_real_validation_images(ns, hymenoptera):
    transform = ns["models"].MobileNet_V2_Weights.DEFAULT.transforms(crop_size=48, resize_size=56)
    X_val, y_val, classes, paths = ns["load_split"](hymenoptera, "val", transform, 56, per_class=5)
    torch.manual_seed(0)
    model = ns["build_mobilenet_v2"](len(classes))
    for count, columns in [(8, 4), (5, 3), (1, 1)]:
        fig, records = ns["prediction_grid"](
            model, X_val, y_val, classes, transform.mean, transform.std, paths=paths, count=count, columns=columns
        )
        assert len(records) == count and len({r["index"] for r in records}) == count
        model.eval()
        with torch.no_grad():
            predicted = model(X_val[[r["index"] for r in records]]).argmax(1).tolist()
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert len(titles) == count
        for r, title, pred in zip(records, titles, predicted, strict=True):
            path = Path(r["path"])
            assert path.is_file() and path.parent.parent.name == "val", "a real validation image"
            assert r["true"] == path.parent.name == classes[y_val[r["index"]]]
            assert r["predicted"] == classes[pred] and r["correct"] == (r["true"] == r["predicted"])
            assert title == f"true: {r['true']}\npredicted: {r['predicted']}"
        shown = [ax for ax in fig.axes if ax.images]
        assert len(shown) == count
        first = shown[0].images[0].get_array()
        expected = ns["denormalise"](X_val[records[0]["index"]], transform.mean, transform.std)
        assert first.shape == expected.shape and abs(float(first.min())) >= 0 and float(first.max()) <= 1


@pytest.mark.slow
def test_executed_lesson_reports_best_epoch_comparison_and_grid(executed):
    text = outputs_text(executed)
    kept = re.search(
        r"kept the weights of epoch (\d+) \(validation accuracy ([\d.]+)%\); re-evaluated after loading: "
        r"([\d.]+)%",
        text,
    )
    assert kept and kept.group(2) == kept.group(3), "the kept weights score what their epoch scored"
    epochs = re.findall(
        r"  epoch (\d+): rates \['([\d.e+-]+)', '([\d.e+-]+)'\], loss [\d.]+, "
        r"validation accuracy ([\d.]+)%",
        text,
    )
    assert len(epochs) >= 2 and float(epochs[1][1]) < float(epochs[0][1]), "the cosine schedule lowers the rate"
    best = max(float(e[3]) for e in epochs)
    assert float(kept.group(2)) == best and int(kept.group(1)) == int(next(e for e in epochs if float(e[3]) == best)[0])
    for label in (
        "from scratch (random weights, all layers)",
        "frozen pretrained features (A, cached)",
        "partial fine-tuning (A, then B)",
    ):
        assert re.search(re.escape(label) + r"\s+5\s+[\d.]+", text), label
    assert re.search(r"^Offline: .*cannot show", text, re.M) or "ImageNet weights loaded" in text
    assert len(re.findall(r"true (ants|bees|stripes \w+)\s+predicted (ants|bees|stripes \w+)", text)) == 8
