"""Exercises 1-2 (skip connections), graded by real nbgrader in one temporary course.

Every variant is a student who submits only this notebook: the reference answers, the untouched
release, wrong answers (small edits of the reference, each aimed at one test cell) and correct
answers written differently. Exercises 1 and 2 share no code, so each wrong-answer run carries one
mistake for each exercise and checks that exactly the intended cells lost points."""
from __future__ import annotations

from functools import partial

import pytest

from tests.exercises import submissions
from tests.harness.grading import (
    GradingRun, autograded_ids, lost, reference_submission, release_nb, source_nb, total,
)

NAME = "ex12_skip_connections.ipynb"
edit = partial(submissions.edit, NAME)
submission = partial(submissions.submission, NAME)

RESIDUAL_RETURN = "delta ** (block_size - 1) * (1 + delta ** block_size) ** (num_blocks - 1)"

# (answers, the autograded cells that must lose points) for exercise 1 ...
EX1_WRONG = {
    "plain_exponent_off_by_one": (
        edit("ex1_plain_gradient", ("delta ** (num_layers - 1)", "delta ** num_layers")),
        {"ex1_test_plain", "ex1_test_worked_example"}),
    "residual_every_block_full_jacobian": (
        edit("ex1_residual_gradient", (RESIDUAL_RETURN, "(1 + delta ** block_size) ** num_blocks")),
        {"ex1_test_residual", "ex1_test_worked_example"}),
    "residual_assumes_blocks_of_two": (
        edit("ex1_residual_gradient", (RESIDUAL_RETURN, "delta * (1 + delta ** 2) ** (num_layers // 2 - 1)")),
        {"ex1_test_residual"}),
    "residual_no_value_error": (
        edit("ex1_residual_gradient", (" or num_layers % block_size:", ":")),
        {"ex1_test_residual"}),
    "residual_forgets_the_skip": (
        edit("ex1_residual_gradient", (RESIDUAL_RETURN, "delta ** (num_layers - 1)")),
        {"ex1_test_residual", "ex1_test_worked_example"}),
    "hard_coded_worked_example": (
        {"ex1_plain_gradient": "def plain_gradient_fraction(delta, num_layers):\n    return 0.16807\n",
         "ex1_residual_gradient": ("def residual_gradient_fraction(delta, num_layers, block_size=2):\n"
                                   "    if num_layers % block_size:\n        raise ValueError('whole blocks only')\n"
                                   "    return 1.55407\n")},
        {"ex1_test_plain", "ex1_test_residual"}),
}

# ... and for exercise 2.
EX2_WRONG = {
    "relu_before_the_add": (
        edit("ex2_residual_block", ("return F.relu(out + self.shortcut(x))", "return F.relu(out) + self.shortcut(x)")),
        {"ex2_test_skip_path"}),
    "convs_with_bias": (
        edit("ex2_residual_block", ("padding=1, bias=False)", "padding=1, bias=True)", 2)),
        {"ex2_test_residual_block", "ex2_test_mini_resnet", "ex2_test_shapes"}),
    "projection_only_when_channels_change": (
        edit("ex2_residual_block", ("if in_ch == out_ch and stride == 1:", "if in_ch == out_ch:")),
        {"ex2_test_shortcut", "ex2_test_residual_block", "ex2_test_skip_path"}),
    "projection_without_the_stride": (
        edit("ex2_residual_block", ("nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)",
                                     "nn.Conv2d(in_ch, out_ch, 1, stride=1, bias=False)")),
        {"ex2_test_shortcut", "ex2_test_residual_block", "ex2_test_skip_path", "ex2_test_mini_resnet",
         "ex2_test_shapes"}),
    "stride_on_the_second_conv": (
        edit("ex2_residual_block",
             ("nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1",
              "nn.Conv2d(in_ch, out_ch, 3, stride=1, padding=1"),
             ("nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1",
              "nn.Conv2d(out_ch, out_ch, 3, stride=stride, padding=1")),
        {"ex2_test_residual_block"}),
    "two_downsampling_blocks": (  # gives (8, 64, 8, 8) after the blocks
        edit("ex2_mini_resnet", ("ResidualBlock(64, 64),", "ResidualBlock(64, 64, stride=2),")),
        {"ex2_test_mini_resnet", "ex2_test_shapes"}),
    "counts_buffers_too": (
        edit("ex2_count_parameters",
             ("for p in model.parameters()", "for p in model.state_dict(keep_vars=True).values()")),
        {"ex2_test_count_parameters", "ex2_test_shapes"}),
}

WRONG_RUNS = [
    pytest.param(ex1, ex2, id=f"{ex1 or '-'}+{ex2}")
    for ex1, ex2 in zip(list(EX1_WRONG) + [None], EX2_WRONG, strict=True)
]

EX1_ALTERNATIVES = {
    "loops": {
        "ex1_plain_gradient": '''
def plain_gradient_fraction(delta, num_layers):
    fraction = 1.0
    for _ in range(num_layers - 1):
        fraction *= delta
    return fraction
''',
        "ex1_residual_gradient": '''
def residual_gradient_fraction(delta, num_layers, block_size=2):
    if block_size < 1 or num_layers < 1 or num_layers % block_size != 0:
        raise ValueError("the layers must split into whole blocks")
    fraction = 1.0
    for _ in range(num_layers // block_size - 1):  # every block above block 1
        fraction *= 1 + delta ** block_size
    for _ in range(block_size - 1):  # the layers after layer 1 inside block 1
        fraction *= delta
    return fraction
''',
    },
    "math_module": {
        "ex1_plain_gradient": '''
import math


def plain_gradient_fraction(delta, num_layers):
    return math.pow(delta, num_layers - 1)
''',
        "ex1_residual_gradient": '''
def residual_gradient_fraction(delta, num_layers, block_size=2):
    if block_size <= 0 or num_layers <= 0:
        raise ValueError("need at least one layer per block")
    num_blocks, rest = divmod(num_layers, block_size)
    if rest:
        raise ValueError(f"{num_layers} layers do not split into blocks of {block_size}")
    return math.prod([1 + delta ** block_size] * (num_blocks - 1)) * math.pow(delta, block_size - 1)
''',
    },
}

EX2_ALTERNATIVES = {
    "sequential_branch_and_hook": {
        "ex2_residual_block": '''
class ResidualBlock(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self.branch = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_ch),
        )
        needs_projection = stride != 1 or in_ch != out_ch
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_ch),
        ) if needs_projection else nn.Identity()

    def forward(self, x):
        return torch.relu(self.branch(x) + self.shortcut(x))
''',
        "ex2_mini_resnet": '''
class MiniResNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, kernel_size=3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
            ResidualBlock(32, 32), ResidualBlock(32, 64, stride=2), ResidualBlock(64, 64),
            nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
        )
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))
''',
        "ex2_count_parameters": '''
def count_parameters(model, trainable_only=False):
    total = 0
    for p in model.parameters():
        if trainable_only and not p.requires_grad:
            continue
        total += p.numel()
    return total
''',
        "ex2_shapes": '''
model = MiniResNet()
captured = {}
last_block = [m for m in model.modules() if isinstance(m, ResidualBlock)][-1]
handle = last_block.register_forward_hook(lambda module, inputs, output: captured.update(shape=tuple(output.shape)))
with torch.no_grad():
    logits = model(torch.randn(8, 3, 32, 32))
handle.remove()
blocks_out_shape = captured["shape"]
logits_shape = tuple(logits.shape)
total_params = count_parameters(model)
print(blocks_out_shape, logits_shape, total_params)
''',
    },
    "attributes_inplace_relu_mean_pool": {
        "ex2_residual_block": '''
class ResidualBlock(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self.conv_a = nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)
        self.norm_a = nn.BatchNorm2d(out_ch)
        self.conv_b = nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.norm_b = nn.BatchNorm2d(out_ch)
        self.act = nn.ReLU()
        self.shortcut = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))

    def forward(self, x):
        out = self.norm_b(self.conv_b(self.act(self.norm_a(self.conv_a(x)))))
        out += self.shortcut(x)
        return out.relu_()
''',
        "ex2_mini_resnet": '''
class MiniResNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(32)
        self.layer1 = ResidualBlock(32, 32)
        self.layer2 = ResidualBlock(32, 64, 2)
        self.layer3 = ResidualBlock(64, 64)
        self.head = nn.Linear(64, num_classes)

    def features(self, x):
        x = F.relu(self.bn(self.conv(x)))
        return self.layer3(self.layer2(self.layer1(x)))

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))
''',
        "ex2_count_parameters": '''
def count_parameters(model, trainable_only=False):
    params = filter(lambda p: p.requires_grad, model.parameters()) if trainable_only else model.parameters()
    return sum(map(torch.numel, params))
''',
        "ex2_shapes": '''
model = MiniResNet().eval()
batch = torch.randn(8, 3, 32, 32)
with torch.no_grad():
    blocks_out_shape = tuple(model.features(batch).shape)
    logits_shape = tuple(model(batch).shape)
total_params = count_parameters(model)
''',
    },
}

ALTERNATIVE_RUNS = [pytest.param(ex1, ex2, id=f"{ex1}+{ex2}")
                    for ex1, ex2 in zip(EX1_ALTERNATIVES, EX2_ALTERNATIVES, strict=True)]


@pytest.fixture(scope="module")
def grading(tmp_path_factory) -> GradingRun:
    return GradingRun(tmp_path_factory.mktemp("ex12_course"))


# ----------------------------------------------------------------------------- static checks (fast)

def test_each_exercise_is_worth_ten_points():
    assert submissions.points_per_exercise(source_nb(NAME)) == {"ex1": 10, "ex2": 10}


def test_graded_cells_follow_the_naming_and_have_stable_ids():
    assert not submissions.naming_problems(source_nb(NAME), "12")


def test_release_holds_no_solution_and_no_hidden_test():
    secrets = submissions.secret_lines(source_nb(NAME))
    assert len(secrets) > 40, "too few distinctive lines found: the check would be vacuous"
    assert not submissions.leaks(release_nb(NAME), secrets), "release/ shows solution or hidden-test text"
    assert not submissions.stub_problems(release_nb(NAME)), "release/ answer cells must be blank stubs"


# ----------------------------------------------------------------------------- nbgrader runs (slow)

@pytest.mark.slow
def test_reference_answers_score_full_marks(grading):
    scores = grading.grade("reference", NAME, reference_submission(NAME))
    graded = autograded_ids(NAME)
    assert graded <= set(scores)
    assert not lost({g: scores[g] for g in graded}), f"reference lost points: {scores}"
    assert sum(scores[g][1] for g in graded) == 16  # 6 (exercise 1) + 10 (exercise 2); 4 written points by hand


@pytest.mark.slow
def test_untouched_release_scores_zero_without_crashing(grading):
    scores = grading.grade("blank", NAME, release_nb(NAME))
    assert autograded_ids(NAME) <= set(scores), "every test cell must be graded even when nothing is answered"
    assert total(scores)[0] == 0, f"blank notebook scored points: {scores}"


@pytest.mark.slow
@pytest.mark.parametrize("ex1, ex2", WRONG_RUNS)
def test_wrong_answers_lose_points_on_their_own_cells(grading, ex1, ex2):
    answers, expected = dict(EX2_WRONG[ex2][0]), set(EX2_WRONG[ex2][1])
    if ex1:
        answers.update(EX1_WRONG[ex1][0])
        expected |= EX1_WRONG[ex1][1]
    scores = grading.grade(f"wrong-{ex2}", NAME, submission(answers))
    assert lost(scores) & autograded_ids(NAME) == expected, (
        f"{ex1} + {ex2}: lost {sorted(lost(scores) & autograded_ids(NAME))}, expected {sorted(expected)}")


@pytest.mark.slow
@pytest.mark.parametrize("ex1, ex2", ALTERNATIVE_RUNS)
def test_differently_written_correct_answers_score_full_marks(grading, ex1, ex2):
    answers = {**EX1_ALTERNATIVES[ex1], **EX2_ALTERNATIVES[ex2]}
    scores = grading.grade(f"alt-{ex2}", NAME, submission(answers))
    assert not lost(scores) & autograded_ids(NAME), f"{ex1} + {ex2} lost points: {scores}"
