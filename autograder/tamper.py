"""Static look at a student's code for attempts to change what the tests rely on.

Test cells run in the student's namespace (nbgrader has no other), so a student can replace
``torch.allclose``, a ``torch.Tensor`` method or a builtin and make failing tests pass. The
in-kernel guard (kernel_guard.py) undoes such changes before every test cell; this scan catches
the attempt itself, including ways to switch the guard off, so a human looks at it.
  tamper     — a library/builtin object is replaced, or the kernel machinery is touched
               (the notebook's autograded score is set to 0 pending review)
  review     — unusual but possibly innocent (eval/exec, dunder comparison overrides)"""

from __future__ import annotations

import ast

from .cells import python_source

# The packages whose objects the tests rely on: the one list for both defences. The static scan
# flags a write into any of them; the in-kernel guard (kernel_guard.py, handed this list by
# grading.py) snapshots their public modules and puts back what changed before every test cell
# (builtins and sys it checks name by name: IPython swaps sys.displayhook per execution);
# grading.build_template pre-imports those of them an instructor cell imports, so the snapshot
# holds them before the student's first cell. It is the union of the two lists each side kept:
# what the tests call (torch, numpy, math, the stdlib helpers: functools, operator, collections,
# random, inspect, types), what reports a result (unittest, pytest, warnings, sys) and the
# kernel's own machinery (IPython, ipykernel, nbgrader). A package missing on one side was a hole
# there (e.g. `collections.OrderedDict = ...` passed the scan; `inspect.signature = ...` was
# never undone), not a deliberate difference.
PROTECTED = (
    "torch",
    "torchvision",
    "math",
    "numpy",
    "builtins",
    "random",
    "operator",
    "functools",
    "collections",
    "IPython",
    "ipykernel",
    "sys",
    "nbgrader",
    "unittest",
    "pytest",
    "warnings",
    "inspect",
    "types",
)
# Legitimate configuration writes into a protected module.
ALLOWED_WRITES = ("torch.backends.",)
# Builtins tests call; a callable with one of these names in the notebook's globals shadows the real one.
CRITICAL_BUILTINS = {
    "isinstance",
    "issubclass",
    "type",
    "len",
    "abs",
    "all",
    "any",
    "sum",
    "min",
    "max",
    "round",
    "float",
    "int",
    "str",
    "bool",
    "list",
    "tuple",
    "dict",
    "set",
    "range",
    "zip",
    "enumerate",
    "sorted",
    "repr",
    "callable",
    "hasattr",
    "getattr",
    "print",
    "iter",
    "next",
    "map",
    "filter",
    "divmod",
    "pow",
    "hash",
    "id",
    "vars",
    "dir",
    "format",
    "object",
    "super",
    "AssertionError",
    "Exception",
    "BaseException",
}
KERNEL_HOOKS = {
    "set_custom_exc",
    "showtraceback",
    "_showtraceback",
    "run_cell",
    "run_cell_async",
    "events",
    "input_transformers_post",
    "input_transformers_cleanup",
    "ast_transformers",
    "settrace",
    "setprofile",
    "excepthook",
    "CustomTB",
    "custom_exceptions",
}
SUSPICIOUS_CALLS = {"eval", "exec", "compile", "__import__"}
COMPARISON_DUNDERS = {"__eq__", "__ne__", "__bool__", "__float__", "__index__", "__instancecheck__"}


def _dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    if isinstance(node, ast.Subscript):
        inner = _dotted(node.value)
        return f"{inner}[]" + ("." + ".".join(reversed(parts)) if parts else "") if inner else None
    return None


class _Scan(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases = {
            "torch": "torch",
            "nn": "torch.nn",
            "F": "torch.nn.functional",
            "np": "numpy",
            "math": "math",
            "builtins": "builtins",
            "sys": "sys",
        }
        self.found: list[tuple[str, str]] = []
        self.depth = 0

    def _module_path(self, dotted: str | None) -> str | None:
        if not dotted:
            return None
        head, _, rest = dotted.partition(".")
        real = self.aliases.get(head.rstrip("[]"))
        if real and real.split(".")[0] in PROTECTED:
            return real + ("." + rest if rest else "")
        return None

    def _flag(self, severity: str, node: ast.AST, what: str) -> None:
        self.found.append((severity, f"line {getattr(node, 'lineno', '?')}: {what}"))

    def visit_Import(self, node: ast.Import) -> None:
        for a in node.names:
            self.aliases[(a.asname or a.name).split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            if a.name.split(".")[0] in ("ctypes", "gc"):
                self._flag("review", node, f"imports {a.name} (can reach interpreter internals)")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for a in node.names:
            if node.module:
                self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        if (node.module or "").split(".")[0] in ("ctypes", "gc"):
            self._flag("review", node, f"imports from {node.module}")

    def _check_target(self, target: ast.expr, node: ast.stmt) -> None:
        if isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self._check_target(t, node)
            return
        if isinstance(target, ast.Name):
            value = getattr(node, "value", None)
            # only a callable stand-in can make a test pass; `sum = 0` can only hurt the student
            if (
                self.depth == 0
                and target.id in CRITICAL_BUILTINS
                and isinstance(value, (ast.Lambda, ast.Name, ast.Attribute))
            ):
                self._flag("tamper", node, f"rebinds the builtin `{target.id}` for the whole notebook")
            if target.id == "__builtins__":
                self._flag("tamper", node, "replaces __builtins__")
            return
        dotted = _dotted(target)
        path = self._module_path(dotted)
        if path and not path.startswith(ALLOWED_WRITES) and "." in path:
            self._flag("tamper", node, f"replaces `{dotted}` ({path}), which the tests rely on")
        elif dotted and dotted.split(".")[-1] in KERNEL_HOOKS:
            self._flag("tamper", node, f"changes the kernel hook `{dotted}`")

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            self._check_target(t, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_target(node.target, node)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_target(node.target, node)
        self.generic_visit(node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            self._check_target(t, node)

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Lambda) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self.depth == 0 and node.name in CRITICAL_BUILTINS:
            self._flag("tamper", node, f"defines a function named like the builtin `{node.name}`")
        if node.name in COMPARISON_DUNDERS:
            self._flag("review", node, f"defines {node.name} (a result that compares equal to anything?)")
        self._scoped(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if self.depth == 0 and node.name in CRITICAL_BUILTINS:
            self._flag("tamper", node, f"defines a class named like the builtin `{node.name}`")
        self._scoped(node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scoped(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = _dotted(node.func) or ""
        name = node.func.attr if isinstance(node.func, ast.Attribute) else func.split(".")[-1]
        func = func or name
        if name in ("setattr", "delattr") and node.args:
            target = self._module_path(_dotted(node.args[0]))
            if target or (_dotted(node.args[0]) or "").split(".")[0] in self.aliases:
                self._flag("tamper", node, f"{name}() on `{_dotted(node.args[0])}`, which the tests rely on")
        if name in KERNEL_HOOKS or func.endswith(("events.unregister", "events.register")):
            self._flag("tamper", node, f"calls `{func}` (kernel machinery the grader relies on)")
        if func in ("get_ipython", "IPython.get_ipython"):
            self._flag("review", node, "uses get_ipython() (kernel machinery)")
        if isinstance(node.func, ast.Name) and node.func.id in SUSPICIOUS_CALLS:  # not model.eval()
            self._flag("review", node, f"calls {func}() (code the grader cannot read)")
        if func.endswith("sys.modules.__setitem__") or func.endswith("update") and "sys.modules" in func:
            self._flag("tamper", node, "rewrites sys.modules")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            dotted = _dotted(node.value) or ""
            path = self._module_path(dotted)
            if (
                dotted.endswith("sys.modules")
                or (path or "").endswith("sys.modules")
                or dotted in ("__builtins__", "vars(builtins)")
            ):
                self._flag("tamper", node, f"writes into `{dotted}`")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id == "__builtins__" and isinstance(node.ctx, ast.Load):
            self._flag("review", node, "reads __builtins__")


def scan(source: str) -> list[tuple[str, str]]:
    """[(severity, message)] for one cell's code; unparsable code yields nothing (it cannot run)."""
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return []
    v = _Scan()
    v.visit(tree)
    seen, out = set(), []
    for item in v.found:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out
