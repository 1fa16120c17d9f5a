"""Torch schema strings from Python signatures.

``torch.library.infer_schema`` does not accept every return type IR ops need
(``tuple[Tensor, Tensor | None]`` for ``rotary_embedding`` with an optional
key), so ir-core writes the schema itself from the type hints. The mapping is
the one torch uses: ``int`` is ``SymInt`` so sizes may be symbolic.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

import torch

_SCALARS: dict[Any, str] = {
    torch.Tensor: "Tensor",
    int: "SymInt",
    float: "float",
    bool: "bool",
    str: "str",
    torch.dtype: "ScalarType",
}
_LISTS: dict[Any, str] = {torch.Tensor: "Tensor[]", int: "SymInt[]", float: "float[]"}


def _is_optional(tp: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return True, args[0]
    return False, tp


def type_to_schema(tp: Any, *, where: str) -> str:
    """The schema type of one annotation, e.g. ``Tensor | None`` -> ``Tensor?``."""
    optional, inner = _is_optional(tp)
    origin = typing.get_origin(inner)
    if inner in _SCALARS:
        base = _SCALARS[inner]
    elif origin in (list, typing.List) and typing.get_args(inner)[0] in _LISTS:  # noqa: UP006
        base = _LISTS[typing.get_args(inner)[0]]
    else:
        raise TypeError(
            f"{where}: unsupported type {tp!r} (use Tensor, int, float, bool, str, "
            "their Optional forms, or list[Tensor|int|float])"
        )
    return base + ("?" if optional else "")


def _default_to_schema(value: Any, *, where: str) -> str:
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"{where}: unsupported default {value!r}")


def infer_schema(fn: Callable[..., Any], *, mutates: Iterable[str] = ()) -> str:
    """Return the schema of ``fn`` without its name, e.g.
    ``(Tensor x, Tensor? weight, float epsilon, SymInt? variance_size=None) -> Tensor``.

    Parameters named in ``mutates`` get alias annotations ``Tensor(aN!)``.
    """
    name = getattr(fn, "__name__", repr(fn))
    hints = typing.get_type_hints(fn)
    mutates = list(mutates)
    params = []
    for idx, p in enumerate(inspect.signature(fn).parameters.values()):
        where = f"{name}: parameter {p.name!r}"
        if p.name not in hints:
            raise TypeError(f"{where} has no type annotation")
        typ = type_to_schema(hints[p.name], where=where)
        if p.name in mutates:
            if not typ.startswith("Tensor") or typ.startswith("Tensor[]"):
                raise TypeError(f"{where}: only Tensor parameters can be mutated")
            typ = f"Tensor(a{idx}!)" + ("?" if typ.endswith("?") else "")
        item = f"{typ} {p.name}"
        if p.default is not inspect.Parameter.empty:
            item += "=" + _default_to_schema(p.default, where=where)
        params.append(item)
    if "return" not in hints:
        raise TypeError(f"{name}: the return type must be annotated")
    ret = hints["return"]
    if typing.get_origin(ret) is tuple:
        outs = [type_to_schema(t, where=f"{name}: return") for t in typing.get_args(ret)]
        rets = "(" + ", ".join(outs) + ")"
    else:
        rets = type_to_schema(ret, where=f"{name}: return")
    return "(" + ", ".join(params) + ") -> " + rets
