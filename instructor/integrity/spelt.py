"""Names spelt at run time: the scan's rules read names where a cell writes them
(``getattr(shell, "input_transformers_post")``, ``globals()["get_ipython"]``); a cell that spells
the same name from pieces (``"input_trans" + "formers_post"``, ``"nohtypi_teg"[::-1]``,
``"".join(["ge", "t_ipython"])``, ``chr(103) + ...``, base64 or hex of it) hides it from them and
from a reader. Honest code has no reason to: a name built from literals alone, or a global read by
a key made at run time, is a finding of its own.

    spelt(tree) -> [Hit]
"""

from __future__ import annotations

import ast
import base64
import binascii
import codecs

from .rules import Hit, Priority, shorten

_DECODERS = {"b64decode", "fromhex", "unhexlify", "a2b_hex"}
_STR_METHODS = {"lower", "upper", "strip", "lstrip", "rstrip", "title", "capitalize", "swapcase", "casefold"}


def fold(node: ast.AST) -> tuple[str, int] | None:
    """(the string, how many pieces or steps made it) when ``node`` is built from literals alone."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
        value = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
        return value, 1
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = fold(node.left), fold(node.right)
        return (left[0] + right[0], left[1] + right[1]) if left and right else None
    if isinstance(node, ast.JoinedStr):
        parts = [fold(v.value if isinstance(v, ast.FormattedValue) and v.conversion == -1 and not v.format_spec
                      else v) for v in node.values]
        return ("".join(p[0] for p in parts), sum(p[1] for p in parts)) if all(parts) else None
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Slice):
        base = fold(node.value)
        bounds = [None if b is None else _int(b) for b in (node.slice.lower, node.slice.upper, node.slice.step)]
        return (base[0][slice(*bounds)], base[1] + 1) if base and ... not in bounds and bounds[2] != 0 else None
    if isinstance(node, ast.Call) and not node.keywords:
        return _fold_call(node)
    return None


def _int(node: ast.AST):
    """The int a literal (``3``, ``-1``) stands for, else ``...``."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        value = _int(node.operand)
        return -value if value is not ... else ...
    return node.value if isinstance(node, ast.Constant) and type(node.value) is int else ...


def _ints(node: ast.AST) -> list[int] | None:
    """The ints a literal list or tuple of them stands for (code points, byte values), else None."""
    if not isinstance(node, (ast.List, ast.Tuple)):
        return None
    values = [_int(e) for e in node.elts]
    return None if ... in values or any(not 0 <= v < 0x110000 for v in values) else values


def _fold_call(node: ast.Call) -> tuple[str, int] | None:
    func, args = node.func, [fold(a) for a in node.args]
    if isinstance(func, ast.Name) and func.id == "chr" and len(node.args) == 1:
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, int) and 0 <= arg.value < 0x110000:
            return chr(arg.value), 1
        return None
    if not isinstance(func, ast.Attribute):
        return None
    owner = fold(func.value)
    arg = node.args[0] if len(node.args) == 1 else None
    if func.attr == "join" and owner and isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) \
            and arg.func.id == "map" and len(arg.args) == 2 and isinstance(arg.args[0], ast.Name) \
            and arg.args[0].id == "chr" and (codes := _ints(arg.args[1])) is not None:
        return owner[0].join(map(chr, codes)), 2   # "".join(map(chr, [103, 101, ...]))
    if func.attr == "join" and owner and len(node.args) == 1 and isinstance(node.args[0], (ast.List, ast.Tuple)):
        parts = [fold(e) for e in node.args[0].elts]
        return (owner[0].join(p[0] for p in parts), sum(p[1] for p in parts) + 1) if all(parts) else None
    if not all(args):
        return None
    if owner and func.attr in _STR_METHODS and not args:
        return getattr(owner[0], func.attr)(), owner[1] + 1
    if owner and func.attr == "replace" and len(args) == 2:
        return owner[0].replace(args[0][0], args[1][0]), owner[1] + 1
    if func.attr == "decode" and isinstance(func.value, ast.Call) and isinstance(func.value.func, ast.Name) \
            and func.value.func.id == "bytes" and len(func.value.args) == 1:
        codes = _ints(func.value.args[0])   # bytes([97, 108, ...]).decode()
        return (bytes(codes).decode("latin-1"), 2) if codes is not None and all(c < 256 for c in codes) else None
    if func.attr == "decode" and isinstance(func.value, ast.Call):
        inner = func.value   # base64.b64decode("...").decode(), bytes.fromhex("...").decode()
        name = inner.func.attr if isinstance(inner.func, ast.Attribute) else getattr(inner.func, "id", "")
        data = fold(inner.args[0]) if len(inner.args) == 1 and name in _DECODERS else None
        if data:
            try:
                raw = base64.b64decode(data[0]) if name == "b64decode" else binascii.unhexlify(data[0])
                return raw.decode("utf-8"), 2
            except (ValueError, UnicodeDecodeError):
                return None
    if owner is None and isinstance(func.value, ast.Name) and func.value.id == "codecs" and func.attr == "decode" \
            and len(args) == 2 and args[1][0].replace("_", "").lower() == "rot13":
        return codecs.decode(args[0][0], "rot13"), 2
    return None


def _key_made_at_run_time(node: ast.Subscript) -> bool:
    """``globals()[name]``, ``vars()[...]``, ``locals()[...]`` read with a key that is not a literal."""
    value = node.value
    return (isinstance(node.ctx, ast.Load) and isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
            and value.func.id in ("globals", "vars", "locals") and not value.args
            and not (isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)))


_INTERNALS = {"sys", "builtins", "gc", "inspect", "ctypes", "importlib", "threading", "signal", "asyncio", "types"}


def _internal_by_run_time_name(node: ast.Call) -> str | None:
    """``getattr(sys, name)`` (setattr, hasattr, delattr): the module, when the name is not a literal."""
    func = node.func
    if not (isinstance(func, ast.Name) and func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2 and isinstance(node.args[0], ast.Name) and node.args[0].id in _INTERNALS):
        return None
    name = node.args[1]
    return None if isinstance(name, ast.Constant) and isinstance(name.value, str) else node.args[0].id


def spelt(tree: ast.AST) -> list[Hit]:
    """A hit for each name spelt from pieces of literals (outermost only), and each global read by
    a key made at run time."""
    hits, inner = [], set()
    for node in ast.walk(tree):
        if node in inner:
            continue
        if isinstance(node, ast.Call) and (module := _internal_by_run_time_name(node)):
            hits.append(Hit(node.lineno, Priority.INTERNALS,
                            f"reaches an attribute of {module} by a name made at run time"))
        if isinstance(node, ast.Subscript) and _key_made_at_run_time(node):
            hits.append(Hit(node.lineno, Priority.INTERNALS,
                            f"reads a name from {node.value.func.id}() by a key made at run time"))
        made = None if isinstance(node, ast.Constant) else fold(node)
        if made is None:
            continue
        inner.update(ast.walk(node))
        name, pieces = made
        if pieces > 1 and name.replace(".", "").isidentifier():
            hits.append(Hit(node.lineno, Priority.INTERNALS,
                            f"spells the name {shorten(name, 40)!r} from pieces (hidden from a reader and the scan)"))
    return hits
