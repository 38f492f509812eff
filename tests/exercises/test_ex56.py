"""Exercises 5-6 (transfer learning), graded by real nbgrader in one temporary course.

Every variant is a student who submits only this notebook: the reference answers, the untouched
release, wrong answers (small edits of the reference, each aimed at one test cell) and correct
answers written differently. Exercises 5 and 6 share no code, so most wrong-answer runs carry one
mistake for each exercise and check that exactly the intended cells lost points."""
from __future__ import annotations

from functools import partial
from itertools import zip_longest

import nbformat
import pytest

from autograder.course import ASSIGNMENT
from tests.exercises import submissions
from tests.harness.grading import (
    SOURCE, GradingRun, autograded_ids, lost, reference_submission, release_nb, source_nb, total,
)
from tests.harness.notebooks import execute_notebook, outputs_text

NAME = "ex56_transfer_learning.ipynb"
edit = partial(submissions.edit, NAME)
submission = partial(submissions.submission, NAME)

# (answers, the autograded cells that must lose points) for exercise 5 ...
EX5_WRONG = {
    "hard_coded_scenarios": (
        {"ex5_choose_strategy": ("def choose_strategy(num_images, similar_domain):\n"
                                 "    if num_images <= 300:\n        return 'A'\n"
                                 "    if num_images <= 5_000:\n        return 'B'\n    return 'C'\n")},
        {"ex5_test_strategy_table"}),
    "threshold_with_less_or_equal": (
        edit("ex5_choose_strategy", ("if num_images < 1_000:", "if num_images <= 1_000:")),
        {"ex5_test_strategy_table"}),
    "ignores_the_domain": (
        edit("ex5_choose_strategy", ("if num_images < 50_000 or similar_domain:", "if num_images < 50_000:")),
        {"ex5_test_strategy_table"}),
    "exponent_off_by_one": (
        edit("ex5_discriminative_lrs", ("r ** (num_groups - 1 - i)", "r ** (num_groups - i)")),
        {"ex5_test_discriminative_lrs", "ex5_test_scenario2_lr"}),
    "head_first": (
        edit("ex5_discriminative_lrs", ("r ** (num_groups - 1 - i)", "r ** i")),
        {"ex5_test_discriminative_lrs", "ex5_test_scenario2_lr"}),
    "scenario2_two_steps_down": (
        edit("ex5_scenario2_lr", ("discriminative_lrs(5e-4, 0.1, 2)[0]", "discriminative_lrs(5e-4, 0.1, 3)[0]")),
        {"ex5_test_scenario2_lr"}),
}

# ... and for exercise 6.
EX6_WRONG = {
    "head_not_replaced": (
        edit("ex6_build_model", ("    model.classifier = nn.Sequential(nn.Dropout(p=0.2), "
                                 "nn.Linear(model.last_channel, num_classes))\n", "")),
        {"ex6_test_build_model", "ex6_test_unfreeze", "ex6_test_optimizer"}),
    "ignores_weights": (
        edit("ex6_build_model", ("mobilenet_v2(weights=weights)", "mobilenet_v2(weights=None)")),
        {"ex6_test_build_model"}),
    "unfreezes_the_first_blocks": (
        edit("ex6_unfreeze_last_blocks", ("for block in blocks[first:]:", "for block in blocks[:n]:")),
        {"ex6_test_unfreeze"}),
    "minus_n_slice_unfreezes_all_for_zero": (
        edit("ex6_unfreeze_last_blocks", ("for block in blocks[first:]:", "for block in blocks[-n:]:")),
        {"ex6_test_unfreeze"}),
    "one_learning_rate_for_all": (
        edit("ex6_make_optimizer",
             ("return torch.optim.Adam(groups)", "return torch.optim.Adam(trainable, lr=head_lr)")),
        {"ex6_test_optimizer"}),
    "frozen_parameters_in_the_optimizer": (
        edit("ex6_make_optimizer", ("trainable = [p for p in model.parameters() if p.requires_grad]",
                                    "trainable = list(model.parameters())")),
        {"ex6_test_optimizer"}),
    "empty_backbone_group_kept": (
        edit("ex6_make_optimizer", ("    if backbone:\n        groups.insert", "    if True:\n        groups.insert")),
        {"ex6_test_optimizer"}),
    "counts_frozen_parameters": (
        edit("ex6_count_trainable", ("for p in model.parameters() if p.requires_grad", "for p in model.parameters()")),
        {"ex6_test_count_trainable"}),
}

WRONG_RUNS = [pytest.param(ex5, ex6, id=f"{ex5 or '-'}+{ex6}")
              for ex5, ex6 in zip_longest(EX5_WRONG, EX6_WRONG)]

EX5_ALTERNATIVES = {
    "table_lookup": {
        "ex5_choose_strategy": '''
def choose_strategy(num_images, similar_domain):
    row = ("A", "B", "B") if similar_domain else ("A", "B", "C")
    column = sum(num_images >= threshold for threshold in (1_000, 50_000))
    return row[column]
''',
        "ex5_discriminative_lrs": '''
def discriminative_lrs(head_lr, r, num_groups):
    rates = [head_lr]
    for _ in range(num_groups - 1):
        rates.insert(0, rates[0] * r)
    return rates
''',
        "ex5_scenario2_lr": "SCENARIO2_BACKBONE_LR = 5e-4 * 0.1\n",
    },
    "bisect_and_pow": {
        "ex5_choose_strategy": '''
import bisect


def choose_strategy(num_images, similar_domain):
    letter = "ABC"[bisect.bisect_right([1_000, 50_000], num_images)]
    return "B" if letter == "C" and similar_domain else letter
''',
        "ex5_discriminative_lrs": '''
import math


def discriminative_lrs(head_lr, r, num_groups):
    return [head_lr * math.pow(r, num_groups - 1 - i) for i in range(num_groups)]
''',
        "ex5_scenario2_lr": "SCENARIO2_BACKBONE_LR = discriminative_lrs(head_lr=5e-4, r=0.1, num_groups=2)[-2]\n",
    },
}

EX6_ALTERNATIVES = {
    "names_and_add_param_group": {
        "ex6_build_model": '''
def build_model(num_classes=4, weights=None):
    model = mobilenet_v2(weights=weights)
    model.requires_grad_(False)
    in_features = model.classifier[-1].in_features
    model.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(in_features, num_classes))
    return model
''',
        "ex6_count_trainable": '''
def count_trainable(model):
    total = 0
    for _, param in model.named_parameters():
        if param.requires_grad:
            total += param.numel()
    return int(total)
''',
        "ex6_unfreeze_last_blocks": '''
def unfreeze_last_blocks(model, n):
    if n <= 0:
        return model
    for block in model.features[-n:]:
        block.requires_grad_(True)
    return model
''',
        "ex6_make_optimizer": '''
def make_optimizer(model, backbone_lr=1e-4, head_lr=1e-3):
    head, backbone = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (head if name.startswith("classifier.") else backbone).append(param)
    optimizer = torch.optim.Adam(head, lr=head_lr)
    if backbone:
        optimizer.add_param_group({"params": backbone, "lr": backbone_lr})
    return optimizer
''',
    },
    "index_ranges_and_default_lr": {
        "ex6_build_model": '''
def build_model(num_classes=4, weights=None):
    net = mobilenet_v2(weights=weights)
    for p in net.parameters():
        p.requires_grad_(False)
    head = nn.Sequential()
    head.append(nn.Dropout(p=0.2))
    head.append(nn.Linear(1280, num_classes))
    net.classifier = head
    return net
''',
        "ex6_count_trainable": '''
def count_trainable(model):
    return sum(map(lambda p: p.numel() if p.requires_grad else 0, model.parameters()))
''',
        "ex6_unfreeze_last_blocks": '''
def unfreeze_last_blocks(model, n):
    total = len(model.features)
    for index in range(total - min(n, total), total):
        for p in model.features[index].parameters():
            p.requires_grad = True
    return model
''',
        "ex6_make_optimizer": '''
def make_optimizer(model, backbone_lr=1e-4, head_lr=1e-3):
    head_ids = set(map(id, model.classifier.parameters()))
    head_params = [p for p in model.classifier.parameters() if p.requires_grad]
    backbone_params = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    groups = [{"params": head_params}]  # takes the optimizer's default lr, head_lr
    if backbone_params:
        groups.append({"params": backbone_params, "lr": backbone_lr})
    return torch.optim.Adam(groups, lr=head_lr)
''',
    },
}

ALTERNATIVE_RUNS = [pytest.param(ex5, ex6, id=f"{ex5}+{ex6}")
                    for ex5, ex6 in zip(EX5_ALTERNATIVES, EX6_ALTERNATIVES, strict=True)]


@pytest.fixture(scope="module")
def grading(tmp_path_factory) -> GradingRun:
    return GradingRun(tmp_path_factory.mktemp("ex56_course"))


# ----------------------------------------------------------------------------- static checks (fast)

def test_each_exercise_is_worth_ten_points():
    assert submissions.points_per_exercise(source_nb(NAME)) == {"ex5": 10, "ex6": 10}


def test_graded_cells_follow_the_naming_and_have_stable_ids():
    assert not submissions.naming_problems(source_nb(NAME), "56")


def test_release_holds_no_solution_and_no_hidden_test():
    secrets = submissions.secret_lines(source_nb(NAME))
    assert len(secrets) > 40, "too few distinctive lines found: the check would be vacuous"
    assert not submissions.leaks(release_nb(NAME), secrets), "release/ shows solution or hidden-test text"
    assert not submissions.stub_problems(release_nb(NAME)), "release/ answer cells must be blank stubs"


def test_wrong_answer_edits_still_apply_to_the_reference():
    # edit() asserts that each replaced text occurs in the reference; building them all proves it.
    assert len(EX5_WRONG) >= 2 and len(EX6_WRONG) >= 4


# ----------------------------------------------------------------------------- nbgrader runs (slow)

@pytest.mark.slow
def test_reference_answers_score_full_marks(grading):
    scores = grading.grade("reference", NAME, reference_submission(NAME))
    graded = autograded_ids(NAME)
    assert graded <= set(scores)
    assert not lost({g: scores[g] for g in graded}), f"reference lost points: {scores}"
    assert sum(scores[g][1] for g in graded) == 15  # 7 (exercise 5) + 8 (exercise 6); 5 written points by hand
    autograded = nbformat.read(str(grading.course.root / "autograded" / "reference" / ASSIGNMENT / NAME), as_version=4)
    assert "demo skipped while grading" in outputs_text(autograded), "the demo must not run during grading"


@pytest.mark.slow
def test_untouched_release_scores_zero_without_crashing(grading):
    scores = grading.grade("blank", NAME, release_nb(NAME))
    assert autograded_ids(NAME) <= set(scores), "every test cell must be graded even when nothing is answered"
    assert total(scores)[0] == 0, f"blank notebook scored points: {scores}"


@pytest.mark.slow
@pytest.mark.parametrize("ex5, ex6", WRONG_RUNS)
def test_wrong_answers_lose_points_on_their_own_cells(grading, ex5, ex6):
    answers, expected = dict(EX6_WRONG[ex6][0]), set(EX6_WRONG[ex6][1])
    if ex5:
        answers.update(EX5_WRONG[ex5][0])
        expected |= EX5_WRONG[ex5][1]
    scores = grading.grade(f"wrong-{ex6}", NAME, submission(answers))
    assert lost(scores) & autograded_ids(NAME) == expected, (
        f"{ex5} + {ex6}: lost {sorted(lost(scores) & autograded_ids(NAME))}, expected {sorted(expected)}")


@pytest.mark.slow
@pytest.mark.parametrize("ex5, ex6", ALTERNATIVE_RUNS)
def test_differently_written_correct_answers_score_full_marks(grading, ex5, ex6):
    answers = {**EX5_ALTERNATIVES[ex5], **EX6_ALTERNATIVES[ex6]}
    scores = grading.grade(f"alt-{ex6}", NAME, submission(answers))
    assert not lost(scores) & autograded_ids(NAME), f"{ex5} + {ex6} lost points: {scores}"


# ----------------------------------------------------------------------------- the student's own run (slow)

@pytest.mark.slow
def test_demo_uses_pretrained_weights_when_a_checkpoint_is_cached(tmp_path):
    """The student's path with weights available: a state dict in TORCH_HOME is what torch.hub finds
    after a download, so the demo loads it and prints counts that match an independent computation."""
    import torch
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    url = MobileNet_V2_Weights.IMAGENET1K_V1.url
    torch.save(mobilenet_v2(weights=None).state_dict(), checkpoints / url.rsplit("/", 1)[-1])
    nb, _ = execute_notebook(SOURCE / NAME, env={"TORCH_HOME": str(tmp_path)}, timeout=300)
    text = outputs_text(nb)
    assert "loaded the ImageNet weights" in text and "unavailable" not in text, text

    reference = mobilenet_v2(weights=None)
    backbone = sum(p.numel() for p in reference.features.parameters())
    last_three = sum(p.numel() for block in list(reference.features)[-3:] for p in block.parameters())
    head = 1280 * 4 + 4
    assert f"model.features: {len(reference.features)} blocks, {backbone:,} parameters" in text
    assert f"trainable after build_model: {head:,} " in text
    assert f"trainable after unfreezing the last 3 blocks: {head + last_three:,} " in text
    assert f"({last_three:,} backbone parameters = {last_three / backbone:.0%} of the backbone)" in text
