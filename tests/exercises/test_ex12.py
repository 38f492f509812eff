"""Exercises 1-2 (skip connections): the case the shared suite (tests/exercises/suite.py) grades, and
this notebook's own checks.

Each single mistake must lose exactly the cells of the function or class it breaks (stated beside it):
ResidualBlock's branch is graded with a stand-in shortcut that adds 0, the skip path with a stand-in
shortcut and the branch switched off, MiniResNet with a stand-in for ResidualBlock, count_parameters on
modules the grader builds; the two worked examples are graded against the true values or the student's
own functions and classes. Exercise 1's bank is shorter: the rest of the runs carry an exercise-2
mistake only."""

from __future__ import annotations

from functools import partial

from tests.exercises import submissions
from tests.exercises.suite import Case, ExerciseSuite
from tests.harness.grading import source_nb

NAME = "ex12_skip_connections.ipynb"
edit = partial(submissions.edit, NAME)

RESIDUAL_RETURN = "delta ** (block_size - 1) * (1 + delta ** block_size) ** (num_blocks - 1)"
RESIDUAL_GUARD = "if num_layers < 1 or block_size < 1 or num_layers % block_size:"

# (answers, the autograded cells that must lose points) for exercise 1. The worked example is graded
# against the true value or the student's own function, so a wrong function costs only its own cell.
EX1_WRONG = {
    "plain_exponent_off_by_one": (
        edit("ex1_plain_gradient", ("delta ** (num_layers - 1)", "delta ** num_layers")),
        {"ex1_test_plain"},
    ),
    "residual_every_block_full_jacobian": (
        edit("ex1_residual_gradient", (RESIDUAL_RETURN, "(1 + delta ** block_size) ** num_blocks")),
        {"ex1_test_residual"},
    ),
    "residual_assumes_blocks_of_two": (
        edit("ex1_residual_gradient", (RESIDUAL_RETURN, "delta * (1 + delta ** 2) ** (num_layers // 2 - 1)")),
        {"ex1_test_residual"},
    ),
    "residual_no_value_error": (
        edit("ex1_residual_gradient", (" or num_layers % block_size:", ":")),
        {"ex1_test_residual"},
    ),
    "residual_block_size_zero_divides_by_zero": (  # ZeroDivisionError instead of ValueError
        edit("ex1_residual_gradient", (RESIDUAL_GUARD, "if num_layers % block_size or num_layers < 1:")),
        {"ex1_test_residual"},
    ),
    "residual_forgets_the_skip": (
        edit("ex1_residual_gradient", (RESIDUAL_RETURN, "delta ** (num_layers - 1)")),
        {"ex1_test_residual"},
    ),
    "plain_hard_coded_to_the_worked_example": (
        {"ex1_plain_gradient": "def plain_gradient_fraction(delta, num_layers):\n    return 0.16807\n"},
        {"ex1_test_plain"},
    ),
    "residual_hard_coded_to_the_worked_example": (
        {
            "ex1_residual_gradient": (
                "def residual_gradient_fraction(delta, num_layers, block_size=2):\n"
                "    if num_layers < 1 or block_size < 1 or num_layers % block_size:\n"
                "        raise ValueError('whole blocks only')\n    return 1.55407\n"
            )
        },
        {"ex1_test_residual"},
    ),
    "worked_example_wrong_depth": (
        edit("ex1_worked_example", ("plain_gradient_fraction(0.7, 6)", "plain_gradient_fraction(0.7, 5)")),
        {"ex1_test_worked_example"},
    ),
}

BLOCK_RETURN = "return F.relu(out + self.shortcut(x))"
PROJECTION = """nn.Sequential(
                nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_ch),
            )"""
COUNT_FILTER = "if p.requires_grad or not trainable_only"

# a MiniResNet that binds the block class as a default argument: no stand-in can be swapped in, so it
# is judged with the student's own blocks, by what goes in and comes out of them
DEFAULT_ARGUMENT_MINI_RESNET = """
class MiniResNet(nn.Module):
    def __init__(self, num_classes=10, block=ResidualBlock):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        widths = [(32, 32, 1), (32, 64, 2), (64, 64, 1)]
        self.stages = nn.Sequential(*(block(i, o, stride=s) for i, o, s in widths))
        self.pool = nn.AdaptiveAvgPool2d(output_size=1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.fc(self.pool(self.stages(self.stem(x))).view(x.shape[0], -1))
"""
DEFAULT_ARGUMENT_SHAPES = """
model = MiniResNet().to(device).eval()
batch = torch.randn(8, 3, 32, 32).to(device)
with torch.no_grad():
    blocks_out_shape = tuple(model.stages(model.stem(batch)).shape)
    logits_shape = tuple(model(batch).shape)
total_params = int(count_parameters(model))
"""

# ... and for exercise 2. The shapes cell is a worked example run with the student's own classes: it is
# right when each value is the true one or what the student's own MiniResNet / count_parameters give. It
# can only lose points when the student's MiniResNet cannot run at all (then the cell cannot record
# anything): that is the one legitimate dependency, stated in the exercise text.
EX2_WRONG = {
    # ResidualBlock, the residual branch
    "convs_with_bias": (
        edit("ex2_residual_block", ("padding=1, bias=False)", "padding=1, bias=True)", 2)),
        {"ex2_test_residual_block"},
    ),
    "stride_on_the_second_conv": (
        edit(
            "ex2_residual_block",
            ("nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1", "nn.Conv2d(in_ch, out_ch, 3, stride=1, padding=1"),
            (
                "nn.Conv2d(out_ch, out_ch, 3, stride=1, padding=1",
                "nn.Conv2d(out_ch, out_ch, 3, stride=stride, padding=1",
            ),
        ),
        {"ex2_test_residual_block"},
    ),
    "no_relu_inside_the_branch": (
        edit("ex2_residual_block", ("out = F.relu(self.bn1(self.conv1(x)))", "out = self.bn1(self.conv1(x))")),
        {"ex2_test_residual_block"},
    ),
    # ResidualBlock, the shortcut
    "projection_only_when_channels_change": (
        edit("ex2_residual_block", ("if in_ch == out_ch and stride == 1:", "if in_ch == out_ch:")),
        {"ex2_test_shortcut"},
    ),
    "projection_without_the_stride": (  # the stride-2 block then cannot add: MiniResNet() cannot run
        edit(
            "ex2_residual_block",
            (
                "nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)",
                "nn.Conv2d(in_ch, out_ch, 1, stride=1, bias=False)",
            ),
        ),
        {"ex2_test_shortcut", "ex2_test_shapes"},
    ),
    "projection_without_batchnorm": (
        edit("ex2_residual_block", (PROJECTION, "nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)")),
        {"ex2_test_shortcut"},
    ),
    "projection_even_when_shapes_match": (
        edit("ex2_residual_block", ("if in_ch == out_ch and stride == 1:", "if False:")),
        {"ex2_test_shortcut"},
    ),
    # ResidualBlock, the addition and the ReLU after it
    "relu_before_the_add": (
        edit("ex2_residual_block", (BLOCK_RETURN, "return F.relu(out) + self.shortcut(x)")),
        {"ex2_test_skip_path"},
    ),
    "no_relu_after_the_add": (
        edit("ex2_residual_block", (BLOCK_RETURN, "return out + self.shortcut(x)")),
        {"ex2_test_skip_path"},
    ),
    "shortcut_never_added": (edit("ex2_residual_block", (BLOCK_RETURN, "return F.relu(out)")), {"ex2_test_skip_path"}),
    # MiniResNet
    "two_downsampling_blocks": (  # gives (8, 64, 8, 8) after the blocks; the shapes cell records that
        edit("ex2_mini_resnet", ("ResidualBlock(64, 64),", "ResidualBlock(64, 64, stride=2),")),
        {"ex2_test_mini_resnet"},
    ),
    "stem_without_relu": (
        edit("ex2_mini_resnet", ("nn.BatchNorm2d(32),\n            nn.ReLU(inplace=True),", "nn.BatchNorm2d(32),")),
        {"ex2_test_mini_resnet"},
    ),
    "stem_conv_with_bias": (
        edit("ex2_mini_resnet", ("nn.Conv2d(3, 32, 3, padding=1, bias=False)", "nn.Conv2d(3, 32, 3, padding=1)")),
        {"ex2_test_mini_resnet"},
    ),
    "max_pooling_head": (
        edit("ex2_mini_resnet", ("nn.AdaptiveAvgPool2d(1)", "nn.AdaptiveMaxPool2d(1)")),
        {"ex2_test_mini_resnet"},
    ),
    "pooling_fixed_to_32_pixel_inputs": (  # right for 32x32 only: global pooling must work for any size
        edit("ex2_mini_resnet", ("nn.AdaptiveAvgPool2d(1)", "nn.AvgPool2d(16)")),
        {"ex2_test_mini_resnet"},
    ),
    "default_argument_block_and_a_downsampling_third_block": (  # judged with the student's own blocks
        {
            "ex2_mini_resnet": DEFAULT_ARGUMENT_MINI_RESNET.replace("(64, 64, 1)]", "(64, 64, 2)]"),
            "ex2_shapes": DEFAULT_ARGUMENT_SHAPES,
        },
        {"ex2_test_mini_resnet"},
    ),
    "hidden_layer_in_the_head": (
        edit(
            "ex2_mini_resnet",
            (
                "self.fc = nn.Linear(64, num_classes)",
                "self.fc = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, num_classes))",
            ),
        ),
        {"ex2_test_mini_resnet"},
    ),
    # count_parameters
    "counts_buffers_too": (
        edit(
            "ex2_count_parameters",
            ("for p in model.parameters()", "for p in model.state_dict(keep_vars=True).values()"),
        ),
        {"ex2_test_count_parameters"},
    ),
    "ignores_trainable_only": (edit("ex2_count_parameters", (f" {COUNT_FILTER}", "")), {"ex2_test_count_parameters"}),
    "trainable_only_by_default": (
        edit("ex2_count_parameters", (COUNT_FILTER, "if p.requires_grad")),
        {"ex2_test_count_parameters"},
    ),
    # the worked example
    "shape_after_the_blocks_typed_wrong": (
        edit("ex2_shapes", ("blocks_out_shape = tuple(features.shape)", "blocks_out_shape = (8, 64, 32, 32)")),
        {"ex2_test_shapes"},
    ),
    "total_counts_the_buffers": (
        edit(
            "ex2_shapes",
            (
                "total_params = count_parameters(model)",
                "total_params = sum(t.numel() for t in model.state_dict().values())",
            ),
        ),
        {"ex2_test_shapes"},
    ),
}


EX1_ALTERNATIVES = {
    "loops": {
        "ex1_plain_gradient": """
def plain_gradient_fraction(delta, num_layers):
    fraction = 1.0
    for _ in range(num_layers - 1):
        fraction *= delta
    return fraction
""",
        "ex1_residual_gradient": """
def residual_gradient_fraction(delta, num_layers, block_size=2):
    if block_size < 1 or num_layers < 1 or num_layers % block_size != 0:
        raise ValueError("the layers must split into whole blocks")
    fraction = 1.0
    for _ in range(num_layers // block_size - 1):  # every block above block 1
        fraction *= 1 + delta ** block_size
    for _ in range(block_size - 1):  # the layers after layer 1 inside block 1
        fraction *= delta
    return fraction
""",
    },
    "math_module": {
        "ex1_plain_gradient": """
import math


def plain_gradient_fraction(delta, num_layers):
    return math.pow(delta, num_layers - 1)
""",
        "ex1_residual_gradient": """
def residual_gradient_fraction(delta, num_layers, block_size=2):
    if block_size <= 0 or num_layers <= 0:
        raise ValueError("need at least one layer per block")
    num_blocks, rest = divmod(num_layers, block_size)
    if rest:
        raise ValueError(f"{num_layers} layers do not split into blocks of {block_size}")
    return math.prod([1 + delta ** block_size] * (num_blocks - 1)) * math.pow(delta, block_size - 1)
""",
    },
    "autograd_and_recursion": {
        "ex1_plain_gradient": """
def plain_gradient_fraction(delta, num_layers):
    return 1.0 if num_layers <= 1 else delta * plain_gradient_fraction(delta, num_layers - 1)
""",
        "ex1_residual_gradient": """
def residual_gradient_fraction(delta, num_layers, block_size=2):
    if not (num_layers >= 1 and block_size >= 1) or num_layers % block_size:
        raise ValueError(f"cannot split {num_layers} layers into blocks of {block_size}")
    a = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    block_input, a1 = a, None
    for layer in range(1, num_layers + 1):
        a = delta * a
        a1 = a if layer == 1 else a1
        if layer % block_size == 0:
            a = block_input = a + block_input
    (grad,) = torch.autograd.grad(a, a1)
    return grad.item()
""",
        "ex1_worked_example": """
plain_6, residual_6 = plain_gradient_fraction(0.7, 6), residual_gradient_fraction(0.7, 6)
""",
    },
}

EX2_ALTERNATIVES = {
    "sequential_branch_and_hook": {
        "ex2_residual_block": """
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
""",
        "ex2_mini_resnet": """
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
""",
        "ex2_count_parameters": """
def count_parameters(model, trainable_only=False):
    total = 0
    for p in model.parameters():
        if trainable_only and not p.requires_grad:
            continue
        total += p.numel()
    return total
""",
        "ex2_shapes": """
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
""",
    },
    "attributes_inplace_relu_mean_pool": {
        "ex2_residual_block": """
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
""",
        "ex2_mini_resnet": """
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
""",
        "ex2_count_parameters": """
def count_parameters(model, trainable_only=False):
    params = filter(lambda p: p.requires_grad, model.parameters()) if trainable_only else model.parameters()
    return sum(map(torch.numel, params))
""",
        "ex2_shapes": """
model = MiniResNet().eval()
batch = torch.randn(8, 3, 32, 32)
with torch.no_grad():
    blocks_out_shape = tuple(model.features(batch).shape)
    logits_shape = tuple(model(batch).shape)
total_params = count_parameters(model)
""",
    },
    # blocks assigned before the stem, a ModuleList, a projection class of its own, norms registered
    # before the convs, the model moved to `device` inside __init__
    "blocks_before_stem_own_projection_class_on_device": {
        "ex2_residual_block": """
class Projection(nn.Module):
    def __init__(self, in_ch, out_ch, stride):
        super().__init__()
        self.norm = nn.BatchNorm2d(out_ch)
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=(1, 1), stride=(stride, stride), bias=False)

    def forward(self, x):
        return self.norm(self.conv(x))


class ResidualBlock(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self.bn_second, self.bn_first = nn.BatchNorm2d(out_ch), nn.BatchNorm2d(out_ch)
        self.second = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.first = nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        same = in_ch == out_ch and stride == 1
        self.shortcut = nn.Identity() if same else Projection(in_ch, out_ch, stride)

    def forward(self, x):
        h = F.relu(self.bn_first(self.first(x)), inplace=True)
        return F.relu(torch.add(self.bn_second(self.second(h)), self.shortcut(x)), inplace=True)
""",
        "ex2_mini_resnet": """
class MiniResNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.body = nn.ModuleList([ResidualBlock(32, 32), ResidualBlock(32, 64, stride=2), ResidualBlock(64, 64)])
        self.out = nn.Linear(64, num_classes)
        self.stem_norm = nn.BatchNorm2d(32)
        self.stem_conv = nn.Conv2d(3, 32, 3, 1, 1, bias=False)
        self.to(device)

    def forward(self, x):
        x = torch.relu(self.stem_norm(self.stem_conv(x)))
        for block in self.body:
            x = block(x)
        return self.out(F.adaptive_avg_pool2d(x, 1).flatten(1))
""",
        "ex2_count_parameters": """
def count_parameters(model, trainable_only=False):
    if trainable_only:
        return sum(p.numel() for p in model.parameters() if p.requires_grad)
    return sum(p.numel() for p in model.parameters())
""",
        "ex2_shapes": """
torch.manual_seed(0)
model = MiniResNet().eval()
batch = torch.randn(8, 3, 32, 32, device=device)
with torch.no_grad():
    h = torch.relu(model.stem_norm(model.stem_conv(batch)))
    for block in model.body:
        h = block(h)
    blocks_out_shape = tuple(h.shape)
    logits_shape = tuple(model(batch).shape)
total_params = count_parameters(model, trainable_only=False)
""",
    },
    # the block class bound as a default argument (a stand-in cannot be swapped in: MiniResNet is then
    # judged with the student's own blocks, by what goes in and comes out), a shortcut chosen in forward
    "block_class_as_default_argument": {
        "ex2_residual_block": """
class ResidualBlock(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        layers = [nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(out_ch),
                  nn.ReLU(), nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch)]
        self.residual = nn.Sequential(*layers)
        if (in_ch, stride) == (out_ch, 1):
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential()
            self.shortcut.add_module("conv", nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False))
            self.shortcut.add_module("bn", nn.BatchNorm2d(out_ch))

    def forward(self, x):
        skip = x if isinstance(self.shortcut, nn.Identity) else self.shortcut(x)
        return nn.functional.relu(self.residual(x) + skip)
""",
        "ex2_mini_resnet": DEFAULT_ARGUMENT_MINI_RESNET,
        "ex2_count_parameters": """
def count_parameters(model, trainable_only=False):
    return sum(p.numel() for p in model.parameters() if (p.requires_grad or not trainable_only))
""",
        "ex2_shapes": DEFAULT_ARGUMENT_SHAPES,
    },
    # torchvision-style: padding="same", an OrderedDict projection, `out += identity`, kaiming init and a
    # zero-initialised last BatchNorm reached through each block's own attribute (a stand-in block cannot
    # be built into this MiniResNet, so it is judged with the student's own blocks), torch.Size shapes
    "torchvision_style_zero_init_residual": {
        "ex2_residual_block": """
from collections import OrderedDict


class ResidualBlock(nn.Module):
    def __init__(self, in_ch, out_ch, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_ch, out_ch, kernel_size=3, padding="same", bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = nn.Identity()
        if stride > 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(OrderedDict(
                conv=nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False),
                bn=nn.BatchNorm2d(out_ch)))

    def forward(self, x):
        identity = self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)
""",
        "ex2_mini_resnet": """
class MiniResNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 1, "same", bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.layers = nn.Sequential(ResidualBlock(32, 32), ResidualBlock(32, 64, 2), ResidualBlock(64, 64))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for block in self.layers:
            nn.init.zeros_(block.bn2.weight)  # each block starts as its shortcut

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        return self.fc(torch.flatten(self.avgpool(self.layers(x)), 1))
""",
        "ex2_count_parameters": """
def count_parameters(model, trainable_only=False):
    sizes = {name: p.numel() for name, p in model.named_parameters() if p.requires_grad or not trainable_only}
    return sum(sizes.values())
""",
        "ex2_shapes": """
model = MiniResNet().to(device)
model.eval()
x = torch.randn(8, 3, 32, 32, device=device)
with torch.no_grad():
    blocks_out_shape = model.layers(F.relu(model.bn1(model.conv1(x)))).shape
    logits_shape = model(x).size()
total_params = count_parameters(model)
""",
    },
}

CASE = Case(
    notebook=NAME,
    autograded_points={"ex1": 6, "ex2": 10},  # the rest of each exercise's 10 points: written parts, by hand
    secret_lines_over=40,  # solutions and the two model written answers: 56 distinctive lines
    wrong={"ex1": EX1_WRONG, "ex2": EX2_WRONG},
    alternatives={"ex1": EX1_ALTERNATIVES, "ex2": EX2_ALTERNATIVES},
)


class TestNotebook(ExerciseSuite):
    case = CASE


# ----------------------------------------------------------------------------- this notebook's own checks (fast)


def test_exercise_1_states_the_gradient_convention():
    text = next(c.source for c in source_nb(NAME).cells if c.get("id") == "ex1_statement")
    assert "the Jacobian of a whole block is $1 + \\delta^{b}$" in text
    assert "above 1" in text
