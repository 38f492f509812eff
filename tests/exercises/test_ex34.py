"""Exercises 3-4 (depthwise separable convolutions): the case the shared suite (tests/exercises/suite.py)
grades, and this notebook's own checks.

Each single mistake must lose exactly the cells of the function or class it breaks (stated beside it):
a function that builds on another of the student's functions is graded with a stand-in for it, and the
worked example and the comparison are graded against the student's own functions and classes."""

from __future__ import annotations

from functools import partial

from tests.exercises import submissions
from tests.exercises.suite import Case, ExerciseSuite

NAME = "ex34_depthwise_separable.ipynb"
edit = partial(submissions.edit, NAME)

STD_RETURN = "return k * k * m * n\n"
RATIO_RETURN = "return standard_conv_params(k, m, n) / dwsep_params(k, m, n)"

# (answers, the autograded cells that must lose points) for exercise 3 ...
EX3_WRONG = {
    "standard_counts_bias": (  # reduction_ratio and the worked example build on it: not charged there
        edit("ex3_param_counts", (STD_RETURN, "return k * k * m * n + n\n")),
        {"ex3_test_param_counts"},
    ),
    "separable_counts_batchnorm": (
        edit("ex3_param_counts", ("return k * k * m + m * n", "return k * k * m + 2 * m + m * n + 2 * n")),
        {"ex3_test_param_counts"},
    ),
    "ratio_upside_down": (  # the worked example's ratio is what the student's function returns
        edit("ex3_ratios", (RATIO_RETURN, "return dwsep_params(k, m, n) / standard_conv_params(k, m, n)")),
        {"ex3_test_ratios"},
    ),
    "formula_one_over_k": (
        edit("ex3_ratios", ("return 1 / n + 1 / k ** 2", "return 1 / n + 1 / k")),
        {"ex3_test_ratios"},
    ),
    "ratio_from_a_wrong_formula": (  # reduction_ratio = 1 / (a wrong cost_ratio_formula): one cell
        edit(
            "ex3_ratios",
            (RATIO_RETURN, "return 1 / cost_ratio_formula(k, n)"),
            ("return 1 / n + 1 / k ** 2", "return 1 / n + 1 / k"),
        ),
        {"ex3_test_ratios"},
    ),
    "madds_linear_in_feature_size": (
        edit(
            "ex3_madds",
            ("k * k * m * n * d_f * d_f", "k * k * m * n * d_f"),
            ("(k * k * m + m * n) * d_f * d_f", "(k * k * m + m * n) * d_f"),
        ),
        {"ex3_test_madds"},
    ),
    "madds_forget_the_pointwise_stage": (
        edit("ex3_madds", ("(k * k * m + m * n) * d_f * d_f", "k * k * m * d_f * d_f")),
        {"ex3_test_madds"},
    ),
    "madds_reuse_wrong_counts": (  # the multiply-adds reuse a wrong count: charged to the counts only
        {
            **edit("ex3_param_counts", (STD_RETURN, "return k * k * m * n + n\n")),
            "ex3_madds": (
                "def standard_conv_madds(k, m, n, d_f):\n"
                "    return standard_conv_params(k, m, n) * d_f ** 2\n\n\n"
                "def dwsep_madds(k, m, n, d_f):\n    return dwsep_params(k, m, n) * d_f ** 2\n"
            ),
        },
        {"ex3_test_param_counts"},
    ),
    "hard_coded_worked_example": (  # the ratio built on the hard-coded counts is graded with stand-ins
        {
            "ex3_param_counts": (
                "def standard_conv_params(k, m, n):\n    return 73728\n\n\n"
                "def dwsep_params(k, m, n):\n    return 8768\n"
            ),
            "ex3_madds": (
                "def standard_conv_madds(k, m, n, d_f):\n    return 231211008\n\n\n"
                "def dwsep_madds(k, m, n, d_f):\n    return 27496448\n"
            ),
        },
        {"ex3_test_param_counts", "ex3_test_madds"},
    ),
    "worked_example_swapped_arguments": (
        edit("ex3_worked_example", ("dwsep_params(3, 64, 128)", "dwsep_params(3, 128, 64)")),
        {"ex3_test_worked_example"},
    ),
}

DEPTHWISE_CONV = "nn.Conv2d(in_ch, in_ch, 3, stride=stride, padding=1, groups=in_ch, bias=False)"
DW_STAGE = """        self.dw = nn.Sequential(
            nn.Conv2d(in_ch, in_ch, 3, stride=stride, padding=1, groups=in_ch, bias=False),
            nn.BatchNorm2d(in_ch),
            nn.ReLU6(inplace=True),
        )"""

# ... and for exercise 4 (the comparison is graded against the student's own classes: never charged
# for a class's mistake).
EX4_WRONG = {
    "depthwise_with_groups_1": (
        edit("ex4_dwsep_conv", (DEPTHWISE_CONV, "nn.Conv2d(in_ch, in_ch, 3, stride=stride, padding=1, bias=False)")),
        {"ex4_test_dwsep_structure", "ex4_test_param_counts"},
    ),
    "relu_instead_of_relu6": (
        edit("ex4_dwsep_conv", ("nn.ReLU6(inplace=True)", "nn.ReLU(inplace=True)", 2)),
        {"ex4_test_activations"},
    ),
    "depthwise_stage_without_activation": (  # judged once, by the activation cell
        edit("ex4_dwsep_conv", (DW_STAGE, DW_STAGE.replace("            nn.ReLU6(inplace=True),\n", ""))),
        {"ex4_test_activations"},
    ),
    "convs_with_bias": (
        edit("ex4_dwsep_conv", ("bias=False)", "bias=True)", 2)),
        {"ex4_test_dwsep_structure", "ex4_test_param_counts"},
    ),
    "standard_conv_clamps_at_6": (
        edit("ex4_standard_conv", ("return F.relu(self.bn(self.conv(x)))", "return F.relu6(self.bn(self.conv(x)))")),
        {"ex4_test_activations"},
    ),
    "standard_conv_1x1": (  # same output size, other weights
        edit(
            "ex4_standard_conv",
            (
                "nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)",
                "nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)",
            ),
        ),
        {"ex4_test_standard_conv", "ex4_test_param_counts"},
    ),
    "stride_on_the_pointwise_conv": (
        edit(
            "ex4_dwsep_conv",
            ("3, stride=stride, padding=1, groups=in_ch", "3, stride=1, padding=1, groups=in_ch"),
            ("nn.Conv2d(in_ch, out_ch, 1, bias=False)", "nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)"),
        ),
        {"ex4_test_dwsep_structure"},
    ),
    "depthwise_without_padding": (
        edit("ex4_dwsep_conv", ("stride=stride, padding=1, groups=in_ch", "stride=stride, groups=in_ch")),
        {"ex4_test_dwsep_structure", "ex4_test_shapes"},
    ),
    "forward_skips_the_depthwise_stage": (
        edit("ex4_dwsep_conv", ("return self.pw(self.dw(x))", "return self.pw(x)")),
        {"ex4_test_dwsep_structure", "ex4_test_shapes"},
    ),
    "comparison_counts_weights_only": (
        edit(
            "ex4_comparison",
            (
                "dwsep_count = sum(p.numel() for p in dwsep.parameters())",
                "dwsep_count = sum(p.numel() for p in dwsep.parameters() if p.dim() > 1)",
            ),
        ),
        {"ex4_test_comparison"},
    ),
}


EX3_ALTERNATIVES = {
    "reciprocal_and_reuse": {
        "ex3_ratios": """
def reduction_ratio(k, m, n):
    return 1 / cost_ratio_formula(k, n)  # m cancels out exactly


def cost_ratio_formula(k, n):
    return (k * k + n) / (k * k * n)
""",
        "ex3_madds": """
def standard_conv_madds(k, m, n, d_f):
    return standard_conv_params(k, m, n) * d_f ** 2


def dwsep_madds(k, m, n, d_f):
    return dwsep_params(k, m, n) * d_f ** 2
""",
    },
    "factored_formulas": {
        "ex3_param_counts": """
def standard_conv_params(k, m, n):
    return pow(k, 2) * m * n


def dwsep_params(k, m, n):
    depthwise = m * k ** 2
    pointwise = m * n
    return depthwise + pointwise
""",
        "ex3_madds": """
def standard_conv_madds(k, m, n, d_f):
    outputs = n * d_f * d_f
    return outputs * (k * k * m)


def dwsep_madds(k, m, n, d_f):
    return m * d_f * d_f * k * k + n * d_f * d_f * m
""",
    },
    "stages_as_standard_convs_and_literal_worked_example": {
        "ex3_param_counts": """
def standard_conv_params(k, m, n):
    return k * k * m * n


def dwsep_params(k, m, n):
    # the depthwise stage is m filters of k x k x 1, the pointwise stage n filters of 1 x 1 x m
    return standard_conv_params(k, 1, m) + standard_conv_params(1, m, n)
""",
        "ex3_ratios": """
from fractions import Fraction


def reduction_ratio(k, m, n):
    return float(Fraction(standard_conv_params(k, m, n), dwsep_params(k, m, n)))


def cost_ratio_formula(k, n):
    return float(Fraction(1, n) + Fraction(1, k * k))
""",
        "ex3_madds": """
def standard_conv_madds(k, m, n, d_f):
    return standard_conv_params(k, m, n) * d_f * d_f


def dwsep_madds(k, m, n, d_f):
    return standard_conv_madds(k, 1, m, d_f) + standard_conv_madds(1, m, n, d_f)
""",
        "ex3_worked_example": """
# Worked example: D_K = 3, M = 64, N = 128, D_F = 56 (checked against the functions below)
std_params, sep_params = 73_728, 8_768
ratio = std_params / sep_params
formula_fraction = 1 / 128 + 1 / 9
std_madds, sep_madds = std_params * 56 ** 2, sep_params * 56 ** 2
assert (std_params, sep_params) == (standard_conv_params(3, 64, 128), dwsep_params(3, 64, 128))
print(f"standard 3x3 conv:         {std_params:>12,} weights  {std_madds:>14,} multiply-adds")
print(f"depthwise separable block: {sep_params:>12,} weights  {sep_madds:>14,} multiply-adds")
print(f"reduction ratio: {ratio:.4f}x   formula 1/N + 1/D_K^2 = {formula_fraction:.6f}")
""",
    },
    "numpy_and_math_prod": {
        "ex3_param_counts": """
import math

import numpy as np


def standard_conv_params(k, m, n):
    return math.prod((k, k, m, n))


def dwsep_params(k, m, n):
    return int(np.sum([k * k * m, m * n]))
""",
        "ex3_ratios": """
def reduction_ratio(k, m, n):
    return np.float64(k * k * n) / (k * k + n)   # m cancels


def cost_ratio_formula(k, n):
    return sum(1 / d for d in (n, k ** 2))
""",
        "ex3_madds": """
def standard_conv_madds(k, m, n, d_f):
    positions = d_f ** 2
    return standard_conv_params(k, m, n) * positions


def dwsep_madds(k, m, n, d_f):
    depthwise = k * k * d_f * d_f * m
    return depthwise + standard_conv_madds(1, m, n, d_f)
""",
    },
}

EX4_ALTERNATIVES = {
    "sequential_helper_hardtanh": {
        "ex4_dwsep_conv": """
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
""",
        "ex4_standard_conv": """
class StandardConv(nn.Sequential):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__(nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch),
                         nn.ReLU(inplace=True))
""",
    },
    "custom_stage_with_clamp": {
        "ex4_dwsep_conv": """
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
""",
        "ex4_standard_conv": """
class StandardConv(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=(3, 3), stride=(stride, stride), padding=(1, 1), bias=False)
        self.norm = nn.BatchNorm2d(out_ch)

    def forward(self, x):
        return self.norm(self.conv(x)).clamp(min=0)
""",
    },
    "explicit_forward_functional_other_order_on_device": {
        "ex4_dwsep_conv": """
class _Pointwise(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.norm = nn.BatchNorm2d(out_ch)        # assigned before the conv: order does not matter
        self.mix = nn.Conv2d(in_ch, out_ch, kernel_size=1, padding=0, bias=False)

    def forward(self, x):
        return F.relu6(self.norm(self.mix(x)))


class DWSepConv(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self.pw = _Pointwise(in_ch, out_ch)
        self.dw = nn.Sequential(nn.Conv2d(in_ch, in_ch, (3, 3), (stride, stride), (1, 1), groups=in_ch, bias=False),
                                nn.BatchNorm2d(in_ch), nn.ReLU6())

    def forward(self, x):
        y = self.dw(x)
        return self.pw(y)
""",
        "ex4_standard_conv": """
class StandardConv(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self.bn = nn.BatchNorm2d(out_ch)
        self.act = nn.ReLU()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1, stride=stride, bias=False)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))
""",
        "ex4_comparison": """
torch.manual_seed(1)
dwsep, standard = DWSepConv(64, 128).to(device), StandardConv(64, 128).to(device)
dwsep_count, standard_count = (sum(map(torch.numel, m.parameters())) for m in (dwsep, standard))
count_ratio = standard_count / dwsep_count
batch = torch.randn(2, 64, 56, 56, device=device)
with torch.no_grad():
    dwsep_shape = dwsep(batch).shape         # a torch.Size is a tuple
    standard_shape = tuple(standard.eval()(batch).size())
print(dwsep_count, standard_count, count_ratio, dwsep_shape, standard_shape)
""",
    },
    "sequential_subclass_stages_valid_padding": {
        "ex4_dwsep_conv": '''
class Stage(nn.Sequential):
    """conv -> BatchNorm -> ReLU6 (as Hardtanh(0, 6))."""

    def __init__(self, conv):
        super().__init__(conv, nn.BatchNorm2d(conv.out_channels), nn.Hardtanh(min_val=0.0, max_val=6.0))


class DWSepConv(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self.dw = Stage(nn.Conv2d(in_ch, in_ch, kernel_size=3, stride=stride, padding=1, groups=in_ch, bias=False))
        self.pw = Stage(nn.Conv2d(in_ch, out_ch, kernel_size=(1, 1), padding="valid", bias=False))

    def forward(self, x):
        return self.pw(self.dw(x))
''',
        "ex4_standard_conv": """
class StandardConv(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self.layers = nn.ModuleDict({"conv": nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
                                     "bn": nn.BatchNorm2d(out_ch)})

    def forward(self, x):
        return torch.relu(self.layers["bn"](self.layers["conv"](x)))
""",
    },
}

CASE = Case(
    notebook=NAME,
    autograded_points={"ex3": 8, "ex4": 10},  # the rest of each exercise's 10 points: written parts, by hand
    secret_lines_over=30,  # solutions and the model written answer: 39 distinctive lines
    wrong={"ex3": EX3_WRONG, "ex4": EX4_WRONG},
    alternatives={"ex3": EX3_ALTERNATIVES, "ex4": EX4_ALTERNATIVES},
)


class TestNotebook(ExerciseSuite):
    case = CASE


# ----------------------------------------------------------------------------- this notebook's own checks (fast)


def test_verdicts_fail_cleanly_on_odd_or_hostile_records():
    """Student data is never trusted: garbage, wrong types and a table claiming huge tensors fail the cell."""
    from autograder import probes

    checks = probes.checks_for("ex34_depthwise_separable")
    cases = probes.choose_cases(checks, "odd", "mallory", "ex34_depthwise_separable")
    huge = [["dw.0.weight", [2**16, 2**16, 3, 3], "float32"]]
    odd_values = [
        {},
        {"0": "x", "0.built": True, "0.table": [[1, 2]], "0.fill": huge},
        {str(k): probes.Opaque("object") for k in range(40)},
        {
            **{f"{k}.built": True for k in range(12)},
            **{f"{k}.fill": huge for k in range(12)},
            **{f"{k}.table": [["dw", "Sequential", "Sequential", {}, {}]] for k in range(12)},
        },
    ]
    for values in odd_values:
        records = {gid: probes.Results(dict(values)) for gid in checks}
        verdicts = probes.decide(checks, cases, records)
        assert set(verdicts) == set(checks)
        assert not any(v.passed for v in verdicts.values()), {g: v for g, v in verdicts.items() if v.passed}
