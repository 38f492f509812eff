"""Runs INSIDE each student kernel (copied next to the kernel's connection file; no repo imports).

nbgrader runs test cells in the student's namespace, so a student can replace ``torch.allclose``,
a ``torch.Tensor`` method, a builtin, or IPython's error handling and turn failing tests into
passing ones. At kernel start (before any cell) this snapshots the objects tests rely on; before
every instructor cell (recognised by the SHA-256 of its source, which the grader passes in) it puts
back every replaced function, class attribute, builtin, module and kernel hook, and logs what it
undid to a JSON-lines report the grader reads. Tests therefore always run against the real
library. (A kernel forked from the zygote adopts the snapshot the zygote took before forking, for
each module and class that is still as it was then: ``prepare``.) It also routes Python warnings
to stdout, so a warning in correct student code does not zero a test cell (nbgrader scores any
stderr output as a failure).

Limits (said in the grader's report): in-process, a determined student can still switch this off
(e.g. unregister the hook); the grader's static scan (tamper.py) flags those attempts.

Its type hints load nothing new: IPython has imported ``__future__`` and ``typing`` before
``exec_lines`` runs this file, and the ``TYPE_CHECKING`` imports never run."""

from __future__ import annotations

import builtins
import hashlib
import json
import operator
import sys
import threading
import types
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, TextIO

    from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult, InteractiveShell

DATA = (int, float, complex, str, bytes, bool, type(None), tuple, list, dict, set, frozenset)
# Builtins that IPython/ipykernel themselves swap in and out around every execution.
JUPYTER_MANAGED = {
    "input",
    "raw_input",
    "get_ipython",
    "exit",
    "quit",
    "display",
    "help",
    "copyright",
    "credits",
    "license",
    "dreload",
    "__IPYTHON__",
}
# Where a kernel forked from the zygote finds the snapshot the zygote took (``prepare``); the guard
# takes it out of sys.modules as it starts.
WARM = "_course_guard_warm"
SHELL_METHODS = (
    "run_cell",
    "run_cell_async",
    "run_ast_nodes",
    "run_code",
    "showtraceback",
    "_showtraceback",
    "showsyntaxerror",
    "transform_cell",
    "should_run_async",
)


def _from_jupyter(obj: object) -> bool:
    """IPython and ipykernel legitimately swap some objects per request (input, _showtraceback…)."""
    func = getattr(obj, "__func__", obj)
    module = getattr(func, "__module__", None) or getattr(type(func), "__module__", "") or ""
    return module.split(".")[0] in ("IPython", "ipykernel", "getpass", "debugpy", "comm")


def _library_rewrap(new: object, old: object) -> bool:
    """A library wrapping its own function (torch.optim patches Optimizer.step with a profiling
    hook on first use): the new object wraps the old one and its code lives in a file, not a cell."""
    seen, inner = 0, new
    while inner is not None and inner is not old and seen < 5:
        inner, seen = getattr(inner, "__wrapped__", None), seen + 1
    if inner is not old:
        return False
    code = getattr(getattr(new, "__func__", new), "__code__", None)
    filename = getattr(code, "co_filename", "") or ""
    return filename.endswith(".py") and "ipykernel_" not in filename and not filename.startswith("<")


def _unchanged(current: Mapping[str, object], entries: dict[str, object]) -> bool:
    """Every snapshot entry still the same object: checked by map() in C, as this runs before every
    test cell over thousands of modules and classes; the slow per-name loop only where this fails."""
    return all(map(operator.is_, map(current.get, entries.keys(), entries.values()), entries.values()))


def _warning_to_stdout(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    sys.stdout.write(warnings.formatwarning(message, category, filename, lineno, line))


class Guard:
    def __init__(self, config: dict[str, Any], shell: InteractiveShell) -> None:
        self.shell = shell
        self.instructor = set(config["instructor_hashes"])
        self.report_path = config["report"]
        self.packages = set(config["protected"])
        warnings.showwarning = _warning_to_stdout  # before the snapshot: it is the version to keep
        self.streams = (sys.stdout, sys.stderr)
        self.builtins = {
            k: v
            for k, v in vars(builtins).items()
            if not isinstance(v, DATA)
            and k not in JUPYTER_MANAGED
            and (not k.startswith("_") or k in ("__import__", "__build_class__"))
        }
        self.modules, self.classes, self.class_keys = {}, {}, {}
        self.adopted = 0  # modules whose snapshot came from the zygote (``_adopt``)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecated module attributes warn when touched
            warm = sys.modules.pop(WARM, None)
            if warm is not None and getattr(warm, "packages", None) == self.packages:
                self._adopt(warm)
            self._snapshot_modules()
            for cls in type(shell).__mro__ + type(getattr(shell, "kernel", None)).__mro__:
                self._snapshot_class(cls)
        warnings.showwarning = _warning_to_stdout
        # names IPython itself puts in the namespace (its own `open`, `get_ipython`, …) are not shadows
        self.ns_initial = {k: v for k, v in shell.user_ns.items() if k in self.builtins}
        self.custom = (shell.custom_exceptions, shell.CustomTB)
        self.transformers = (list(shell.input_transformers_post), list(shell.ast_transformers))
        self.bound = {}  # names instructor cells bound to modules/functions/classes
        self._before = None
        self._pending = []

    def _protected(self, name: str, mod: object) -> bool:
        """The public modules of the protected packages (private internals are not what tests call;
        classes reached through them are still covered, a class is the same object everywhere).
        ``builtins`` and ``sys`` are left to ``_restore``, which checks them name by name: IPython
        itself swaps ``sys.displayhook`` and ``sys.excepthook`` around every execution, so a
        snapshot of ``sys`` would "undo" IPython in every honest notebook."""
        parts = name.split(".")
        return (
            isinstance(mod, types.ModuleType)
            and name not in ("builtins", "sys")
            and parts[0] in self.packages
            and not any(p.startswith("_") for p in parts[1:])
        )

    def _snapshot_modules(self) -> None:
        """Every protected module not in the snapshot yet, with its classes."""
        for name, mod in list(sys.modules.items()):
            if name not in self.modules and self._protected(name, mod):
                self._snapshot_module(name, mod)

    def _adopt(self, warm: types.ModuleType) -> None:
        """Take the zygote's snapshot (``prepare``) where it still holds: a module or class that has the
        same names, and the same objects under them, as then; anything else (ipykernel's start-up, this
        guard's own warning hook) is taken again from what is there now. Checking is a few C-level
        passes; taking is a Python loop over ~70k entries, which each kernel paid for itself."""

        def holds(current: Mapping[str, object], then: dict[str, object]) -> bool:
            # every name, data included: a None that became an object (a shell's _instance) is taken again
            return current.keys() == then.keys() and _unchanged(current, then)

        for cls, entries in warm.classes.items():
            if holds(vars(cls), warm.whole[cls]):
                self.classes[cls], self.class_keys[cls] = entries, warm.class_keys[cls]
            else:
                self._take_class(cls)
        for name, (mod, entries) in warm.modules.items():
            if sys.modules.get(name) is not mod:
                continue
            if holds(vars(mod), warm.whole[name]):
                self.modules[name] = (mod, entries)
                self.adopted += 1
            else:
                self._snapshot_module(name, mod)

    def _snapshot_module(self, name: str, mod: types.ModuleType) -> None:
        entries = {k: v for k, v in vars(mod).items() if not isinstance(v, DATA)}
        self.modules[name] = (mod, entries)
        for v in entries.values():
            if isinstance(v, type) and getattr(v, "__module__", None) == name:
                self._snapshot_class(v)

    def _snapshot_class(self, cls: type) -> None:
        for klass in getattr(cls, "__mro__", (cls,)):
            if klass is not object and klass not in self.classes:
                self._take_class(klass)

    def _take_class(self, klass: type) -> None:
        try:
            self.classes[klass] = {k: v for k, v in vars(klass).items() if not isinstance(v, DATA)}
            self.class_keys[klass] = frozenset(vars(klass))  # a name added later: look closer
        except TypeError:
            pass

    # -- restoring ---------------------------------------------------------------------------
    def _note(self, what: str) -> None:
        self._pending.append(what)

    def restore(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._restore()
        warnings.showwarning = _warning_to_stdout

    def _put_back(self, owner: types.ModuleType | type, label: str, entries: dict[str, object]) -> None:
        """Set every attribute of ``owner`` (a module or class) that was replaced back to its snapshot."""
        current = vars(owner)
        if _unchanged(current, entries):
            return
        for k, v in entries.items():
            if current.get(k, v) is not v:
                if _library_rewrap(current[k], v):
                    entries[k] = current[k]
                    continue
                self._note(f"{label}.{k} was replaced")
                try:
                    setattr(owner, k, v)
                except (TypeError, AttributeError):
                    self._note(f"could not restore {label}.{k}")

    def _restore(self) -> None:
        for name, (mod, entries) in self.modules.items():
            if sys.modules.get(name) is not mod and name in sys.modules:
                sys.modules[name] = mod
                self._note(f"sys.modules[{name!r}] was replaced")
            self._put_back(mod, name, entries)
        for cls, entries in self.classes.items():
            current = vars(cls)
            if _unchanged(current, entries) and current.keys() <= self.class_keys[cls]:
                continue
            self._put_back(cls, f"{cls.__module__}.{cls.__qualname__}", entries)
            for k in [
                k
                for k in current
                if k.startswith("__") and k not in entries and callable(current[k]) and k not in ("__init_subclass__",)
            ]:
                if any(k in vars(base) for base in cls.__mro__[1:]) or k in ("__eq__", "__bool__"):
                    self._note(f"{cls.__qualname__}.{k} was added")
                    try:
                        delattr(cls, k)
                    except (TypeError, AttributeError):
                        pass
        current = vars(builtins)
        for k, v in self.builtins.items():
            if current.get(k) is not v and not _from_jupyter(current.get(k)):
                self._note(f"builtins.{k} was replaced")
                setattr(builtins, k, v)
        ns = self.shell.user_ns
        if ns.get("__builtins__", builtins) is not builtins:
            ns["__builtins__"] = builtins
            self._note("__builtins__ was replaced")
        for k, v in self.builtins.items():
            if (
                k in ns
                and ns[k] is not v
                and ns[k] is not self.ns_initial.get(k)
                and callable(ns[k])
                and not k.startswith("_")
                and not _from_jupyter(ns[k])
            ):
                self._note(f"the builtin {k} was shadowed by a notebook global")
                del ns[k]
        for k, v in self.bound.items():
            if ns.get(k, v) is not v and (callable(ns.get(k)) or isinstance(ns.get(k), types.ModuleType)):
                self._note(f"{k} (set up by the instructor's cell) was rebound")
                ns[k] = v
        for name in SHELL_METHODS:
            if name in vars(self.shell) and not _from_jupyter(vars(self.shell)[name]):
                self._note(f"the kernel's {name} was overridden")
                delattr(self.shell, name)
        if (self.shell.custom_exceptions, self.shell.CustomTB) != self.custom:
            self._note("a custom exception handler was installed")
            self.shell.custom_exceptions, self.shell.CustomTB = self.custom
        if (
            list(self.shell.input_transformers_post) != self.transformers[0]
            or list(self.shell.ast_transformers) != self.transformers[1]
        ):
            self._note("input/AST transformers were changed")
            self.shell.input_transformers_post[:] = self.transformers[0]
            self.shell.ast_transformers[:] = self.transformers[1]
        if (sys.gettrace() is not None and not _from_jupyter(sys.gettrace())) or sys.getprofile() is not None:
            self._note("a trace/profile function was installed")
        sys.settrace(None)
        sys.setprofile(None)
        threading.settrace(None)
        threading.setprofile(None)
        if (sys.stdout, sys.stderr) != self.streams:
            self._note("sys.stdout/sys.stderr were replaced")
            sys.stdout, sys.stderr = self.streams
        warnings.showwarning = _warning_to_stdout

    def _flush(self, cell_hash: str) -> None:
        if not self._pending:
            return
        try:
            with open(self.report_path, "a") as f:
                for what in dict.fromkeys(self._pending):
                    f.write(json.dumps({"cell": cell_hash[:12], "undone": what}) + "\n")
        except OSError:
            pass
        self._pending = []

    # -- IPython events ----------------------------------------------------------------------
    def pre_run_cell(self, info: ExecutionInfo) -> None:
        digest = hashlib.sha256((info.raw_cell or "").encode()).hexdigest()
        self._current = digest if digest in self.instructor else None
        if self._current is None:
            return
        self.restore()
        self._flush(digest)
        self._before = {k: id(v) for k, v in self.shell.user_ns.items()}

    def post_run_cell(self, result: ExecutionResult) -> None:
        if getattr(self, "_current", None) is None or self._before is None:
            return
        for k, v in self.shell.user_ns.items():
            if (
                not k.startswith("_")
                and self._before.get(k) != id(v)
                and (isinstance(v, (types.ModuleType, types.FunctionType, type)))
            ):
                self.bound[k] = v
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._snapshot_modules()  # modules an instructor cell imported just now
        self._before = None


def prepare(protected: list[str]) -> None:
    """In the zygote, before it forks any kernel: snapshot the protected modules once, for each kernel
    forked from it to adopt (``Guard._adopt``) instead of taking ~0.1-0.25 s to snapshot them itself.
    Reads attributes only: no thread, no torch op."""
    warm = types.ModuleType(WARM)
    guard = Guard.__new__(Guard)  # only its snapshot half: there is no shell yet
    guard.packages, guard.modules, guard.classes, guard.class_keys = set(protected), {}, {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        guard._snapshot_modules()
    warm.packages, warm.modules = guard.packages, guard.modules
    warm.classes, warm.class_keys = guard.classes, guard.class_keys
    # each module's and class's whole namespace as it is now, what a kernel checks before adopting it
    warm.whole = {name: dict(vars(mod)) for name, (mod, _) in guard.modules.items()}
    warm.whole.update((cls, dict(vars(cls))) for cls in guard.classes)
    sys.modules[WARM] = warm


def install(config_path: str) -> Guard:
    from IPython import get_ipython

    with open(config_path) as f:
        config = json.load(f)
    for name in config.get("preimport", []):
        try:
            __import__(name)
        except Exception:  # noqa: BLE001 - a missing optional package is not the guard's business
            pass
    shell = get_ipython()
    guard = Guard(config, shell)
    shell.events.register("pre_run_cell", guard.pre_run_cell)
    shell.events.register("post_run_cell", guard.post_run_cell)
    return guard
