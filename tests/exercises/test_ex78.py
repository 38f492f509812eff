"""Exercises 7-8 (inverted residuals, the fine-tuning pipeline), graded by real nbgrader in one
temporary course.

Every variant is a student who submits only this notebook: the reference answers, the untouched
release, wrong answers (small edits of the reference, each aimed at one test cell) and correct
answers written differently. Exercises 7 and 8 share no code, so most wrong-answer runs carry one
mistake for each exercise and check that exactly the intended cells lost points."""
from __future__ import annotations

import re
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

NAME = "ex78_inverted_residuals_pipeline.ipynb"
edit = partial(submissions.edit, NAME)
submission = partial(submissions.submission, NAME)

# (answers, the autograded cells that must lose points) for exercise 7 ...
EX7_WRONG = {
    "counts_batchnorm": (
        edit("ex7_mv1_block_params", ("return k * k * m + m * n", "return k * k * m + m * n + 2 * m + 2 * n")),
        {"ex7_test_mv1_params", "ex7_test_answers_32"}),
    "expansion_of_the_output": (
        edit("ex7_mv2_block_params", ("hidden = expansion * m", "hidden = expansion * n")),
        {"ex7_test_mv2_params", "ex7_test_mv2_torchvision"}),
    "expansion_conv_kept_for_t_1": (
        edit("ex7_mv2_block_params", ("expand = m * hidden if expansion != 1 else 0", "expand = m * hidden")),
        {"ex7_test_mv2_torchvision"}),
    "skip_when_either_matches": (
        edit("ex7_uses_identity_skip", ("stride == 1 and in_ch == out_ch", "stride == 1 or in_ch == out_ch")),
        {"ex7_test_identity_skip"}),
    "skip_ignores_the_stride": (
        edit("ex7_uses_identity_skip", ("stride == 1 and in_ch == out_ch", "in_ch == out_ch")),
        {"ex7_test_identity_skip"}),
    "hard_coded_wrong_total": (
        edit("ex7_answers_32", ("MV2_PARAMS_32 = mv2_block_params(32, 32, expansion=6)", "MV2_PARAMS_32 = 13_888")),
        {"ex7_test_answers_32"}),
}

ADD_GROUP = 'optimizer.add_param_group({"params": unfrozen, "lr": backbone_lr})'

# ... and for exercise 8.
EX8_WRONG = {
    "unfreezes_the_first_blocks": (
        edit("ex8_run_pipeline", ("list(model.features)[-n_unfreeze:]", "list(model.features)[:n_unfreeze]")),
        {"ex8_test_pipeline_blocks", "ex8_test_pipeline_optimizer", "ex8_test_pipeline_history"}),
    "one_learning_rate_for_all": (
        edit("ex8_run_pipeline", (ADD_GROUP, 'optimizer.add_param_group({"params": unfrozen})')),
        {"ex8_test_pipeline_optimizer"}),
    "optimizer_never_told": (
        edit("ex8_run_pipeline", (ADD_GROUP, "pass")),
        {"ex8_test_pipeline_blocks", "ex8_test_pipeline_optimizer"}),
    "new_optimizer_after_unfreezing": (
        edit("ex8_run_pipeline", (ADD_GROUP, 'optimizer = torch.optim.Adam([{"params": model.classifier.parameters()}, '
                                             '{"params": unfrozen, "lr": backbone_lr}], lr=head_lr)')),
        {"ex8_test_pipeline_optimizer"}),
    "unfreezes_one_epoch_early": (
        edit("ex8_run_pipeline", ("if epoch == unfreeze_after and", "if epoch + 1 == unfreeze_after and")),
        {"ex8_test_pipeline_blocks", "ex8_test_pipeline_optimizer", "ex8_test_pipeline_history"}),
    "no_zero_grad": (
        edit("ex8_train_one_epoch", ("        optimizer.zero_grad()\n", "")),
        {"ex8_test_no_grad_accumulation"}),
    "accuracy_of_the_last_batch": (
        edit("ex8_train_one_epoch", ("correct += (logits", "correct = (logits"),
             ("return total_loss / seen, correct / seen", "return total_loss / seen, correct / labels.size(0)")),
        {"ex8_test_epoch_metrics"}),
    "mean_of_batch_means": (
        edit("ex8_train_one_epoch", ("total_loss += loss.item() * labels.size(0)", "total_loss += loss.item()"),
             ("return total_loss / seen,", "return total_loss / len(loader),")),
        {"ex8_test_epoch_metrics"}),
    "never_switches_to_train_mode": (
        edit("ex8_train_one_epoch", ("    model.train()\n", "")),
        {"ex8_test_epoch_metrics"}),
    "eval_mode_never_restored": (
        edit("ex8_run_pipeline", ("    model.eval()\n", "")),
        {"ex8_test_pipeline_history"}),
    "loader_shuffles": (
        edit("ex8_make_synthetic_loader", ("shuffle=False", "shuffle=True")),
        {"ex8_test_loader"}),
}

WRONG_RUNS = [pytest.param(ex7, ex8, id=f"{ex7 or '-'}+{ex8}")
              for ex7, ex8 in zip_longest(EX7_WRONG, EX8_WRONG)]

EX7_ALTERNATIVES = {
    "layer_table": {
        "ex7_mv1_block_params": '''
def mv1_block_params(m, n, k=3):
    depthwise = m * 1 * k * k  # (out channels, in channels per group, k, k)
    pointwise = n * m
    return depthwise + pointwise
''',
        "ex7_mv2_block_params": '''
def mv2_block_params(m, n, expansion=6, k=3):
    wide = m * expansion
    layers = [] if expansion == 1 else [(m, wide, 1, 1)]
    layers += [(wide, wide, k, wide), (wide, n, 1, 1)]
    return sum(c_out * (c_in // groups) * size * size for c_in, c_out, size, groups in layers)
''',
        "ex7_answers_32": "MV1_PARAMS_32, MV2_PARAMS_32 = mv1_block_params(32, 32), mv2_block_params(32, 32)\n",
        "ex7_uses_identity_skip": '''
def uses_identity_skip(in_ch, out_ch, stride):
    return bool(in_ch == out_ch and stride == 1)
''',
    },
    "real_layers": {
        "ex7_mv1_block_params": '''
def mv1_block_params(m, n, k=3):
    layers = [nn.Conv2d(m, m, k, groups=m, bias=False), nn.Conv2d(m, n, 1, bias=False)]
    return sum(layer.weight.numel() for layer in layers)
''',
        "ex7_mv2_block_params": '''
def mv2_block_params(m, n, expansion=6, k=3):
    hidden = m * expansion
    layers = [nn.Conv2d(hidden, hidden, k, groups=hidden, bias=False), nn.Conv2d(hidden, n, 1, bias=False)]
    if expansion > 1:
        layers.append(nn.Conv2d(m, hidden, 1, bias=False))
    return sum(layer.weight.numel() for layer in layers)
''',
        "ex7_uses_identity_skip": '''
def uses_identity_skip(in_ch, out_ch, stride):
    return (in_ch, stride) == (out_ch, 1)
''',
    },
}

EX8_ALTERNATIVES = {
    "zero_grad_after_step_and_dataset_length": {
        "ex8_make_synthetic_loader": '''
def make_synthetic_loader(num_samples=100, num_classes=5, image_size=224, batch_size=16, seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    x = torch.randn((num_samples, 3, image_size, image_size), generator=g)
    y = torch.randint(num_classes, (num_samples,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=batch_size)
''',
        "ex8_train_one_epoch": '''
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
''',
        "ex8_run_pipeline": '''
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
''',
    },
    "frozen_batchnorm_in_eval_and_model_zero_grad": {
        "ex8_make_synthetic_loader": '''
def make_synthetic_loader(num_samples=100, num_classes=5, image_size=224, batch_size=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    dataset = TensorDataset(torch.randn(num_samples, 3, image_size, image_size, generator=gen),
                            torch.randint(0, num_classes, size=(num_samples,), generator=gen, dtype=torch.long))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=False)
''',
        "ex8_train_one_epoch": '''
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
''',
        "ex8_run_pipeline": '''
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
''',
    },
}

ALTERNATIVE_RUNS = [pytest.param(ex7, ex8, id=f"{ex7}+{ex8}")
                    for ex7, ex8 in zip(EX7_ALTERNATIVES, EX8_ALTERNATIVES, strict=True)]


@pytest.fixture(scope="module")
def grading(tmp_path_factory) -> GradingRun:
    return GradingRun(tmp_path_factory.mktemp("ex78_course"))


# ----------------------------------------------------------------------------- static checks (fast)

def test_each_exercise_is_worth_ten_points():
    assert submissions.points_per_exercise(source_nb(NAME)) == {"ex7": 10, "ex8": 10}


def test_graded_cells_follow_the_naming_and_have_stable_ids():
    assert not submissions.naming_problems(source_nb(NAME), "78")


def test_release_holds_no_solution_and_no_hidden_test():
    secrets = submissions.secret_lines(source_nb(NAME))
    assert len(secrets) > 40, "too few distinctive lines found: the check would be vacuous"
    assert not submissions.leaks(release_nb(NAME), secrets), "release/ shows solution or hidden-test text"
    assert not submissions.stub_problems(release_nb(NAME)), "release/ answer cells must be blank stubs"


def test_the_training_demo_is_skipped_while_grading():
    demo = next(c for c in source_nb(NAME).cells if c.get("id") == "ex8_demo")
    assert demo.source.splitlines()[2] == "if GRADING:", "the 224×224 demo must be guarded by GRADING"
    setup = next(c for c in source_nb(NAME).cells if c.get("id") == "ex78_setup")
    assert 'GRADING = bool(os.environ.get("NBGRADER_EXECUTION"))' in setup.source


# ----------------------------------------------------------------------------- nbgrader runs (slow)

@pytest.mark.slow
def test_reference_answers_score_full_marks(grading):
    scores = grading.grade("reference", NAME, reference_submission(NAME))
    graded = autograded_ids(NAME)
    assert graded <= set(scores)
    assert not lost({g: scores[g] for g in graded}), f"reference lost points: {scores}"
    assert sum(scores[g][1] for g in graded) == 15  # 6 (exercise 7) + 9 (exercise 8); 5 written points by hand
    autograded = nbformat.read(str(grading.course.root / "autograded" / "reference" / ASSIGNMENT / NAME), as_version=4)
    assert "training demo skipped while grading" in outputs_text(autograded), "grading must not train at 224×224"


@pytest.mark.slow
def test_untouched_release_scores_zero_without_crashing(grading):
    scores = grading.grade("blank", NAME, release_nb(NAME))
    assert autograded_ids(NAME) <= set(scores), "every test cell must be graded even when nothing is answered"
    assert total(scores)[0] == 0, f"blank notebook scored points: {scores}"


@pytest.mark.slow
@pytest.mark.parametrize("ex7, ex8", WRONG_RUNS)
def test_wrong_answers_lose_points_on_their_own_cells(grading, ex7, ex8):
    answers, expected = dict(EX8_WRONG[ex8][0]), set(EX8_WRONG[ex8][1])
    if ex7:
        answers.update(EX7_WRONG[ex7][0])
        expected |= EX7_WRONG[ex7][1]
    scores = grading.grade(f"wrong-{ex8}", NAME, submission(answers))
    assert lost(scores) & autograded_ids(NAME) == expected, (
        f"{ex7} + {ex8}: lost {sorted(lost(scores) & autograded_ids(NAME))}, expected {sorted(expected)}")


@pytest.mark.slow
@pytest.mark.parametrize("ex7, ex8", ALTERNATIVE_RUNS)
def test_differently_written_correct_answers_score_full_marks(grading, ex7, ex8):
    answers = {**EX7_ALTERNATIVES[ex7], **EX8_ALTERNATIVES[ex8]}
    scores = grading.grade(f"alt-{ex8}", NAME, submission(answers))
    assert not lost(scores) & autograded_ids(NAME), f"{ex7} + {ex8} lost points: {scores}"


# ----------------------------------------------------------------------------- the student's own run (slow)

@pytest.mark.slow
def test_student_run_trains_at_224_and_falls_back_to_random_weights(tmp_path):
    """What a student sees offline: one line saying the ImageNet weights are unavailable, then the
    224×224 pipeline of the statement with its history and plot. The proxy makes the download
    fail the same way on machines with internet."""
    from torchvision.models import mobilenet_v2

    env = {"TORCH_HOME": str(tmp_path), "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    nb, _ = execute_notebook(SOURCE / NAME, env=env, timeout=600)
    text = outputs_text(nb)
    assert len(re.findall(r"ImageNet weights unavailable \(\w+\): using random weights instead", text)) == 1, text
    rows = re.findall(r"epoch (\d): loss ([\d.]+), accuracy (\d+)%, ([\d,]+) trainable parameters, "
                      r"learning rates \[([^\]]*)\]", text)
    assert [r[0] for r in rows] == ["1", "2", "3"], text

    reference = mobilenet_v2(weights=None)
    head = 1280 * 5 + 5
    last_two = sum(p.numel() for block in list(reference.features)[-2:] for p in block.parameters())
    assert [int(r[3].replace(",", "")) for r in rows] == [head, head + last_two, head + last_two]
    assert [r[4] for r in rows] == ["0.001", "0.001, 0.0001", "0.001, 0.0001"]
    plots = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(plots) == 1, "the demo should draw one figure (loss and accuracy per epoch)"
