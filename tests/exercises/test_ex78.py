"""Exercises 7-8 (inverted residuals, the fine-tuning pipeline): the case the shared suite
(tests/exercises/suite.py) grades, and this notebook's own checks.

Each single mistake must lose exactly the cells of the function it breaks (stated beside it): the
M = N = 32 answers are graded against the student's own functions, and run_pipeline is graded with a
grader stand-in network, loader and train_one_epoch, its three cells judging three separate things
(which parameters train when; how the optimizer is kept; what the history reports). Exercise 7's bank
is shorter: the rest of the runs carry an exercise-8 mistake only."""

from __future__ import annotations

import re
from functools import partial

import pytest

from tests.exercises import submissions
from tests.exercises.suite import Case, DemoSuite, ExerciseSuite
from tests.harness.grading import SOURCE, source_nb
from tools.notebooks import execute_notebook, outputs_text

NAME = "ex78_inverted_residuals_pipeline.ipynb"
edit = partial(submissions.edit, NAME)

MV1, MV2, TV, ANSWERS, SKIP = (
    "ex7_test_mv1_params",
    "ex7_test_mv2_params",
    "ex7_test_mv2_torchvision",
    "ex7_test_answers_32",
    "ex7_test_identity_skip",
)
LOADER, METRICS, GRADIENTS = "ex8_test_loader", "ex8_test_epoch_metrics", "ex8_test_no_grad_accumulation"
BLOCKS, OPTIMIZER, HISTORY = "ex8_test_pipeline_blocks", "ex8_test_pipeline_optimizer", "ex8_test_pipeline_history"

# (answers, the autograded cells that must lose points) for exercise 7 ...
EX7_WRONG = {
    "counts_batchnorm": (  # MV1_PARAMS_32 uses it: graded against the student's own function, not charged
        edit("ex7_mv1_block_params", ("return k * k * m + m * n", "return k * k * m + m * n + 2 * m + 2 * n")),
        {MV1},
    ),
    "mv1_kernel_fixed_at_3": (
        edit("ex7_mv1_block_params", ("return k * k * m + m * n", "return 9 * m + m * n")),
        {MV1},
    ),
    "expansion_of_the_output": (  # both cells test mv2_block_params
        edit("ex7_mv2_block_params", ("hidden = expansion * m", "hidden = expansion * n")),
        {MV2, TV},
    ),
    "expansion_conv_kept_for_t_1": (
        edit("ex7_mv2_block_params", ("expand = m * hidden if expansion != 1 else 0", "expand = m * hidden")),
        {TV},
    ),
    "skip_when_either_matches": (
        edit("ex7_uses_identity_skip", ("stride == 1 and in_ch == out_ch", "stride == 1 or in_ch == out_ch")),
        {SKIP},
    ),
    "skip_ignores_the_stride": (
        edit("ex7_uses_identity_skip", ("stride == 1 and in_ch == out_ch", "in_ch == out_ch")),
        {SKIP},
    ),
    "skip_returns_an_int": (
        edit(
            "ex7_uses_identity_skip",
            ("return stride == 1 and in_ch == out_ch", "return int(stride == 1 and in_ch == out_ch)"),
        ),
        {SKIP},
    ),
    "hard_coded_wrong_total": (
        edit("ex7_answers_32", ("MV2_PARAMS_32 = mv2_block_params(32, 32, expansion=6)", "MV2_PARAMS_32 = 13_888")),
        {ANSWERS},
    ),
}

ADD_GROUP = 'optimizer.add_param_group({"params": unfrozen, "lr": backbone_lr})'
UNFREEZE_IF = "if epoch == unfreeze_after and n_unfreeze > 0:"
HISTORY_LRS = '"lrs": [group["lr"] for group in optimizer.param_groups],'

# ... and for exercise 8: run_pipeline's cells never pay for train_one_epoch or make_synthetic_loader.
EX8_WRONG = {
    "unfreezes_the_first_blocks": (
        edit("ex8_run_pipeline", ("list(model.features)[-n_unfreeze:]", "list(model.features)[:n_unfreeze]")),
        {BLOCKS},
    ),
    "unfreezes_one_epoch_early": (  # only the cell of the schedule
        edit("ex8_run_pipeline", ("if epoch == unfreeze_after and", "if epoch + 1 == unfreeze_after and")),
        {BLOCKS},
    ),
    "unfreezes_one_epoch_late": (
        edit("ex8_run_pipeline", ("if epoch == unfreeze_after and", "if epoch == unfreeze_after + 1 and")),
        {BLOCKS},
    ),
    "n_unfreeze_0_unfreezes_everything": (  # list(model.features)[-0:] is every block
        edit("ex8_run_pipeline", (UNFREEZE_IF, "if epoch == unfreeze_after:")),
        {BLOCKS},
    ),
    "requires_grad_never_set": (  # the group is right, the blocks stay frozen
        edit(
            "ex8_run_pipeline",
            ("            for param in unfrozen:\n                param.requires_grad = True\n", ""),
            ("if not p.requires_grad]", "]"),
        ),
        {BLOCKS},
    ),
    "one_learning_rate_for_all": (
        edit("ex8_run_pipeline", (ADD_GROUP, 'optimizer.add_param_group({"params": unfrozen})')),
        {OPTIMIZER},
    ),
    "optimizer_never_told": (edit("ex8_run_pipeline", (ADD_GROUP, "pass")), {OPTIMIZER}),
    "new_optimizer_after_unfreezing": (
        edit(
            "ex8_run_pipeline",
            (
                ADD_GROUP,
                'optimizer = torch.optim.Adam([{"params": model.classifier.parameters()}, '
                '{"params": unfrozen, "lr": backbone_lr}], lr=head_lr)',
            ),
        ),
        {OPTIMIZER},
    ),
    "sgd_instead_of_adam": (
        edit("ex8_run_pipeline", ("optimizer = torch.optim.Adam(", "optimizer = torch.optim.SGD(")),
        {OPTIMIZER},
    ),
    "nll_loss_instead_of_cross_entropy": (
        edit("ex8_run_pipeline", ("criterion = nn.CrossEntropyLoss()", "criterion = nn.NLLLoss()")),
        {OPTIMIZER},
    ),
    "eval_mode_never_restored": (edit("ex8_run_pipeline", ("    model.eval()\n", "")), {HISTORY}),
    "history_counts_every_parameter": (
        edit("ex8_run_pipeline", ("for p in model.parameters() if p.requires_grad),", "for p in model.parameters()),")),
        {HISTORY},
    ),
    "history_lrs_from_the_arguments": (
        edit("ex8_run_pipeline", (HISTORY_LRS, '"lrs": [head_lr, backbone_lr],')),
        {HISTORY},
    ),
    "history_epochs_from_zero": (edit("ex8_run_pipeline", ('"epoch": epoch + 1,', '"epoch": epoch,')), {HISTORY}),
    "history_accuracy_in_percent": (
        edit("ex8_run_pipeline", ('"accuracy": accuracy,', '"accuracy": 100 * accuracy,')),
        {HISTORY},
    ),
    "no_zero_grad": (edit("ex8_train_one_epoch", ("        optimizer.zero_grad()\n", "")), {GRADIENTS}),
    "step_before_backward": (
        edit(
            "ex8_train_one_epoch",
            (
                "        loss.backward()\n        optimizer.step()\n",
                "        optimizer.step()\n        loss.backward()\n",
            ),
        ),
        {GRADIENTS},
    ),
    "accuracy_of_the_last_batch": (
        edit(
            "ex8_train_one_epoch",
            ("correct += (logits", "correct = (logits"),
            ("return total_loss / seen, correct / seen", "return total_loss / seen, correct / labels.size(0)"),
        ),
        {METRICS},
    ),
    "mean_of_batch_means": (
        edit(
            "ex8_train_one_epoch",
            ("total_loss += loss.item() * labels.size(0)", "total_loss += loss.item()"),
            ("return total_loss / seen,", "return total_loss / len(loader),"),
        ),
        {METRICS},
    ),
    "never_switches_to_train_mode": (edit("ex8_train_one_epoch", ("    model.train()\n", "")), {METRICS}),
    "returns_tensors": (
        edit(
            "ex8_train_one_epoch",
            ("total_loss += loss.item() * labels.size(0)", "total_loss += loss.detach() * labels.size(0)"),
        ),
        {METRICS},
    ),
    "train_one_epoch_left_blank": (  # run_pipeline's cells use the grader's stand-in: not charged there
        {
            "ex8_train_one_epoch": "def train_one_epoch(model, loader, criterion, optimizer):\n"
            "    raise NotImplementedError()\n"
        },
        {METRICS, GRADIENTS},
    ),
    "loader_left_blank": (
        {
            "ex8_make_synthetic_loader": "def make_synthetic_loader(num_samples=100, num_classes=5, image_size=224, "
            "batch_size=16, seed=0):\n    raise NotImplementedError()\n"
        },
        {LOADER},
    ),
    "loader_shuffles": (edit("ex8_make_synthetic_loader", ("shuffle=False", "shuffle=True")), {LOADER}),
    "loader_drops_the_last_batch": (
        edit("ex8_make_synthetic_loader", ("shuffle=False", "shuffle=False, drop_last=True")),
        {LOADER},
    ),
    "labels_from_1": (
        edit("ex8_make_synthetic_loader", ("torch.randint(0, num_classes,", "torch.randint(1, num_classes + 1,")),
        {LOADER},
    ),
    "uniform_images": (edit("ex8_make_synthetic_loader", ("images = torch.randn(", "images = torch.rand(")), {LOADER}),
    "generator_ignored": (
        edit(
            "ex8_make_synthetic_loader",
            ("image_size, generator=generator)", "image_size)"),
            ("(num_samples,), generator=generator)", "(num_samples,))"),
        ),
        {LOADER},
    ),
}


EX7_ALTERNATIVES = {
    "layer_table": {
        "ex7_mv1_block_params": """
def mv1_block_params(m, n, k=3):
    depthwise = m * 1 * k * k  # (out channels, in channels per group, k, k)
    pointwise = n * m
    return depthwise + pointwise
""",
        "ex7_mv2_block_params": """
def mv2_block_params(m, n, expansion=6, k=3):
    wide = m * expansion
    layers = [] if expansion == 1 else [(m, wide, 1, 1)]
    layers += [(wide, wide, k, wide), (wide, n, 1, 1)]
    return sum(c_out * (c_in // groups) * size * size for c_in, c_out, size, groups in layers)
""",
        "ex7_answers_32": "MV1_PARAMS_32, MV2_PARAMS_32 = mv1_block_params(32, 32), mv2_block_params(32, 32)\n",
        "ex7_uses_identity_skip": """
def uses_identity_skip(in_ch, out_ch, stride):
    return bool(in_ch == out_ch and stride == 1)
""",
    },
    "real_layers": {
        "ex7_mv1_block_params": """
def mv1_block_params(m, n, k=3):
    layers = [nn.Conv2d(m, m, k, groups=m, bias=False), nn.Conv2d(m, n, 1, bias=False)]
    return sum(layer.weight.numel() for layer in layers)
""",
        "ex7_mv2_block_params": """
def mv2_block_params(m, n, expansion=6, k=3):
    hidden = m * expansion
    layers = [nn.Conv2d(hidden, hidden, k, groups=hidden, bias=False), nn.Conv2d(hidden, n, 1, bias=False)]
    if expansion > 1:
        layers.append(nn.Conv2d(m, hidden, 1, bias=False))
    return sum(layer.weight.numel() for layer in layers)
""",
        "ex7_uses_identity_skip": """
def uses_identity_skip(in_ch, out_ch, stride):
    return (in_ch, stride) == (out_ch, 1)
""",
    },
    "factored_forms": {
        "ex7_mv1_block_params": """
def mv1_block_params(m, n, k=3):
    return m * (k ** 2 + n)
""",
        "ex7_mv2_block_params": """
def mv2_block_params(m, n, expansion=6, k=3):
    wide = expansion * m
    return wide * (k * k + n) + (0 if expansion == 1 else wide * m)
""",
        "ex7_answers_32": """
MV1_PARAMS_32 = 9 * 32 + 32 * 32
MV2_PARAMS_32 = 32 * 192 + 9 * 192 + 192 * 32
""",
        "ex7_uses_identity_skip": """
def uses_identity_skip(in_ch, out_ch, stride):
    if stride != 1:
        return False
    return in_ch == out_ch
""",
    },
}

EX8_ALTERNATIVES = {
    "zero_grad_after_step_and_dataset_length": {
        "ex8_make_synthetic_loader": """
def make_synthetic_loader(num_samples=100, num_classes=5, image_size=224, batch_size=16, seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    x = torch.randn((num_samples, 3, image_size, image_size), generator=g)
    y = torch.randint(num_classes, (num_samples,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)
""",
        "ex8_train_one_epoch": """
def train_one_epoch(model, loader, criterion, optimizer):
    model.train()
    device = next(model.parameters()).device
    optimizer.zero_grad(set_to_none=True)
    loss_sum, hits = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        out = model(x)
        batch_loss = criterion(out, y)
        batch_loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss_sum += float(batch_loss) * len(y)
        hits += int((out.argmax(1) == y).sum())
    n = len(loader.dataset)
    return loss_sum / n, hits / n
""",
        "ex8_run_pipeline": """
def run_pipeline(model, loader, epochs=3, unfreeze_after=1, n_unfreeze=2, head_lr=1e-3, backbone_lr=1e-4):
    optimizer = torch.optim.Adam(model.classifier.parameters(), lr=head_lr)
    criterion = nn.CrossEntropyLoss()
    history = []
    for epoch in range(1, epochs + 1):
        if epoch == unfreeze_after + 1 and n_unfreeze > 0:
            new_params = []
            for block in model.features[len(model.features) - n_unfreeze:]:
                block.requires_grad_(True)
                new_params.extend(block.parameters())
            optimizer.add_param_group({"params": new_params, "lr": backbone_lr})
        loss, acc = train_one_epoch(model, loader, criterion, optimizer)
        history.append(dict(epoch=epoch, loss=loss, accuracy=acc,
                            trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
                            lrs=[g["lr"] for g in optimizer.param_groups]))
    model.eval()
    return history
""",
    },
    "frozen_batchnorm_in_eval_and_model_zero_grad": {
        "ex8_make_synthetic_loader": """
def make_synthetic_loader(num_samples=100, num_classes=5, image_size=224, batch_size=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    dataset = TensorDataset(torch.randn(num_samples, 3, image_size, image_size, generator=gen),
                            torch.randint(0, num_classes, size=(num_samples,), generator=gen, dtype=torch.long))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=False)
""",
        "ex8_train_one_epoch": """
def train_one_epoch(model, loader, criterion, optimizer):
    device = next(model.parameters()).device
    model.train()
    for module in model.modules():  # keep the running statistics of frozen BatchNorm layers fixed
        if isinstance(module, nn.BatchNorm2d) and not any(p.requires_grad for p in module.parameters()):
            module.eval()
    losses, correct, count = [], 0, 0
    for images, labels in progress(loader):
        images, labels = images.to(device), labels.to(device)
        model.zero_grad()
        logits = model(images)
        loss = criterion(logits, labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach() * len(labels))
        correct += (logits.argmax(-1) == labels).sum().item()
        count += len(labels)
    return torch.stack(losses).sum().item() / count, correct / count
""",
        "ex8_run_pipeline": """
def run_pipeline(model, loader, epochs=3, unfreeze_after=1, n_unfreeze=2, head_lr=1e-3, backbone_lr=1e-4):
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam([{"params": trainable, "lr": head_lr}])
    criterion = nn.CrossEntropyLoss()
    history, unfrozen = [], False
    for epoch in range(epochs):
        if not unfrozen and epoch >= unfreeze_after and n_unfreeze > 0:
            params = list(model.features[-n_unfreeze:].parameters())
            for p in params:
                p.requires_grad_(True)
            optimizer.add_param_group({"params": params, "lr": backbone_lr})
            unfrozen = True
        loss, accuracy = train_one_epoch(model, loader, criterion, optimizer)
        history.append({"epoch": epoch + 1, "loss": loss, "accuracy": accuracy,
                        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
                        "lrs": [group["lr"] for group in optimizer.param_groups]})
    model.eval()
    return history
""",
    },
    "labels_first_global_device_and_bound_helper": {
        # labels drawn before the images (the text fixes no order), the notebook's `device` for the batches,
        # a 1-based epoch loop, and run_pipeline calling train_one_epoch through a name bound when its
        # cell ran (so the grader's stand-in is not the one it calls)
        "ex8_make_synthetic_loader": """
def make_synthetic_loader(num_samples=100, num_classes=5, image_size=224, batch_size=16, seed=0):
    rng = torch.Generator()
    rng.manual_seed(int(seed))
    labels = torch.randint(low=0, high=num_classes, size=(num_samples,), generator=rng)
    images = torch.randn(num_samples, 3, image_size, image_size, generator=rng)
    return DataLoader(TensorDataset(images, labels), batch_size, shuffle=False)
""",
        "ex8_train_one_epoch": """
def train_one_epoch(model, loader, criterion, optimizer):
    model.train(True)
    loss_total = torch.zeros((), dtype=torch.float64)
    right = total = 0
    for batch in loader:
        images, labels = (t.to(device) for t in batch)
        for p in model.parameters():
            p.grad = None
        scores = model(images)
        loss = criterion(scores, labels)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            loss_total += loss.double().cpu() * labels.numel()
            right += int(torch.eq(scores.argmax(dim=-1), labels).sum())
        total += labels.numel()
    return float(loss_total) / total, right / total
""",
        "ex8_run_pipeline": """
_fit_one_epoch = train_one_epoch


def run_pipeline(model, loader, epochs=3, unfreeze_after=1, n_unfreeze=2, head_lr=1e-3, backbone_lr=1e-4):
    head = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(head, lr=head_lr)
    loss_fn = nn.CrossEntropyLoss()
    history = []
    epoch = 1
    while epoch <= epochs:
        if epoch - 1 == unfreeze_after and n_unfreeze:
            chosen = [block for block in model.features][-n_unfreeze:]
            new = [p for block in chosen for p in block.parameters()]
            for p in new:
                p.requires_grad = True
            optimizer.add_param_group(dict(params=new, lr=backbone_lr))
        loss, accuracy = _fit_one_epoch(model, loader, loss_fn, optimizer)
        history.append({"lrs": [g["lr"] for g in optimizer.param_groups], "accuracy": accuracy, "loss": loss,
                        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
                        "epoch": epoch})
        epoch += 1
    model.train(False)
    return history
""",
    },
}

CASE = Case(
    notebook=NAME,
    autograded_points={"ex7": 6, "ex8": 9},  # the rest of each exercise's 10 points: written parts, by hand
    secret_lines_over=40,
    wrong={"ex7": EX7_WRONG, "ex8": EX8_WRONG},
    alternatives={"ex7": EX7_ALTERNATIVES, "ex8": EX8_ALTERNATIVES},
    demo=("ex8_demo", "training demo skipped while grading"),  # the 224×224 pipeline of the statement
)


class TestNotebook(ExerciseSuite, DemoSuite):
    case = CASE


# ----------------------------------------------------------------------------- this notebook's own checks (fast)


def test_written_prompts_ask_what_the_statements_ask():
    cells = {c.get("id"): " ".join(c.source.split()) for c in source_nb(NAME).cells}
    assert "why is the projection back to $N$ channels left linear" in cells["ex7_statement"]
    assert "Use your numbers from part 2 to size the cost." in cells["ex7_statement"]
    question = "not tell you whether unfreezing will help on the real defect photos?"
    assert cells["ex8_written_compare_prompt"].count("?") == 1 and question in cells["ex8_written_compare_prompt"]
    assert question in cells["ex8_statement"]


def test_model_answer_of_part_3_quotes_computed_numbers():
    """Every number in the model answer of exercise 7 part 3 is recomputed here from real layers."""
    import torch.nn as nn
    from torchvision.models import mobilenet_v2
    from torchvision.models.mobilenetv2 import InvertedResidual

    def conv_weights(module):
        return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))

    text = " ".join(next(c.source for c in source_nb(NAME).cells if c.get("id") == "ex7_written_no_projection").split())
    v1 = conv_weights(nn.Sequential(nn.Conv2d(32, 32, 3, groups=32, bias=False), nn.Conv2d(32, 32, 1, bias=False)))
    v2 = conv_weights(InvertedResidual(32, 32, 1, 6))
    stage = conv_weights(InvertedResidual(24, 32, 2, 6))
    basic = conv_weights(
        nn.Sequential(nn.Conv2d(64, 128, 3, 2, 1, bias=False), nn.Conv2d(128, 128, 3, 1, 1, bias=False))
    )
    blocks = [b for b in mobilenet_v2(weights=None).features if isinstance(b, InvertedResidual)]
    quoted = [
        f"32·32 = {32 * 32:,}",
        f"block's {v2:,} ({100 * 32 * 32 / v2:.1f} %)",
        f"{100 * 32 * 32 / v1:.0f} % of the whole MobileNetV1 block ({v1:,})",
        f"24·32 = {24 * 32:,} weights to {stage:,} ({100 * 24 * 32 / stage:.1f} %)",
        f"{sum(b.use_res_connect for b in blocks)} of MobileNetV2's {len(blocks)} inverted residuals",
        f"other {sum(not b.use_res_connect for b in blocks)}",
        f"64·128 = {64 * 128:,} weights next to the {basic:,}",
        f"({100 * 64 * 128 / basic:.1f} %)",
    ]
    from torchvision.models import resnet18, resnet50

    for builder in (resnet18, resnet50):  # projections sit exactly where a block changes the shortcut's shape
        blocks = [b for layer in ("layer1", "layer2", "layer3", "layer4") for b in getattr(builder(), layer)]
        projected = [b for b in blocks if b.downsample is not None]
        changes_shape = [
            b
            for b in blocks
            if b.conv1.stride != (1, 1)
            or b.conv1.in_channels != (b.conv3 if hasattr(b, "conv3") else b.conv2).out_channels
        ]
        assert projected == changes_shape
        quoted.append(
            f"`{builder.__name__}` {'that is ' if builder is resnet18 else ''}{len(projected)} of "
            f"{'its ' if builder is resnet18 else ''}{len(blocks)}"
        )
    missing = [q for q in quoted if q not in text]
    assert not missing, f"the model answer does not quote these computed figures: {missing}"
    assert "because its blocks are deeper" not in text
    assert "exactly where the shortcut's shape changes (stride 2, or a new channel count)" in text


def test_unfreezing_at_the_wrong_time_costs_only_the_schedule_cell():
    for mistake in ("unfreezes_one_epoch_early", "unfreezes_one_epoch_late"):
        assert EX8_WRONG[mistake][1] == {BLOCKS}


# ----------------------------------------------------------------------------- the student's own run (slow)
# The longest exercise test stays in this module, which is handed out early (tests/conftest.py, LONGEST_FIRST).


@pytest.mark.slow
def test_student_run_trains_at_224_and_falls_back_to_random_weights(tmp_path, monkeypatch):
    """What a student sees offline: one line saying the ImageNet weights are unavailable, then the
    224×224 pipeline of the statement with its history and plot. The proxy makes the download
    fail the same way on machines with internet."""
    from torchvision.models import mobilenet_v2

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)  # a student's kernel, not a grading one

    env = {"TORCH_HOME": str(tmp_path), "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    nb, _ = execute_notebook(SOURCE / NAME, env=env, timeout=600)
    text = outputs_text(nb)
    assert len(re.findall(r"ImageNet weights unavailable \(\w+\): using random weights instead", text)) == 1, text
    rows = re.findall(
        r"epoch (\d): loss ([\d.]+), accuracy (\d+)%, ([\d,]+) trainable parameters, "
        r"learning rates \[([^\]]*)\]",
        text,
    )
    assert [r[0] for r in rows] == ["1", "2", "3"], text

    reference = mobilenet_v2(weights=None)
    head = 1280 * 5 + 5
    last_two = sum(p.numel() for block in list(reference.features)[-2:] for p in block.parameters())
    assert [int(r[3].replace(",", "")) for r in rows] == [head, head + last_two, head + last_two]
    assert [r[4] for r in rows] == ["0.001", "0.001, 0.0001", "0.001, 0.0001"]
    plots = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(plots) == 1, "the demo should draw one figure (loss and accuracy per epoch)"
