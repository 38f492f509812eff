"""Exercises 5-6 (transfer learning): the case the shared suite (tests/exercises/suite.py) grades, and
this notebook's own checks.

Each single mistake must lose exactly the cells of the function it breaks (stated beside it):
count_trainable, unfreeze_last_blocks and make_optimizer are graded on a MobileNetV2 the grader's probe
prepares itself, so a mistake in build_model costs build_model's cell only, and SCENARIO2_BACKBONE_LR is
graded against the student's own discriminative_lrs. Exercise 5's bank is shorter: the rest of the runs
carry an exercise-6 mistake only."""

from __future__ import annotations

from functools import partial

import pytest

from autograder.cells import grade_id_of
from tests.exercises import submissions
from tests.exercises.suite import Case, DemoSuite, ExerciseSuite
from tests.harness.grading import SOURCE, source_nb
from tools.notebooks import execute_notebook, outputs_text

NAME = "ex56_transfer_learning.ipynb"
edit = partial(submissions.edit, NAME)

BUILD_HEAD = "    model.classifier = nn.Sequential(nn.Dropout(p=0.2), nn.Linear(model.last_channel, num_classes))\n"
BUILD_FREEZE = "    for param in model.parameters():\n        param.requires_grad = False\n"

# (answers, the autograded cells that must lose points) for exercise 5 ...
EX5_WRONG = {
    "hard_coded_scenarios": (  # right on the three scenarios, wrong elsewhere in their table cells
        {
            "ex5_choose_strategy": (
                "def choose_strategy(num_images, similar_domain):\n"
                "    if num_images <= 300:\n        return 'A'\n"
                "    if num_images <= 5_000:\n        return 'B'\n    return 'C'\n"
            )
        },
        {"ex5_test_scenarios", "ex5_test_strategy_table"},
    ),
    "threshold_with_less_or_equal": (
        edit("ex5_choose_strategy", ("if num_images < 1_000:", "if num_images <= 1_000:")),
        {"ex5_test_strategy_table"},
    ),
    "ignores_the_domain": (  # large + similar -> C: CS231n's choice, not this course's table
        edit("ex5_choose_strategy", ("if num_images < 50_000 or similar_domain:", "if num_images < 50_000:")),
        {"ex5_test_strategy_table"},
    ),
    "lower_case_letters": (
        edit(
            "ex5_choose_strategy",
            ('return "A"', 'return "a"'),
            ('return "B"', 'return "b"'),
            ('return "C"', 'return "c"'),
        ),
        {"ex5_test_scenarios", "ex5_test_strategy_table"},
    ),
    "exponent_off_by_one": (  # SCENARIO2_BACKBONE_LR is what the student's function returns: not charged
        edit("ex5_discriminative_lrs", ("r ** (num_groups - 1 - i)", "r ** (num_groups - i)")),
        {"ex5_test_discriminative_lrs"},
    ),
    "head_first": (
        edit("ex5_discriminative_lrs", ("r ** (num_groups - 1 - i)", "r ** i")),
        {"ex5_test_discriminative_lrs"},
    ),
    "returns_a_tuple": (
        edit(
            "ex5_discriminative_lrs",
            ("return [", "return tuple(["),
            ("for i in range(num_groups)]", "for i in range(num_groups)])"),
        ),
        {"ex5_test_discriminative_lrs"},
    ),
    "scenario2_two_steps_down": (
        edit("ex5_scenario2_lr", ("discriminative_lrs(5e-4, 0.1, 2)[0]", "discriminative_lrs(5e-4, 0.1, 3)[0]")),
        {"ex5_test_scenario2_lr"},
    ),
    "scenario2_takes_the_head_rate": (
        edit("ex5_scenario2_lr", ("discriminative_lrs(5e-4, 0.1, 2)[0]", "discriminative_lrs(5e-4, 0.1, 2)[-1]")),
        {"ex5_test_scenario2_lr"},
    ),
}

# ... and for exercise 6. Not in the bank: a build_model that ignores its weights argument. The checks
# call build_model with weights=None only (no check may download or read torch.hub's cache), so that
# mistake is not graded automatically; the demo's "loaded the ImageNet weights" line shows it.
EX6_WRONG = {
    "head_not_replaced": (  # unfreeze/optimizer/count are graded on the grader's own model: one cell
        edit("ex6_build_model", (BUILD_HEAD, "")),
        {"ex6_test_build_model"},
    ),
    "head_created_before_freezing": (
        edit("ex6_build_model", (BUILD_FREEZE + BUILD_HEAD, BUILD_HEAD + BUILD_FREEZE)),
        {"ex6_test_build_model"},
    ),
    "backbone_left_trainable": (edit("ex6_build_model", (BUILD_FREEZE, "")), {"ex6_test_build_model"}),
    "dropout_after_the_linear_layer": (
        edit(
            "ex6_build_model",
            (
                "nn.Sequential(nn.Dropout(p=0.2), nn.Linear(model.last_channel, num_classes))",
                "nn.Sequential(nn.Linear(model.last_channel, num_classes), nn.Dropout(p=0.2))",
            ),
        ),
        {"ex6_test_build_model"},
    ),
    "no_dropout": (
        edit(
            "ex6_build_model",
            (
                "nn.Sequential(nn.Dropout(p=0.2), nn.Linear(model.last_channel, num_classes))",
                "nn.Linear(model.last_channel, num_classes)",
            ),
        ),
        {"ex6_test_build_model"},
    ),
    "dropout_half": (edit("ex6_build_model", ("nn.Dropout(p=0.2)", "nn.Dropout(p=0.5)")), {"ex6_test_build_model"}),
    "head_with_a_softmax": (
        edit(
            "ex6_build_model",
            (
                "nn.Linear(model.last_channel, num_classes))",
                "nn.Linear(model.last_channel, num_classes), nn.Softmax(dim=1))",
            ),
        ),
        {"ex6_test_build_model"},
    ),
    "unfreezes_the_first_blocks": (
        edit("ex6_unfreeze_last_blocks", ("for block in blocks[first:]:", "for block in blocks[:n]:")),
        {"ex6_test_unfreeze"},
    ),
    "minus_n_slice_unfreezes_all_for_zero": (
        edit("ex6_unfreeze_last_blocks", ("for block in blocks[first:]:", "for block in blocks[-n:]:")),
        {"ex6_test_unfreeze"},
    ),
    "refreezes_everything_first": (
        edit(
            "ex6_unfreeze_last_blocks",
            (
                "    blocks = list(model.features)\n",
                "    model.requires_grad_(False)\n    blocks = list(model.features)\n",
            ),
        ),
        {"ex6_test_unfreeze"},
    ),
    "unfreezes_one_tensor_per_block": (
        edit(
            "ex6_unfreeze_last_blocks",
            (
                "for param in block.parameters():\n            param.requires_grad = True",
                "next(block.parameters()).requires_grad = True",
            ),
        ),
        {"ex6_test_unfreeze"},
    ),
    "returns_nothing": (
        edit("ex6_unfreeze_last_blocks", ("    return model", "    return None")),
        {"ex6_test_unfreeze"},
    ),
    "one_learning_rate_for_all": (
        edit(
            "ex6_make_optimizer", ("return torch.optim.Adam(groups)", "return torch.optim.Adam(trainable, lr=head_lr)")
        ),
        {"ex6_test_optimizer"},
    ),
    "frozen_parameters_in_the_optimizer": (
        edit(
            "ex6_make_optimizer",
            ("trainable = [p for p in model.parameters() if p.requires_grad]", "trainable = list(model.parameters())"),
        ),
        {"ex6_test_optimizer"},
    ),
    "empty_backbone_group_kept": (
        edit("ex6_make_optimizer", ("    if backbone:\n        groups.insert", "    if True:\n        groups.insert")),
        {"ex6_test_optimizer"},
    ),
    "rates_swapped": (
        edit(
            "ex6_make_optimizer",
            ('{"params": head, "lr": head_lr}', '{"params": head, "lr": backbone_lr}'),
            ('{"params": backbone, "lr": backbone_lr}', '{"params": backbone, "lr": head_lr}'),
        ),
        {"ex6_test_optimizer"},
    ),
    "sgd_instead_of_adam": (
        edit("ex6_make_optimizer", ("return torch.optim.Adam(groups)", "return torch.optim.SGD(groups)")),
        {"ex6_test_optimizer"},
    ),
    "whole_blocks_instead_of_trainable_tensors": (  # fails when a block is only partly trainable
        edit(
            "ex6_make_optimizer",
            (
                "    backbone = [p for p in trainable if id(p) not in head_ids]\n",
                "    backbone = [p for b in model.features if any(q.requires_grad for q in "
                "b.parameters())\n                for p in b.parameters()]\n",
            ),
        ),
        {"ex6_test_optimizer"},
    ),
    "counts_frozen_parameters": (
        edit("ex6_count_trainable", ("for p in model.parameters() if p.requires_grad", "for p in model.parameters()")),
        {"ex6_test_count_trainable"},
    ),
    "counts_tensors_not_values": (
        edit("ex6_count_trainable", ("sum(p.numel() for p", "sum(1 for p")),
        {"ex6_test_count_trainable"},
    ),
    "returns_a_tensor": (
        edit(
            "ex6_count_trainable",
            (
                "return sum(p.numel() for p in model.parameters() if p.requires_grad)",
                "return torch.tensor(sum(p.numel() for p in model.parameters() if p.requires_grad))",
            ),
        ),
        {"ex6_test_count_trainable"},
    ),
}


EX5_ALTERNATIVES = {
    "table_lookup": {
        "ex5_choose_strategy": """
def choose_strategy(num_images, similar_domain):
    row = ("A", "B", "B") if similar_domain else ("A", "B", "C")
    column = sum(num_images >= threshold for threshold in (1_000, 50_000))
    return row[column]
""",
        "ex5_discriminative_lrs": """
def discriminative_lrs(head_lr, r, num_groups):
    rates = [head_lr]
    for _ in range(num_groups - 1):
        rates.insert(0, rates[0] * r)
    return rates
""",
        "ex5_scenario2_lr": "SCENARIO2_BACKBONE_LR = 5e-4 * 0.1\n",
    },
    "bisect_and_pow": {
        "ex5_choose_strategy": """
import bisect


def choose_strategy(num_images, similar_domain):
    letter = "ABC"[bisect.bisect_right([1_000, 50_000], num_images)]
    return "B" if letter == "C" and similar_domain else letter
""",
        "ex5_discriminative_lrs": """
import math


def discriminative_lrs(head_lr, r, num_groups):
    return [head_lr * math.pow(r, num_groups - 1 - i) for i in range(num_groups)]
""",
        "ex5_scenario2_lr": "SCENARIO2_BACKBONE_LR = discriminative_lrs(head_lr=5e-4, r=0.1, num_groups=2)[-2]\n",
    },
    "dict_and_numpy": {
        "ex5_choose_strategy": """
TABLE = {("small", True): "A", ("small", False): "A", ("medium", True): "B", ("medium", False): "B",
         ("large", True): "B", ("large", False): "C"}


def choose_strategy(num_images, similar_domain):
    size = "small" if num_images < 1e3 else "medium" if num_images < 5e4 else "large"
    return TABLE[size, bool(similar_domain)]
""",
        "ex5_discriminative_lrs": """
import numpy as np


def discriminative_lrs(head_lr, r, num_groups):
    return list(head_lr * np.power(float(r), np.arange(num_groups - 1, -1, -1)))  # numpy floats
""",
        "ex5_scenario2_lr": "SCENARIO2_BACKBONE_LR = float(min(discriminative_lrs(5e-4, 0.1, 2)))\n",
    },
}

EX6_ALTERNATIVES = {
    "names_and_add_param_group": {
        "ex6_build_model": """
from collections import OrderedDict


def build_model(num_classes=4, weights=None):
    model = mobilenet_v2(weights=weights)
    model.requires_grad_(False)
    in_features = model.classifier[-1].in_features
    model.classifier = nn.Sequential(OrderedDict(drop=nn.Dropout(0.2), fc=nn.Linear(in_features, num_classes)))
    return model
""",
        "ex6_count_trainable": """
def count_trainable(model):
    total = 0
    for _, param in model.named_parameters():
        if param.requires_grad:
            total += param.numel()
    return int(total)
""",
        "ex6_unfreeze_last_blocks": """
def unfreeze_last_blocks(model, n):
    if n <= 0:
        return model
    for block in model.features[-n:]:
        block.requires_grad_(True)
    return model
""",
        "ex6_make_optimizer": """
def make_optimizer(model, backbone_lr=1e-4, head_lr=1e-3):
    head, backbone = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (head if name.startswith("classifier.") else backbone).append(param)
    optimizer = torch.optim.Adam(head, lr=head_lr)
    if backbone:
        optimizer.add_param_group({"params": backbone, "lr": backbone_lr})
    return optimizer
""",
    },
    "index_ranges_and_default_lr": {
        "ex6_build_model": """
def build_model(num_classes=4, weights=None):
    net = mobilenet_v2(weights=weights)
    for p in net.parameters():
        p.requires_grad_(False)
    head = nn.Sequential()
    head.append(nn.Dropout(p=0.2))
    head.append(nn.Linear(1280, num_classes))
    net.classifier = head
    return net
""",
        "ex6_count_trainable": """
def count_trainable(model):
    return sum(map(lambda p: p.numel() if p.requires_grad else 0, model.parameters()))
""",
        "ex6_unfreeze_last_blocks": """
def unfreeze_last_blocks(model, n):
    total = len(model.features)
    for index in range(total - min(n, total), total):
        for p in model.features[index].parameters():
            p.requires_grad = True
    return model
""",
        "ex6_make_optimizer": """
def make_optimizer(model, backbone_lr=1e-4, head_lr=1e-3):
    head_ids = set(map(id, model.classifier.parameters()))
    head_params = [p for p in model.classifier.parameters() if p.requires_grad]
    backbone_params = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": head_params}]  # takes the optimizer's default lr, head_lr
    if backbone_params:
        groups.append({"params": backbone_params, "lr": backbone_lr})
    return torch.optim.Adam(groups, lr=head_lr)
""",
    },
    "keep_dropout_on_the_device": {
        "ex6_build_model": """
def build_model(num_classes=4, weights=None):
    model = mobilenet_v2(weights=weights)
    for param in model.features.parameters():  # the old head goes away: only the backbone needs freezing
        param.requires_grad = False
    model.classifier[1] = nn.Linear(model.last_channel, num_classes)  # keeps torchvision's Dropout(0.2)
    return model.to(device)
""",
        "ex6_count_trainable": """
def count_trainable(model):
    return int(sum(torch.numel(p) for p in filter(lambda p: p.requires_grad, model.parameters())))
""",
        "ex6_unfreeze_last_blocks": """
def unfreeze_last_blocks(model, n):
    for block in list(reversed(model.features))[:max(n, 0)]:
        for param in block.parameters():
            param.requires_grad_()
    return model
""",
        "ex6_make_optimizer": """
def make_optimizer(model, backbone_lr=1e-4, head_lr=1e-3):
    head_names = {"classifier." + name for name, _ in model.classifier.named_parameters()}
    groups = {"backbone": [], "head": []}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups["head" if name in head_names else "backbone"].append(param)
    rates = {"backbone": backbone_lr, "head": head_lr}
    return torch.optim.Adam([{"params": groups[k], "lr": rates[k]} for k in ("head", "backbone") if groups[k]])
""",
    },
}

CASE = Case(
    notebook=NAME,
    autograded_points={"ex5": 7, "ex6": 8},  # the rest of each exercise's 10 points: written parts, by hand
    secret_lines_over=40,  # solutions and the model written answers: 47 distinctive lines
    wrong={"ex5": EX5_WRONG, "ex6": EX6_WRONG},
    alternatives={"ex5": EX5_ALTERNATIVES, "ex6": EX6_ALTERNATIVES},
    demo=("ex6_demo", "demo skipped while grading"),
)


class TestNotebook(ExerciseSuite, DemoSuite):
    case = CASE


def cell(grade_id: str):
    return next(c for c in source_nb(NAME).cells if grade_id_of(c) == grade_id)


# ----------------------------------------------------------------------------- this notebook's own checks (fast)


def test_no_check_needs_pretrained_weights_or_the_hub_cache():
    import inspect

    from autograder.checks import ex56_transfer_learning as checks

    text = inspect.getsource(checks).split('"""', 2)[2]  # the code, without the module docstring
    assert "weights=None" in text
    for needle in ("IMAGENET1K", "TORCH_HOME", "torch.hub", "DEFAULT", "get_state_dict"):
        assert needle not in text, needle


def test_wrong_answer_edits_still_apply_to_the_reference():
    # edit() asserts that each replaced text occurs in the reference; building them all proves it.
    assert len(EX5_WRONG) >= 2 and len(EX6_WRONG) >= 4


def test_model_answer_of_exercise_6_quotes_the_network_as_it_is():
    """Every number of the written model answer, computed from torchvision's MobileNetV2."""
    import torch.nn as nn
    from torchvision.models import mobilenet_v2

    text = cell("ex6_written_counts").source
    net = mobilenet_v2(weights=None)
    blocks = list(net.features)
    size = [sum(p.numel() for p in b.parameters()) for b in blocks]
    convs = [[m for m in b.modules() if isinstance(m, nn.Conv2d)] for b in blocks]
    backbone, last_three = sum(size), sum(size[-3:])
    for number in (
        f"{1280 * 4 + 4:,}",
        f"{len(blocks)} blocks",
        f"{last_three:,}",
        f"{backbone:,}",
        f"{last_three / backbone:.0%}",
        f"{size[1]:,}",
        f"{size[16]:,}",
        f"{size[17]:,}",
        f"{size[18]:,}",
        f"{320 * 1280:,}",
    ):
        assert number in text, number
    assert [(c[0].in_channels, max(m.out_channels for m in c), c[-1].out_channels) for c in convs[16:19]] == [
        (160, 960, 160),
        (160, 960, 320),
        (320, 1280, 1280),
    ]
    assert "expands its 160 input channels to 960" in text and "expands 160 → 960 and projects to 320" in text
    assert max(m.out_channels for c in convs[1:7] for m in c) == 192 and "at most 192" in text
    assert (convs[1][0].in_channels, convs[1][-1].out_channels) == (32, 16) and "32 → 16" in text
    assert all(m.out_channels != 1920 for c in convs for m in c) and "1920" not in text


def test_exercise_5_presents_the_large_similar_cell_as_a_convention():
    text = cell("ex5_statement").source
    assert "convention" in text and "CS231n" in text and "trade-off" in text


# ----------------------------------------------------------------------------- the student's own run (slow)


@pytest.mark.slow
def test_demo_uses_pretrained_weights_when_a_checkpoint_is_cached(tmp_path):
    """The student's path with weights available: a state dict in TORCH_HOME is what torch.hub finds
    after a download, so the demo loads it and prints counts that match an independent computation.
    (This is a test of the notebook, not a grading check: no check reads the hub cache.)"""
    import torch
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    url = MobileNet_V2_Weights.IMAGENET1K_V1.url
    torch.save(mobilenet_v2(weights=None).state_dict(), checkpoints / url.rsplit("/", 1)[-1])
    nb, _ = execute_notebook(SOURCE / NAME, env={"TORCH_HOME": str(tmp_path)}, timeout=300)
    text = outputs_text(nb)
    assert "loaded the ImageNet weights" in text and "unavailable" not in text, text
    assert text.count("public checks passed") == 8, text  # every public test passes on the reference

    reference = mobilenet_v2(weights=None)
    backbone = sum(p.numel() for p in reference.features.parameters())
    last_three = sum(p.numel() for block in list(reference.features)[-3:] for p in block.parameters())
    head = 1280 * 4 + 4
    assert f"model.features: {len(reference.features)} blocks, {backbone:,} parameters" in text
    assert f"trainable after build_model: {head:,} " in text
    assert f"trainable after unfreezing the last 3 blocks: {head + last_three:,} " in text
    assert f"({last_three:,} backbone parameters = {last_three / backbone:.0%} of the backbone)" in text
    assert "block 17:  160 ->  320 channels (widest  960), 473,920 parameters, trainable" in text
