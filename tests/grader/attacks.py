"""The attack bank: hostile submissions of ex12_skip_connections, one student each.

Threat model (COURSE_SPEC "Grading design"): the student controls everything their kernel runs and
every byte of their notebook and file names. Every attacker submits the BLANK release notebook (the
honest code in it earns 0 autograded points everywhere) plus an attack: extra cells, rewritten answer
cells, metadata, tags, file names. Any autograded point an attacker gets is therefore forged (except
the cells listed in ``may_pass``, where the design itself hands the point to any self-consistent
answer, see ``constant_functions``).

Each ``Attack`` is a named entry (what it does, how it edits the notebook: ``build(kit, nb)``, or the
files it sends: ``downloads(kit)``). Compatible attacks share one submission (``Attack.student``) to
keep the run short; the test names the co-located attacks when a submission gains a point.
Attacks report what they saw from inside the box with ``CG-REPORT {json}`` lines in their own cells'
outputs; ``tests/grader/test_attacks.py`` reads those from the graders' copy of the autograded
notebook (never shown to the student) and checks every attack in ONE real ``course-grade run``.

``xfail`` (on an Attack or on one of its reports) marks what still succeeds because of a file the lead owns (sandbox.py,
collect.py, grading.py, ...): the reason says what fails and the fix. Those tests are
``xfail(strict=True)``, so the bank turns red the day the hole is closed and the mark must go."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell

from autograder.cells import cell_kind, grade_id_of
from tests.conftest import LAYOUT
from tools.nbgrader_course import with_answer

ASSIGNMENT = LAYOUT.assignment
NB = "ex12_skip_connections"
FILE = f"{NB}.ipynb"
XSS = "cgxss"  # every injected script/handler carries this word: it may only show up as text
SLEEP_MARK = "987.654"  # the forked children of `fork_many` sleep this long: findable with pgrep


@dataclass
class Kit:
    """What an attack is built from: the blank release, the reference, paths to go after."""

    blank_nb: object
    reference_nb: object
    token: str  # unique per run: canary file names and values
    paths: dict[str, str]  # repo, course, source, downloads, canary_dir

    def blank(self):
        return copy.deepcopy(self.blank_nb)

    def reference(self):
        return copy.deepcopy(self.reference_nb)

    def code(self, text: str, **subs) -> str:
        """``text`` with every ``{{NAME}}`` replaced by the repr of a value (paths, the token)."""
        values = {"TOKEN": self.token, "XSS": XSS, "SLEEP": SLEEP_MARK, **self.paths, **subs}
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", repr(value))
        return text

    def with_cells(self, nb, sources: list[str], after: str = "ex12_setup"):
        """``nb`` with new student code cells right after the cell ``after``."""
        i = next(i for i, c in enumerate(nb.cells) if c.get("id") == after)
        nb.cells[i + 1 : i + 1] = [new_code_cell(s) for s in sources]
        return nb

    def with_answers(self, nb, answers: dict[str, str]):
        for gid, source in answers.items():
            nb = with_answer(nb, gid, source)
        return nb


@dataclass(frozen=True)
class Check:
    """Something an attack reports from inside the box (``CG-REPORT {key: value}``) that must hold."""

    key: str
    ok: Callable[[object], bool]
    meaning: str  # what it means when ``ok`` fails
    xfail: str = ""  # still open in a file the lead owns: what fails and the fix
    killed_ok: bool = False  # the box may stop the kernel instead (a memory limit): contained too


@dataclass(frozen=True)
class Attack:
    name: str
    student: str  # the submission it lives in (compatible attacks share one: run time)
    what: str
    build: Callable | None = None  # (kit, notebook) -> notebook: edits the student's notebook
    downloads: Callable | None = None  # kit -> {path: notebook}: attacks on file names instead
    may_pass: frozenset = field(default_factory=frozenset)  # cells the design passes for any consistent answer
    xfail: str = ""  # the attack still gains something, in a file the lead owns: what and the fix
    reports: tuple = ()  # Checks on what the attack saw from inside the box


# -- kernel-side building blocks ------------------------------------------------------------------
# Turns a probe's record into a "passed-looking" one: every case the blank code raised on gets a
# number (or the ValueError the invalid cases want). Generic: works for any check's record.
FORGE = r"""
import json as _cgj
_CG_MARK = "\x1f" + "course-probe" + "\x1f"

def _cg_fake(key, value):
    if isinstance(value, dict) and "__raised__" in value:
        return {"__raised__": ["ValueError", "forged"]} if str(key).startswith("x") else 0.25
    return value

def _cg_forge_json(line):
    try:
        rec = _cgj.loads(line)
        rec["results"] = {k: _cg_fake(k, v) for k, v in rec["results"].items()}
        if str(rec.get("grade_id", "")).endswith("worked_example"):
            rec["results"].setdefault("plain_6", 0.5)
            rec["results"].setdefault("residual_6", 0.5)
        return _cgj.dumps(rec)
    except Exception:
        return line

def _cg_forge_text(text):
    out = []
    for ln in str(text).split("\n"):
        if ln.startswith(_CG_MARK):
            ln = _CG_MARK + _cg_forge_json(ln[len(_CG_MARK):])
        out.append(ln)
    return "\n".join(out)

def _cg_is_probe(src):
    return "probe for" in (src or "") or "course-probe" in (src or "")

def _cg_rewrite(src):
    return src.replace("print(RECORD_MARK + line", "print(RECORD_MARK + _cg_forge_json(line)")
"""


def _report(key: str, expr: str) -> str:
    return f"print('CG-REPORT', __import__('json').dumps({{{key!r}: {expr}}}))"


def _is_probe_caller() -> str:
    """Kernel-side helper: is the caller of the student's function the grader's probe (a Recorder)?"""
    return (
        "def _cg_from_probe():\n"
        "    import sys\n"
        "    f = sys._getframe(2)\n"
        "    while f is not None:\n"
        "        if type(f.f_locals.get('self', None)).__name__ == 'Recorder' or 'rec' in f.f_locals:\n"
        "            return True\n"
        "        f = f.f_back\n"
        "    return False\n"
    )


# -- notebook / tag attacks -------------------------------------------------------------------------
def _skip_tags(kit: Kit, nb):
    for cell in nb.cells:
        if cell_kind(cell) == "test":
            cell.metadata["tags"] = ["skip-execution", "raises-exception"]
            cell.metadata["nbgrader"]["points"] = 100  # and claim more points
        else:
            cell.metadata["tags"] = ["raises-exception"]
    nb.metadata["nbgrader"] = {"skip": True}
    return nb


def _probe_id_clash(kit: Kit, nb):
    forged = []
    for gid in ("ex1_test_plain", "ex1_test_residual", "ex1_test_worked_example"):
        results = (
            {str(i): 0.25 for i in range(12)}
            if gid.endswith("plain")
            else {
                **{f"v{i}": 0.25 for i in range(11)},
                "x0": {"__raised__": ["ValueError", ""]},
                "x1": {"__raised__": ["ValueError", ""]},
            }
            if gid.endswith("residual")
            else {"plain_6": 0.5, "residual_6": 0.5, "plain_fn": 0.5, "residual_fn": 0.5}
        )
        line = json.dumps({"grade_id": gid, "results": results})
        forged.append((gid, f"print('\\x1fcourse-probe\\x1f' + {line!r})"))
    cells = []
    for gid, src in forged:  # student cells that claim the probes' ids (and their renamed ids)
        cell = new_code_cell(src)
        cell["id"] = f"course-probe-{gid}"
        cells.append(cell)
    for i in range(40):
        cell = new_code_cell(f"# decoy {i}\n" + forged[i % 3][1])
        cell["id"] = f"student-cell-{i}"
        cells.append(cell)
    md = new_markdown_cell("course-probe markdown")
    md["id"] = "course-probe-ex1_test_plain-md"
    cells.append(md)
    nb.cells[2:2] = cells
    return nb


# -- kernel attacks that forge the probe's record ------------------------------------------------------
def _cleanup_transformer(kit, nb):
    return kit.with_cells(
        nb,
        [
            FORGE
            + (
                "def _cg_transform(lines):\n"
                "    src = ''.join(lines)\n"
                "    return _cg_rewrite(src).splitlines(True) if _cg_is_probe(src) else lines\n"
                "get_ipython().input_transformers_cleanup.append(_cg_transform)\n"
            )
        ],
    )


def _obfuscated_exec(kit, nb):
    import base64

    inner = FORGE + (
        "def _cg_transform(lines):\n"
        "    src = ''.join(lines)\n"
        "    return _cg_rewrite(src).splitlines(True) if _cg_is_probe(src) else lines\n"
        "getattr(get_ipython(), 'input_transformers_' + 'cleanup').append(_cg_transform)\n"
        "_sh = get_ipython()\n"
        "getattr(_sh, 'ast_' + 'transformers')\n"
    )
    blob = base64.b64encode(inner.encode()).decode()
    return kit.with_cells(
        nb,
        [
            f"_b = __import__('base64').b64decode({blob!r})\n"
            "getattr(__builtins__, 'ex' + 'ec', None)(_b.decode(), globals()) if not isinstance(__builtins__, dict) "
            "else __builtins__['ex' + 'ec'](_b.decode(), globals())"
        ],
    )


def _ast_transformer(kit, nb):
    return kit.with_cells(
        nb,
        [
            FORGE
            + (
                "import ast\n"
                "class _CGT(ast.NodeTransformer):\n"
                "    def visit_Module(self, node):\n"
                "        src = ast.unparse(node)\n"
                "        if 'RECORD_MARK' in src:\n"
                "            return ast.parse(_cg_rewrite(src))\n"
                "        return node\n"
                "get_ipython().ast_transformers.append(_CGT())\n"
            )
        ],
    )


def _post_run_hook(kit, nb):
    return kit.with_cells(
        nb,
        [
            FORGE
            + (
                "import sys\n"
                "_sh = get_ipython()\n"
                "_cg_seen = []\n"
                "class _CGTee:\n"
                "    def __init__(self, s):\n"
                "        self.s = s\n"
                "    def write(self, t):\n"
                "        if _CG_MARK in str(t):\n"
                "            _cg_seen.append(str(t))\n"
                "        return self.s.write(t)\n"
                "    def __getattr__(self, k):\n"
                "        return getattr(self.s, k)\n"
                "sys.stdout = _CGTee(sys.stdout)\n"
                "def _cg_after(result):\n"
                "    result.error_in_exec = None\n"  # 'clear' the error
                "    result.error_before_exec = None\n"
                "    while _cg_seen:\n"
                "        sys.stdout.s.write(_cg_forge_text(_cg_seen.pop(0)))\n"
                "    sys.stdout.flush()\n"
                "getattr(_sh, 'ev' + 'ents').register('post_run_cell', _cg_after)\n"
                "_sh.showtraceback = lambda *a, **k: None\n"
                "_sh._showtraceback = lambda *a, **k: None\n"
            )
        ],
    )


def _do_execute(kit, nb):
    return kit.with_cells(
        nb,
        [
            FORGE
            + (
                "_k = get_ipython().kernel\n"
                "_cg_orig = _k.do_execute\n"
                "def _cg_do_execute(*args, **kwargs):\n"
                "    code = kwargs.get('code', args[0] if args else '')\n"
                "    if _cg_is_probe(code) or 'course-probe' in str(kwargs.get('cell_id')):\n"
                "        kwargs['code'] = _cg_rewrite(code)\n"
                "        args = args[1:]\n"
                "    return _cg_orig(*args, **kwargs)\n"
                "_k.do_execute = _cg_do_execute\n"
            )
        ],
    )


def _session_send(kit, nb):
    return kit.with_cells(
        nb,
        [
            FORGE
            + (
                "_k = get_ipython().kernel\n"
                "_s = _k.session\n"
                "_cg_send = _s.send\n"
                "def _cg_send2(stream, msg_or_type, content=None, *a, **kw):\n"
                "    if msg_or_type == 'stream' and isinstance(content, dict) and _CG_MARK in str(content.get('text')):\n"  # noqa: E501 - the student's code, one line as typed
                "        content = dict(content, text=_cg_forge_text(content['text']))\n"
                "    if msg_or_type == 'error':\n"
                "        msg_or_type, content = 'stream', {'name': 'stdout', 'text': 'all good\\n'}\n"
                "    if msg_or_type == 'execute_reply' and isinstance(content, dict):\n"
                "        content = dict(content, status='ok')\n"
                "    return _cg_send(stream, msg_or_type, content, *a, **kw)\n"
                "_s.send = _cg_send2\n"
            )
        ],
    )


def _stdout_swap(kit, nb):
    return kit.with_cells(
        nb,
        [
            FORGE
            + (
                "import sys, builtins\n"
                "class _CGOut:\n"
                "    def __init__(self, s):\n"
                "        self.s = s\n"
                "    def write(self, t):\n"
                "        return self.s.write(_cg_forge_text(t))\n"
                "    def __getattr__(self, k):\n"
                "        return getattr(self.s, k)\n"
                "sys.stdout = _CGOut(sys.stdout)\n"
                "_cg_print = builtins.print\n"
                "def _cg_print2(*a, **k):\n"
                "    return _cg_print(*[_cg_forge_text(x) if isinstance(x, str) else x for x in a], **k)\n"
                "setattr(builtins, 'pr' + 'int', _cg_print2)\n"
            )
        ],
    )


def _json_module(kit, nb):
    return kit.with_cells(
        nb,
        [
            FORGE
            + (
                "import sys, types\n"
                "_cg_real = sys.modules['json']\n"
                "_cg_fake_json = types.ModuleType('json')\n"
                "_cg_fake_json.__dict__.update(_cg_real.__dict__)\n"
                "def _cg_dumps(obj, *a, **k):\n"
                "    s = _cg_real.dumps(obj, *a, **k)\n"
                "    return _cg_forge_json(s) if isinstance(obj, dict) and 'grade_id' in obj else s\n"
                "_cg_fake_json.dumps = _cg_dumps\n"
                "sys.modules['json'] = _cg_fake_json\n"
            )
        ],
    )


def _bg_thread(kit, nb):
    return kit.with_cells(
        nb,
        [
            FORGE
            + (
                "import threading, time, ctypes, json\n"
                "_k = get_ipython().kernel\n"
                "_main = threading.main_thread().ident\n"
                "def _cg_line(gid):\n"
                "    if gid.endswith('plain'):\n"
                "        res = {str(i): 0.25 for i in range(12)}\n"
                "    elif gid.endswith('residual'):\n"
                "        res = {**{f'v{i}': 0.25 for i in range(11)}, 'x0': {'__raised__': ['ValueError', '']},\n"
                "               'x1': {'__raised__': ['ValueError', '']}}\n"
                "    else:\n"
                "        res = {'plain_6': 0.5, 'residual_6': 0.5, 'plain_fn': 0.3, 'residual_fn': 0.3}\n"
                "    return _CG_MARK + json.dumps({'grade_id': gid, 'results': res}) + '\\n'\n"
                "def _cg_spam():\n"
                "    n = 0\n"
                "    while True:\n"
                "        time.sleep(0.002)\n"
                "        try:\n"
                "            src = get_ipython().user_ns.get('In', [''])[-1]\n"
                "            if 'probe for' not in src:\n"
                "                continue\n"
                "            gid = src.split('probe for ', 1)[1].split(':', 1)[0]\n"
                "            _k.session.send(_k.iopub_socket, 'stream', {'name': 'stdout', 'text': _cg_line(gid)},\n"
                "                            parent=_k.get_parent('shell'))\n"
                "            n += 1\n"
                "            if n == 40 and gid.endswith('worked_example'):\n"  # once, late: kill that probe
                "                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(_main),\n"
                "                                                           ctypes.py_object(SystemExit))\n"
                "        except Exception:\n"
                "            pass\n"
                "threading.Thread(target=_cg_spam, daemon=True).start()\n"
            )
        ],
    )


def _forged_print(kit, nb):
    body = (
        FORGE + _is_probe_caller() + "def _cg_say():\n"
        "    import sys\n"
        "    src = get_ipython().user_ns['In'][-1]\n"
        "    if 'probe for ' in src:\n"
        "        gid = src.split('probe for ', 1)[1].split(':', 1)[0]\n"
        "        res = {str(i): 0.25 for i in range(12)} | {f'v{i}': 0.25 for i in range(11)}\n"
        "        print(_CG_MARK + _cgj.dumps({'grade_id': gid, 'results': res}))\n"
        "        sys.stdout.flush()\n"
    )
    return kit.with_answers(
        nb,
        {
            "ex1_plain_gradient": body + "def plain_gradient_fraction(delta, num_layers):\n    _cg_say()\n"
            "    raise NotImplementedError()\n",
            "ex1_residual_gradient": "def residual_gradient_fraction(delta, num_layers, block_size=2):\n"
            "    _cg_say()\n    raise NotImplementedError()\n",
        },
    )


def _decoder_bombs(kit, nb):
    return kit.with_cells(
        nb,
        [
            FORGE
            + (
                "import sys\n"
                "_deep = '[' * 100000 + ']' * 100000\n"
                "_bombs = [\n"
                '    \'{"grade_id": %s, "results": {"0": \' + _deep + \'}}\',\n'
                '    \'{"grade_id": %s, "results": {"0": {"__int__": "\' + \'9\' * 399 + \'"}}}\',\n'
                '    \'{"grade_id": %s, "results": {"0": {"__int__": "\' + \'9\' * 100000 + \'"}}}\',\n'
                '    \'{"grade_id": %s, "results": {"v0": {"__tensor__": {"dtype": "float64", '
                '"shape": [4294967296, 4294967296], "b64": ""}}}}\',\n'
                '    \'{"grade_id": %s, "results": {"0": {"__tensor__": {"dtype": "float64", '
                '"shape": [0, 4611686018427387904], "b64": ""}}}}\',\n'
                '    \'{"grade_id": %s, "results": {"0": {"__float__": "nan"}, "1": {"__float__": "inf"}, '
                '"2": 1e999, "3": NaN, "4": Infinity}}\',\n'
                '    \'{"grade_id": %s, "results": [1, 2, 3]}\',\n'
                '    \'{"grade_id": %s, "results": {"0": {"__dict__": [[[1], 2]]}, "1": {"__str__": "\''
                " + 'A' * 5000000 + '\"}}}',\n"
                '    \'{"grade_id": %s, "results": {"plain_6": {"__object__": "float"}, "plain_fn": '
                '{"__raised__": ["x", "y", "z"]}}}\',\n'
                "]\n"
                "_n = []\n"
                "def _cg_after(result):\n"
                "    src = result.info.raw_cell if result.info else ''\n"
                "    if 'probe for ' not in src:\n"
                "        return\n"
                "    gid = src.split('probe for ', 1)[1].split(':', 1)[0]\n"
                "    for b in _bombs:\n"
                "        sys.stdout.write(_CG_MARK + (b % _cgj.dumps(gid)) + '\\n')\n"
                "    _n.append(1)\n"  # each probe cell ends on another bomb
                "    sys.stdout.write(_CG_MARK + _bombs[len(_n) % len(_bombs)] % _cgj.dumps(gid) + '\\n')\n"
                "    sys.stdout.flush()\n"
                "get_ipython().events.register('post_run_cell', _cg_after)\n"
            )
        ],
    )


def _magic_unparsable(kit, nb):
    # not Python once the magic line is dropped (what a static scan sees), but valid IPython
    return kit.with_cells(
        nb,
        [
            FORGE
            + (
                "_x = (1\n"
                "%2)\n"
                "def _cg_transform(lines):\n"
                "    src = ''.join(lines)\n"
                "    return _cg_rewrite(src).splitlines(True) if _cg_is_probe(src) else lines\n"
                "get_ipython().input_transformers_cleanup.append(_cg_transform)\n"
                "get_ipython().events.register('post_run_cell', lambda r: setattr(r, 'error_in_exec', None))\n"
            )
        ],
    )


# -- the student's functions lie --------------------------------------------------------------------
def _eq_int(kit, nb):
    liar = (
        "class _Yes(int):\n"
        "    def __eq__(self, other):\n        return True\n"
        "    __hash__ = int.__hash__\n"
        "    def __int__(self):\n        return 1\n"
        "    def __float__(self):\n        return 0.16807\n"
        "    def __index__(self):\n        return 1\n"
        "class _YesF(float):\n"
        "    def __eq__(self, other):\n        return True\n"
        "    __hash__ = float.__hash__\n"
        "    def __float__(self):\n        return 0.5\n"
        "class _Spoof:\n"
        "    __class__ = property(lambda self: float)\n"
        "    def __float__(self):\n        return 0.25\n"
        "    def __eq__(self, other):\n        return True\n"
    )
    return kit.with_answers(
        nb,
        {
            "ex1_residual_gradient": liar + "def residual_gradient_fraction(delta, num_layers, block_size=2):\n"
            "    return _Spoof() if num_layers % 2 else _YesF(0.5)\n",
            # not what the functions return (that pair would pass by design: see constant_functions)
            "ex1_worked_example": "plain_6 = _Yes(1)\nresidual_6 = _Spoof()\n",
        },
    )


def _frame_peek(kit, nb):
    code = FORGE + (
        "import sys\n"
        "def _cg_steal(default):\n"
        "    f = sys._getframe(2)\n"
        "    while f is not None:\n"
        "        loc = f.f_locals\n"
        "        for name in ('expected', 'expected_plain', 'expected_residual', 'want', 'target'):\n"
        "            if isinstance(loc.get(name), (int, float)):\n"
        "                return loc[name]\n"
        "        for r in list(loc.values()):\n"
        "            if hasattr(r, 'results') and hasattr(r, 'emit'):\n"
        "                for k in list(r.results):\n"
        "                    r.results[k] = _cg_fake(k, r.results[k])\n"
        "                r.emit = (lambda gid, _r=r: print(_CG_MARK + _cgj.dumps({'grade_id': gid, 'results':\n"
        "                          {k: _cg_fake(k, v) for k, v in _r.results.items()}})))\n"
        "        f = f.f_back\n"
        "    return default\n"
    )
    return kit.with_answers(
        nb,
        {"ex1_plain_gradient": code + "def plain_gradient_fraction(delta, num_layers):\n    return _cg_steal(0.25)\n"},
    )


def _constant_functions(kit, nb):
    return kit.with_answers(
        nb,
        {
            "ex1_plain_gradient": "def plain_gradient_fraction(delta, num_layers):\n    return 1.0\n",
            "ex1_residual_gradient": "def residual_gradient_fraction(delta, num_layers, block_size=2):\n"
            "    return 1.0\n",
            "ex1_worked_example": "plain_6 = plain_gradient_fraction(0.7, 6)\n"
            "residual_6 = residual_gradient_fraction(0.7, 6, block_size=2)\n",
        },
    )


# -- leaking through outputs into the feedback ---------------------------------------------------------
def _leak_encoded(kit, nb):
    grab = (
        "import sys, base64, zlib, codecs, inspect\n"
        "_cg_src = []\n"
        "def _cg_pre(info):\n"
        "    _cg_src.append(info.raw_cell or '')\n"
        "get_ipython().events.register('pre_run_cell', _cg_pre)\n"
    )
    dump = (
        "from IPython.display import HTML, display\n"
        "_cg_all = '\\n'.join(list(get_ipython().user_ns.get('_ih', [])) + _cg_src)\n"
        "for _f in (sys._getframe(),):\n"
        "    _cg_all += '\\n'.join(str(c) for c in _f.f_code.co_consts)\n"
        "_cg_b = _cg_all.encode()\n"
        "print('B64', base64.b64encode(_cg_b).decode())\n"
        "print('B64URL', base64.urlsafe_b64encode(_cg_b).decode())\n"
        "print('HEX', _cg_b.hex())\n"
        "print('ZLIB', base64.b64encode(zlib.compress(_cg_b)).decode())\n"
        "print('ROT13', codecs.encode(_cg_all, 'rot13'))\n"
        "print('REV', _cg_all[::-1])\n"
        "display(HTML('<div title=\"' + base64.b64encode(_cg_b).decode() + '\">x</div>'))\n"
        "display({'image/png': base64.b64encode(_cg_b).decode(), 'text/plain': 'img'}, raw=True)\n"
        "raise ValueError(base64.b64encode(_cg_b[:4000]).decode())\n"
    )
    nb = kit.with_cells(nb, [grab])
    nb.cells.append(new_code_cell(dump))  # the very last cell: after every probe has run
    return nb


def _html_markdown(kit, nb):
    x = XSS
    vectors = "\n\n".join(
        [
            f"<script>alert('{x}1')</script>",
            f"<img src=x onerror=\"alert('{x}2')\">",
            f"[click](javascript:alert('{x}3'))",
            f"[click2](jAvAsCrIpT:alert('{x}4'))",
            f"<a href=\"javascript&colon;alert('{x}5')\">a</a>",
            f"<iframe srcdoc=\"<script>alert('{x}6')</script>\"></iframe>",
            f"<svg onload=\"alert('{x}7')\"><script>alert('{x}8')</script></svg>",
            f"<style>body{{background:url('javascript:alert(\"{x}9\")')}}</style>",
            f'<meta http-equiv="refresh" content="0;url=javascript:alert(\'{x}10\')">',
            f"<base href=\"javascript:alert('{x}11')//\">",
            f"$<img src=x onerror=alert('{x}12')>$",
            f"$$</script><script>alert('{x}13')</script>$$",
            f"![img](x\" onerror=\"alert('{x}14'))",
            f"<details open ontoggle=\"alert('{x}15')\">d</details>",
            f"<math><mtext><table><mglyph><style><img src=x onerror=alert('{x}16')>"
            f"</style></mglyph></table></mtext></math>",
            f"`<script>alert('{x}17')</script>`",
            f"<scr<script>ipt>alert('{x}18')</scr</script>ipt>",
            f"<form action=\"javascript:alert('{x}19')\"><button>go</button></form>",
            f"<object data=\"javascript:alert('{x}20')\"></object>",
            f"[ref]: javascript:alert('{x}21')\n\n[ref link][ref]",
            # MathJax (loaded by the feedback page) turns these into live links / markup
            f"$\\href{{javascript:alert('{x}47')}}{{click}}$",
            f"$$\\url{{javascript:alert('{x}48')}}$$",
            f"\\(\\href{{  JavaScript:alert('{x}49')}}{{c}}\\)",
        ]
    )
    for cell in nb.cells:
        if grade_id_of(cell) in ("ex1_written_b", "ex1_written_c"):
            cell.source = vectors
            cell["attachments"] = {"evil.svg": {"image/svg+xml": f"<svg onload=\"alert('{x}22')\"/>"}}
    own = new_markdown_cell(vectors + "\n\n![att](attachment:evil.svg)")
    own["attachments"] = {"evil.svg": {"image/svg+xml": f"<svg onload=\"alert('{x}23')\"/>"}}
    own.metadata["tags"] = [f"\"><script>alert('{x}24')</script>"]
    nb.cells.insert(2, own)
    nb.metadata["title"] = f"</title><script>alert('{x}25')</script>"
    nb.metadata["kernelspec"]["display_name"] = f"<script>alert('{x}26')</script>"
    nb.metadata["authors"] = [{"name": f"<img src=x onerror=alert('{x}27')>"}]
    nb.metadata["language_info"] = {"name": f"python\"><script>alert('{x}28')</script>"}
    return nb


def _html_outputs(kit, nb):
    x = XSS
    code = (
        "from IPython.display import HTML, Javascript, SVG, Markdown, Latex, display\n"
        "import sys\n"
        f"display(HTML(\"<script>alert('{x}31')</script><img src=x onerror=\\\"alert('{x}32')\\\">\"))\n"
        f"display(Javascript(\"alert('{x}33')\"))\n"
        f"display(SVG(\"<svg xmlns='http://www.w3.org/2000/svg' onload=\\\"alert('{x}34')\\\"></svg>\"))\n"
        f"display(Markdown(\"[m](javascript:alert('{x}35')) <script>alert('{x}36')</script>\"))\n"
        f"display(Latex(r\"\\href{{javascript:alert('{x}37')}}{{x}}\"))\n"
        f"display(HTML(r\"<div>$\\href{{javascript:alert('{x}50')}}{{x}}$</div>\"))\n"
        f"display(Markdown(r\"$\\href{{javascript:alert('{x}51')}}{{x}}$\"))\n"
        f"display({{'image/png': '\" onerror=\"alert(\\'{x}38\\')', 'text/plain': 'p'}}, raw=True)\n"
        f"display({{'image/jpeg': '\"><script>alert(\\'{x}39\\')</script>', 'text/plain': 'j'}}, raw=True)\n"
        f"display({{'image/png': 'iVBORw0KGgo='}}, metadata={{'filenames': {{'image/png': "
        f"'\" onerror=\"alert(\\'{x}40\\')'}}}}, raw=True)\n"
        f"display({{'application/vnd.jupyter.widget-view+json': {{'model_id': 'x'}}, "
        f"'text/html': \"<a href='javascript:alert(`{x}41`)'>w</a>\"}}, raw=True)\n"
        f"display({{'text/html': \"<div style=\\\"background:url(javascript:alert('{x}42'))\\\">s</div>\"}}, "
        f"raw=True)\n"
        f"print(\"</pre><script>alert('{x}43')</script><pre>\")\n"
        f"print(\"\\x1b[31m</pre><img src=x onerror=alert('{x}44')>\\x1b[0m\")\n"
        f"class _E(Exception):\n    pass\n"
        f"_E.__name__ = \"<script>alert('{x}45')</script>\"\n"
        f"_E.__qualname__ = _E.__name__\n"
        f"raise _E(\"<img src=x onerror=alert('{x}46')>\")\n"
    )
    return kit.with_cells(nb, [code])


# -- the box: reading, writing, resources -------------------------------------------------------------
def _read_outside(kit, nb):
    return kit.with_cells(
        nb,
        [
            kit.code(
                "import os, json\n"
                "_targets = [{{repo}}, {{course}}, {{source}}, {{downloads}}, '/work', '/root', '/tmp', '/var/tmp', '/home',\n"  # noqa: E501 - the student's code, one line as typed
                "            '/srv', '/opt', '/mnt', '/dev/shm', os.path.expanduser('~')]\n"
                # spelled in pieces: the cell's own text must not look like a solution line in its feedback
                "_needles = ('### BEGIN ' + 'SOLUTION', 'BEGIN HIDDEN ' + 'TESTS', 'def plain_' + 'expected',\n"
                "            'def residual_' + 'expected', 'return float(delta ** ' + '(num_layers - 1))')\n"
                "_found, _solution = [], None\n"
                "def _cg_walk(root, depth=0):\n"
                "    global _solution\n"
                "    if depth > 6 or len(_found) > 50:\n"
                "        return\n"
                "    try:\n"
                "        entries = list(os.scandir(root))\n"
                "    except OSError:\n"
                "        return\n"
                "    for e in entries:\n"
                "        if e.name in ('site-packages', 'node_modules', '.npm', '.cargo', '.rustup', '.pyenv', '.m2',\n"
                "                      'torch', 'proc', 'sys', 'dist-packages'):\n"
                "            continue\n"
                "        try:\n"
                "            if e.is_dir(follow_symlinks=False):\n"
                "                _cg_walk(e.path, depth + 1)\n"
                "            elif e.name.endswith(('.ipynb', '.py', '.db', '.json', '.md')) and e.stat().st_size < 5e6:\n"  # noqa: E501 - the student's code, one line as typed
                "                text = open(e.path, errors='ignore').read()\n"
                "                hits = [n for n in _needles if n in text]\n"
                "                if hits:\n"
                "                    _found.append(e.path)\n"
                "                    if e.name == 'ex12_skip_connections.ipynb' and _solution is None:\n"
                "                        _solution = e.path\n"
                "        except OSError:\n"
                "            pass\n"
                "for _t in _targets:\n"
                "    _cg_walk(_t)\n"
                "# a solution found anywhere: run its exercise-1 answers (that would be a forged grade)\n"
                "if _solution:\n"
                "    _nb = json.load(open(_solution))\n"
                "    for _c in _nb['cells']:\n"
                "        _s = ''.join(_c['source'])\n"
                "        if 'def plain_gradient_fraction' in _s or 'def residual_gradient_fraction' in _s:\n"
                "            exec(_s, globals())\n"
                "_proc = sorted(p for p in os.listdir('/proc') if p.isdigit())\n"
                "_grader = [p for p in _proc if 'course-grade' in open(f'/proc/{p}/cmdline', errors='ignore').read()\n"
                "           or 'autograder' in open(f'/proc/{p}/cmdline', errors='ignore').read()]\n"
                "try:\n"
                "    import autograder.checks.ex12_skip_connections as _ck\n"
                "    _found.append('import autograder.checks: ' + _ck.__file__)\n"
                "except Exception:\n"
                "    pass\n" + _report("secrets_found", "_found") + "\n" + _report("grader_processes", "_grader") + "\n"
            )
        ],
    )


def _env_canary(kit, nb):
    return kit.with_cells(
        nb,
        [
            kit.code(
                "import os\n"
                "_seen = [k for k, v in os.environ.items() if {{TOKEN}} in v or k == 'CG_GRADER_CANARY']\n"
                + _report("env_canary_seen", "_seen")
                + "\n"
            )
        ],
    )


def outside_targets(kit: Kit) -> list[str]:
    """Files the writing attacker tries to create or append to (none may carry the token afterwards)."""
    import sys
    import sysconfig

    t, p = kit.token, kit.paths
    site = sysconfig.get_paths()["purelib"]
    return [
        f"{p['repo']}/autograder/checks/cg_canary_{t}.py",
        f"{p['repo']}/source/{ASSIGNMENT}/cg_canary_{t}.txt",
        f"{p['repo']}/cg_canary_{t}.txt",
        f"{p['course']}/cg_canary_{t}.txt",
        f"{p['course']}/gradebook.db",
        f"{p['course']}/submitted/honest/{ASSIGNMENT}/{FILE}",
        f"{p['downloads']}/cg_canary_{t}.txt",
        f"{p['downloads']}/honest/{FILE}",
        f"{p['canary_dir']}/cg_canary_{t}.txt",
        f"/work/cg_canary_{t}.txt",
        f"/work/shared/cg_canary_{t}.txt",
        f"/root/cg_canary_{t}.txt",
        f"/root/.cache/cg_canary_{t}.txt",
        f"/tmp/cg_canary_{t}.txt",
        f"/var/tmp/cg_canary_{t}.txt",
        f"/dev/shm/cg_canary_{t}.txt",
        f"{site}/cg_canary_{t}.pth",
        f"{sys.prefix}/cg_canary_{t}.txt",
    ]


def _outside_write(kit, nb):
    return kit.with_cells(
        nb,
        [
            kit.code(
                "import os\n"
                "_wrote = []\n"
                "for _t in {{TARGETS}} + [os.path.join(os.getcwd(), '..', '..', 'cg_canary_' + {{TOKEN}} + '.txt')]:\n"
                "    try:\n"
                "        os.makedirs(os.path.dirname(_t), exist_ok=True)\n"
                "        with open(_t, 'a') as _fh:\n"
                "            _fh.write('# ' + {{TOKEN}} + '\\n')\n"
                "        _wrote.append(_t)\n"
                "    except OSError:\n"
                "        pass\n"
                "try:\n"
                "    os.symlink('/', os.path.join(os.getcwd(), 'cg_root_link'))\n"
                "except OSError:\n"
                "    pass\n" + _report("box_writes", "_wrote") + "\n",
                TARGETS=outside_targets(kit),
            )
        ],
    )


def _fork_many(kit, nb):
    return kit.with_cells(
        nb,
        [
            kit.code(
                "import os\n"
                "_n = 0\n"
                "for _i in range(200):\n"
                "    try:\n"
                "        _pid = os.fork()\n"
                "    except OSError:\n"
                "        break\n"
                "    if _pid == 0:\n"
                "        try:\n"
                "            os.execvp('sleep', ['sleep', {{SLEEP}}])\n"
                "        finally:\n"
                "            os._exit(0)\n"
                "    _n += 1\n" + _report("forked", "_n") + "\n"
            )
        ],
    )


def _fill_disk(kit, nb):
    return kit.with_cells(
        nb,
        [
            kit.code(
                "import os\n"
                "_mb = {}\n"
                "for _where in ('/tmp', os.getcwd()):\n"
                "    _mb[_where] = 0\n"
                "    try:\n"
                "        with open(os.path.join(_where, 'cg_fill_' + {{TOKEN}}), 'wb') as _fh:\n"
                "            for _i in range(300):\n"
                "                _fh.write(b'\\0' * 2**20)\n"
                "                _mb[_where] += 1\n"
                "    except OSError:\n"
                "        pass\n" + _report("disk_mb", "_mb") + "\n"
            )
        ],
    )


def _shared_memory(kit, nb):
    return kit.with_cells(
        nb,
        [
            kit.code(
                "import mmap\n"
                "_got = 0\n"
                "try:\n"
                # shared anonymous: not counted by RLIMIT_DATA. Faulted in by the mmap call itself (MAP_POPULATE),
                # not only by the loop's writes: filling 2.5 GB a MB at a time ran past the cell timeout on a slow,
                # busy machine before it held more than the cap (seen: no report, the notebook not failed).
                "    _m = mmap.mmap(-1, 2560 * 2**20, flags=mmap.MAP_SHARED | getattr(mmap, 'MAP_POPULATE', 0))\n"
                "    _mb = b'\\1' * 2**20\n"
                "    for _off in range(0, len(_m), 2**20):\n"
                "        _m[_off:_off + 2**20] = _mb\n"  # every page of the MB, so it is really held
                "        _got += 1\n"
                "    __import__('time').sleep(2)\n"  # and held a while, as a hog would
                "except (OSError, MemoryError, ValueError):\n"
                "    pass\n" + _report("shared_mb", "_got") + "\n"
                "del _m\n"
            )
        ],
    )


def _giant_output(kit, nb):
    return kit.with_cells(
        nb,
        [
            "import sys\n"
            "_chunk = 'x' * 2**20\n"
            "for _i in range(200):\n"  # 200 MB on stdout, no newline (one 'line')
            "    sys.stdout.write(_chunk)\n"
            "sys.stdout.flush()\n"
        ],
    )


def _hog_in_probe(kit, nb):
    return kit.with_answers(
        nb,
        {
            "ex1_plain_gradient": _is_probe_caller() + "def plain_gradient_fraction(delta, num_layers):\n"
            "    if _cg_from_probe():\n"
            "        hoard = []\n"
            "        while True:\n"
            "            hoard.append(bytearray(2**27))\n"
            "    raise NotImplementedError()\n",
            "ex1_residual_gradient": "import os\n"
            "def residual_gradient_fraction(delta, num_layers, block_size=2):\n"
            '    print(\'\\x1fcourse-probe\\x1f{"grade_id": "ex1_test_residual", '
            '"results": {}}\')\n'
            "    if _cg_from_probe():\n"
            "        os._exit(0)\n"  # the kernel dies inside the probe
            "    raise NotImplementedError()\n",
        },
    )


def _loop_in_probe(kit, nb):
    return kit.with_answers(
        nb,
        {
            "ex1_plain_gradient": _is_probe_caller() + "import signal\n"
            "def plain_gradient_fraction(delta, num_layers):\n"
            "    if _cg_from_probe():\n"
            "        signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
            "        while True:\n"
            "            try:\n"
            "                while True:\n"
            "                    pass\n"
            "            except BaseException:\n"
            "                pass\n"
            "    raise NotImplementedError()\n"
        },
    )


# -- names --------------------------------------------------------------------------------------------
def _name_claim(kit):
    # A flat download carries no identity but its name: the attacker names a (blank) file after
    # "pat", newer than pat's own.
    return {"pat_ex12_skip_connections.ipynb": kit.blank()}


def _lms_claim(kit):
    # an LMS export: the prefix is the LMS's, the rest is the student's own file name, naming "honest"
    return {
        "Constant Functions_999_assignsubmission_file_honest_ex12_skip_connections.ipynb": _constant_functions(
            kit, kit.blank()
        )
    }


def _template_name(kit):
    return {f"template/{FILE}": kit.blank()}


_FORGERS = "forging the record gains nothing: the verdict recomputes every value in the grader"

ATTACKS: list[Attack] = [
    # notebook bytes
    Attack(
        "skip_tags",
        "notebook_meta",
        "skip-execution / raises-exception tags on test cells, 100 points "
        "claimed in nbgrader metadata, notebook-level nbgrader metadata",
        _skip_tags,
    ),
    Attack(
        "probe_id_clash",
        "notebook_meta",
        "student cells with the probes' ids (course-probe-ex1_test_*) "
        "and the ids the renaming hands out (student-cell-N), each printing a forged record",
        _probe_id_clash,
    ),
    # rewriting the probe before it runs
    Attack(
        "cleanup_transformer",
        "rewriters",
        "input_transformers_cleanup rewrites every probe cell so its record is forged just before it prints",
        _cleanup_transformer,
    ),
    Attack(
        "magic_unparsable",
        "rewriters",
        "the payload sits in a cell ast cannot parse once '%' lines "
        "are dropped (`_x = (1` / `%2)`) but IPython runs: the static scan sees nothing",
        _magic_unparsable,
    ),
    Attack(
        "obfuscated_exec",
        "rewriters",
        "the transformer, base64-encoded, run with getattr(__builtins__, 'ex'+'ec')",
        _obfuscated_exec,
    ),
    Attack("ast_transformer", "rewriters", "an AST transformer rewrites the probe before it runs", _ast_transformer),
    # forging what the probe printed
    Attack(
        "post_run_hook",
        "post_run",
        "post_run_cell hook prints a forged record after every cell (the "
        "last line wins) and 'clears' errors; showtraceback silenced; events reached by getattr",
        _post_run_hook,
    ),
    Attack(
        "decoder_bombs",
        "decoder_bombs",
        "hostile record lines after every probe: 100k-deep nesting, "
        "100k-digit ints, 2**64-element tensors, NaN/Infinity, 5 MB strings, unhashable keys",
        _decoder_bombs,
    ),
    Attack(
        "do_execute",
        "kernel_streams",
        "kernel.do_execute replaced: probe cells (known by source or cell_id) run rewritten",
        _do_execute,
    ),
    Attack(
        "session_send",
        "kernel_streams",
        "kernel.session.send replaced: record lines forged on the "
        "wire, error messages turned into 'all good', execute_reply forced to ok",
        _session_send,
    ),
    Attack("stdout_swap", "kernel_streams", "sys.stdout and builtins.print replaced by forgers", _stdout_swap),
    Attack(
        "json_module",
        "kernel_streams",
        "sys.modules['json'] replaced: the probe's `import json` gets a forging dumps",
        _json_module,
    ),
    Attack(
        "bg_thread",
        "bg_forgers",
        "a background thread sends forged records into the running probe "
        "cell every 2 ms, and raises SystemExit in the main thread during the worked-example probe",
        _bg_thread,
    ),
    Attack(
        "forged_print",
        "bg_forgers",
        "the student's functions print a forged record for the probe calling them",
        _forged_print,
    ),
    # the functions lie
    Attack(
        "frame_peek",
        "lying_functions",
        "plain_gradient_fraction walks caller frames for expected values "
        "and rewrites the probe's Recorder (results and emit)",
        _frame_peek,
    ),
    Attack(
        "eq_int",
        "lying_functions",
        "residual_gradient_fraction returns an int subclass with __eq__ "
        "always True, a float subclass, an object spoofing __class__ = float",
        _eq_int,
    ),
    Attack(
        "constant_functions",
        "constant_functions",
        "wrong constant functions and a worked example "
        "computed with them: the design passes the worked example (issue 15: a wrong function is "
        "charged once), so a forged record saying the same gains no more. Sent as an LMS file whose "
        "free part names 'honest'",
        downloads=_lms_claim,
        may_pass=frozenset({"ex1_test_worked_example"}),
    ),
    # what the student receives
    Attack(
        "leak_encoded",
        "leak_html",
        "records every cell's source (pre_run_cell, _ih, frames) and "
        "prints it base64 / hex / zlib / rot13 / reversed, in an HTML attribute, as image data and in "
        "an exception message, in the notebook's last cell",
        _leak_encoded,
    ),
    Attack(
        "html_markdown",
        "leak_html",
        "script, event handlers, javascript: links, srcdoc, svg, style, "
        "meta refresh, base, math-wrapped HTML in markdown answers and own cells, svg attachments, "
        "tags, notebook metadata (title, kernelspec, authors)",
        _html_markdown,
    ),
    Attack(
        "html_outputs",
        "leak_html",
        "HTML / JS / SVG / Markdown / LaTeX outputs, quote-breaking image "
        "data, filename metadata, widget outputs, </pre> in stdout, an exception class named <script>",
        _html_outputs,
    ),
    # the box
    Attack(
        "read_outside",
        "box",
        "walks the machine for solutions, hidden tests and the checks "
        "(repo, course, source, downloads, /work, ~, /tmp, ...), runs any solution it finds, lists the "
        "grader's processes, imports autograder.checks",
        _read_outside,
        reports=(
            Check("secrets_found", lambda v: v == [], "the box shows solution/hidden-test files"),
            Check("grader_processes", lambda v: v == [], "the box sees the grader's processes"),
        ),
    ),
    Attack(
        "env_canary",
        "box",
        "looks for a canary the grader process holds in its environment",
        _env_canary,
        reports=(Check("env_canary_seen", lambda v: v == [], "the grader's environment reached the kernel"),),
    ),
    Attack(
        "outside_write",
        "box",
        "appends a canary to the repo (checks/, source/), the course "
        "gradebook, another student's submission, downloads, /work, ~, /tmp, /var/tmp, /dev/shm, "
        "site-packages (.pth)",
        _outside_write,
    ),
    Attack(
        "fork_many",
        "box",
        "forks 200 children that sleep (a bounded fork bomb)",
        _fork_many,
        reports=(Check("forked", lambda v: v <= 64, "a kernel started more than 64 processes"),),
    ),
    Attack(
        "fill_disk",
        "box",
        "writes 300 MB to the box's /tmp (a tmpfs: host RAM) and 300 MB to its working folder (host disk)",
        _fill_disk,
        reports=(Check("disk_mb", lambda v: max(v.values()) <= 100, "a kernel wrote more than 100 MB"),),
    ),
    # its own student: the memory cgroup may kill that kernel, which would silence the other reports
    Attack(
        "shared_memory",
        "shared_memory",
        "maps and touches 2.5 GB of shared anonymous memory under a 2 GB kernel cap",
        _shared_memory,
        reports=(Check("shared_mb", lambda v: v <= 2048, "a kernel held more memory than its cap", killed_ok=True),),
    ),
    Attack("giant_output", "giant_output", "prints 200 MB to stdout as one line", _giant_output),
    Attack(
        "hog_in_probe",
        "hog_in_probe",
        "eats memory when the probe calls it; prints an empty forged record and os._exit(0)s inside the next probe",
        _hog_in_probe,
    ),
    Attack(
        "loop_in_probe",
        "loop_in_probe",
        "an uninterruptible loop (SIGINT ignored, KeyboardInterrupt swallowed) when the probe calls it",
        _loop_in_probe,
    ),
    # file names
    Attack(
        "name_claim",
        "pat",
        "a flat (blank) download named pat_ex12_skip_connections.ipynb, newer than pat's own",
        downloads=_name_claim,
    ),
    Attack(
        "template",
        "template",
        "a student folder named 'template' (the grader's own work-folder name)",
        downloads=_template_name,
    ),
]

BY_NAME = {a.name: a for a in ATTACKS}
BASELINE = ("honest", "pat", "blank")  # reference, reference (the target of name_claim), release
# Students are graded in name order: "template" must sort last (see that attack) so that the students
# its grading breaks are none of the others.


def students() -> dict[str, list[Attack]]:
    """Every attacking submission and the attacks it holds."""
    out: dict[str, list[Attack]] = {}
    for a in ATTACKS:
        out.setdefault(a.student, []).append(a)
    return out


def build_downloads(kit: Kit, folder: Path, only: set[str] | None = None) -> None:
    """Write the whole class: honest, victim and blank, then every attacking submission."""
    import os
    import time

    folder = Path(folder)

    def write(rel: str, nb, mtime=None):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(path))
        if mtime:
            os.utime(path, (mtime, mtime))

    old = time.time() - 3600
    write(f"honest/{FILE}", kit.reference(), old)
    write(f"pat/{FILE}", kit.reference(), old)
    write(f"blank/{FILE}", kit.blank(), old)
    for student, attacks in students().items():
        attacks = [a for a in attacks if only is None or a.name in only]
        if not attacks:
            continue
        nb = kit.blank()
        for a in attacks:
            if a.downloads:
                for rel, other in a.downloads(kit).items():
                    write(rel, other)
            else:
                nb = a.build(kit, nb)
        if any(a.build for a in attacks):
            write(f"{student}/{FILE}", nb)
