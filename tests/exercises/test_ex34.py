"""Exercises 3-4 (depthwise separable convolutions), graded by real nbgrader in one temporary course.

Every variant is a student who submits only this notebook: the reference answers, the untouched
release, wrong answers (small edits of the reference, each aimed at one test cell) and correct
answers written differently. Exercises 3 and 4 share no code, so each wrong-answer run carries one
mistake for each exercise and checks that exactly the intended cells lost points."""
from __future__ import annotations

from functools import partial

import pytest

from tests.exercises import submissions
from tests.harness.grading import (
    GradingRun, autograded_ids, lost, reference_submission, release_nb, source_nb, total,
)

NAME = "ex34_depthwise_separable.ipynb"
edit = partial(submissions.edit, NAME)
submission = partial(submissions.submission, NAME)

# (answers, the autograded cells that must lose points) for exercise 3 ...
EX3_WRONG = {
    "standard_counts_bias": (
        edit("ex3_param_counts", ("return k * k * m * n", "return k * k * m * n + n")),
        {"ex3_test_param_counts", "ex3_test_ratios", "ex3_test_worked_example"}),
    "separable_counts_batchnorm": (
        edit("ex3_param_counts", ("return k * k * m + m * n", "return k * k * m + 2 * m + m * n + 2 * n")),
        {"ex3_test_param_counts", "ex3_test_ratios", "ex3_test_worked_example"}),
    "ratio_upside_down": (
        edit("ex3_ratios", ("return standard_conv_params(k, m, n) / dwsep_params(k, m, n)",
                            "return dwsep_params(k, m, n) / standard_conv_params(k, m, n)")),
        {"ex3_test_ratios", "ex3_test_worked_example"}),
    "formula_one_over_k": (
        edit("ex3_ratios", ("return 1 / n + 1 / k ** 2", "return 1 / n + 1 / k")),
        {"ex3_test_ratios", "ex3_test_worked_example"}),
    "madds_linear_in_feature_size": (
        edit("ex3_madds", ("k * k * m * n * d_f * d_f", "k * k * m * n * d_f"),
             ("(k * k * m + m * n) * d_f * d_f", "(k * k * m + m * n) * d_f")),
        {"ex3_test_madds", "ex3_test_worked_example"}),
    "hard_coded_worked_example": (
        {"ex3_param_counts": ("def standard_conv_params(k, m, n):\n    return 73728\n\n\n"
                              "def dwsep_params(k, m, n):\n    return 8768\n"),
         "ex3_madds": ("def standard_conv_madds(k, m, n, d_f):\n    return 231211008\n\n\n"
                       "def dwsep_madds(k, m, n, d_f):\n    return 27496448\n")},
        {"ex3_test_param_counts", "ex3_test_ratios", "ex3_test_madds"}),
}

DEPTHWISE_CONV = "nn.Conv2d(in_ch, in_ch, 3, stride=stride, padding=1, groups=in_ch, bias=False)"

# ... and for exercise 4.
EX4_WRONG = {
    "depthwise_with_groups_1": (
        edit("ex4_dwsep_conv", (DEPTHWISE_CONV, "nn.Conv2d(in_ch, in_ch, 3, stride=stride, padding=1, bias=False)")),
        {"ex4_test_dwsep_structure", "ex4_test_param_counts", "ex4_test_comparison"}),
    "relu_instead_of_relu6": (
        edit("ex4_dwsep_conv", ("nn.ReLU6(inplace=True)", "nn.ReLU(inplace=True)", 2)),
        {"ex4_test_activations"}),
    "convs_with_bias": (
        edit("ex4_dwsep_conv", ("bias=False)", "bias=True)", 2)),
        {"ex4_test_dwsep_structure", "ex4_test_param_counts", "ex4_test_comparison"}),
    "standard_conv_clamps_at_6": (
        edit("ex4_standard_conv", ("return F.relu(self.bn(self.conv(x)))", "return F.relu6(self.bn(self.conv(x)))")),
        {"ex4_test_activations"}),
    "stride_on_the_pointwise_conv": (
        edit("ex4_dwsep_conv", ("3, stride=stride, padding=1, groups=in_ch", "3, stride=1, padding=1, groups=in_ch"),
             ("nn.Conv2d(in_ch, out_ch, 1, bias=False)", "nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)")),
        {"ex4_test_dwsep_structure"}),
    "depthwise_without_padding": (
        edit("ex4_dwsep_conv", ("stride=stride, padding=1, groups=in_ch", "stride=stride, groups=in_ch")),
        {"ex4_test_dwsep_structure", "ex4_test_shapes", "ex4_test_comparison"}),
}

WRONG_RUNS = [pytest.param(ex3, ex4, id=f"{ex3}+{ex4}") for ex3, ex4 in zip(EX3_WRONG, EX4_WRONG, strict=True)]

EX3_ALTERNATIVES = {
    "reciprocal_and_reuse": {
        "ex3_ratios": '''
def reduction_ratio(k, m, n):
    return 1 / cost_ratio_formula(k, n)  # m cancels out exactly


def cost_ratio_formula(k, n):
    return (k * k + n) / (k * k * n)
''',
        "ex3_madds": '''
def standard_conv_madds(k, m, n, d_f):
    return standard_conv_params(k, m, n) * d_f ** 2


def dwsep_madds(k, m, n, d_f):
    return dwsep_params(k, m, n) * d_f ** 2
''',
    },
    "factored_formulas": {
        "ex3_param_counts": '''
def standard_conv_params(k, m, n):
    return pow(k, 2) * m * n


def dwsep_params(k, m, n):
    depthwise = m * k ** 2
    pointwise = m * n
    return depthwise + pointwise
''',
        "ex3_madds": '''
def standard_conv_madds(k, m, n, d_f):
    outputs = n * d_f * d_f
    return outputs * (k * k * m)


def dwsep_madds(k, m, n, d_f):
    return m * d_f * d_f * k * k + n * d_f * d_f * m
''',
    },
}

EX4_ALTERNATIVES = {
    "sequential_helper_hardtanh": {
        "ex4_dwsep_conv": '''
from collections import OrderedDict


def conv_bn_relu6(in_ch, out_ch, kernel_size, stride=1, groups=1):
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(in_ch, out_ch, kernel_size, stride=stride, padding=kernel_size // 2, groups=groups,
                       bias=False),
        bn=nn.BatchNorm2d(out_ch),
        act=nn.Hardtanh(0.0, 6.0),
    ))


class DWSepConv(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self.dw = conv_bn_relu6(in_ch, in_ch, 3, stride=stride, groups=in_ch)
        self.pw = conv_bn_relu6(in_ch, out_ch, 1)

    def forward(self, x):
        return self.pw(self.dw(x))
''',
        "ex4_standard_conv": '''
class StandardConv(nn.Sequential):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__(nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch),
                         nn.ReLU(inplace=True))
''',
    },
    "custom_stage_with_clamp": {
        "ex4_dwsep_conv": '''
class ConvBNClamp(nn.Module):
    def __init__(self, conv):
        super().__init__()
        self.conv = conv
        self.bn = nn.BatchNorm2d(conv.out_channels)

    def forward(self, x):
        return torch.clamp(self.bn(self.conv(x)), 0.0, 6.0)


class DWSepConv(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self.dw = ConvBNClamp(nn.Conv2d(in_ch, in_ch, kernel_size=3, stride=stride, padding=1, groups=in_ch,
                                        bias=False))
        self.pw = ConvBNClamp(nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False))

    def forward(self, x):
        x = self.dw(x)
        return self.pw(x)
''',
        "ex4_standard_conv": '''
class StandardConv(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=(3, 3), stride=(stride, stride), padding=(1, 1), bias=False)
        self.norm = nn.BatchNorm2d(out_ch)

    def forward(self, x):
        return self.norm(self.conv(x)).clamp(min=0)
''',
    },
}

ALTERNATIVE_RUNS = [pytest.param(ex3, ex4, id=f"{ex3}+{ex4}")
                    for ex3, ex4 in zip(EX3_ALTERNATIVES, EX4_ALTERNATIVES, strict=True)]


@pytest.fixture(scope="module")
def grading(tmp_path_factory) -> GradingRun:
    return GradingRun(tmp_path_factory.mktemp("ex34_course"))


# ----------------------------------------------------------------------------- static checks (fast)

def test_each_exercise_is_worth_ten_points():
    assert submissions.points_per_exercise(source_nb(NAME)) == {"ex3": 10, "ex4": 10}


def test_graded_cells_follow_the_naming_and_have_stable_ids():
    assert not submissions.naming_problems(source_nb(NAME), "34")


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
    assert sum(scores[g][1] for g in graded) == 18  # 8 (exercise 3) + 10 (exercise 4); 2 written points by hand


@pytest.mark.slow
def test_untouched_release_scores_zero_without_crashing(grading):
    scores = grading.grade("blank", NAME, release_nb(NAME))
    assert autograded_ids(NAME) <= set(scores), "every test cell must be graded even when nothing is answered"
    assert total(scores)[0] == 0, f"blank notebook scored points: {scores}"


@pytest.mark.slow
@pytest.mark.parametrize("ex3, ex4", WRONG_RUNS)
def test_wrong_answers_lose_points_on_their_own_cells(grading, ex3, ex4):
    answers = {**EX3_WRONG[ex3][0], **EX4_WRONG[ex4][0]}
    expected = EX3_WRONG[ex3][1] | EX4_WRONG[ex4][1]
    scores = grading.grade(f"wrong-{ex4}", NAME, submission(answers))
    got = lost(scores) & autograded_ids(NAME)
    assert got == expected, f"{ex3} + {ex4}: lost {sorted(got)}, expected {sorted(expected)}"


@pytest.mark.slow
@pytest.mark.parametrize("ex3, ex4", ALTERNATIVE_RUNS)
def test_differently_written_correct_answers_score_full_marks(grading, ex3, ex4):
    answers = {**EX3_ALTERNATIVES[ex3], **EX4_ALTERNATIVES[ex4]}
    scores = grading.grade(f"alt-{ex4}", NAME, submission(answers))
    assert not lost(scores) & autograded_ids(NAME), f"{ex3} + {ex4} lost points: {scores}"
