"""Probe-side helpers: shipped into the student's kernel as source (``Check.helpers``).

Each is a self-contained function (imports inside) that describes or exercises a module and returns
plain data. None holds an expected value or decides anything."""


def fill_module(module, seed):
    """Give every floating parameter and buffer seeded values (variances positive); return their table.

    The table ``[[name, shape, dtype], ...]`` lets the grader regenerate the same values
    (``common.filled_values``) instead of receiving them."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    table = []
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if not tensor.is_floating_point():
                continue
            values = torch.randn(tuple(tensor.shape), generator=gen, dtype=torch.float64)
            if name.endswith("running_var"):
                values = values.abs() + 0.5
            tensor.copy_(values.to(dtype=tensor.dtype, device=tensor.device))
            table.append([name, [int(s) for s in tensor.shape], str(tensor.dtype).replace("torch.", "")])
    return table


def module_table(module):
    """Every submodule in registration order: [name, type name, nn base class, config, own parameters]."""
    import torch.nn as nn

    fields = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
              "in_features", "out_features", "num_features", "eps", "affine", "p", "output_size",
              "padding_mode", "min_val", "max_val")
    rows = []
    for name, sub in module.named_modules():
        base = next((c.__name__ for c in type(sub).__mro__ if c.__module__.startswith("torch.nn")), "")
        config = {}
        for f in fields:
            if f in vars(sub) or hasattr(type(sub), f):
                value = getattr(sub, f, None)
                if isinstance(value, (int, float, str, bool, tuple)) or value is None:
                    config[f] = list(value) if isinstance(value, tuple) else value
        if isinstance(sub, (nn.Conv2d, nn.Linear)):
            config["bias"] = sub.bias is not None
        own = {n: [int(s) for s in p.shape] for n, p in sub.named_parameters(recurse=False)}
        rows.append([name, type(sub).__name__, base, config, own])
    return rows


def run_traced(module, x):
    """``module(x)`` with a forward hook on every submodule: (output, calls in the order they ran).

    A call is [name, input shape, output shape]; a module used twice appears twice."""
    import torch

    calls, handles = [], []
    names = {id(m): n for n, m in module.named_modules()}

    def shape(value):
        return [int(s) for s in value.shape] if isinstance(value, torch.Tensor) else None

    def hook(sub, inputs, output):
        calls.append([names.get(id(sub), "?"), shape(inputs[0]) if inputs else None, shape(output)])

    for sub in module.modules():
        handles.append(sub.register_forward_hook(hook))
    try:
        out = module(x)
    finally:
        for h in handles:
            h.remove()
    return out, calls
