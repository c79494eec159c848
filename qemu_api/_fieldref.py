"""Typed field references: ``lambda s: s.regs.flags`` read as an attribute path.

A declaration that names a piece of device state -- a VMState field
(:mod:`qemu_api.migration.vmstate`), the state behind a register
(:mod:`qemu_api.register`) -- takes a lambda from the state to the piece.
mypy checks the lambda like any code (a misspelt field, a field of the wrong
type or of another class is a type error), and at declaration time the lambda
is run once on a recorder that notes the attribute names it reads: the path,
which the runtime then resolves against the class annotations and uses.  This
is the Python counterpart of QEMU Rust's ``vmstate_of!(State, field)``, which
finds a field's type and offset at compile time.

A reference is a chain of attribute reads from its argument; ``.get()`` on a
:class:`~qemu_api.bql.BqlCell` or :class:`~qemu_api.bql.BqlRefCell` reaches
through the cell (and adds no step), and ``[i]`` indexes a list with the
lambda's second argument (register arrays) or with a constant.

>>> field_path(lambda s: s.regs.flags)
('regs', 'flags')
>>> field_path(lambda s: s.cell.get().level)
('cell', 'level')
>>> field_path(lambda s, n: s.timers[n].config, indexed=True)
('timers', INDEX, 'config')
>>> describe_path(("timers", INDEX, "config"))
's.timers[n].config'
>>> field_path(lambda s: s.regs.flags + 1)
Traceback (most recent call last):
  ...
qemu_api._fieldref.FieldRefError: the reference computes something instead of \
naming a field; write a chain of attribute reads like 'lambda s: s.regs.flags'
"""

from __future__ import annotations

import inspect
import sys
import typing
import weakref
from collections.abc import Callable, Iterator, Mapping
from types import FrameType, SimpleNamespace
from typing import Final, final

from qemu_api._compat import override
from qemu_api.bits import FixedUInt
from qemu_api.bql import BqlCell, BqlRefCell

__all__ = [
    "INDEX",
    "FieldRefError",
    "Step",
    "caller_namespaces",
    "describe_path",
    "field_path",
    "resolve_annotation",
    "type_name",
    "unwrap_annotation",
]


@final
class _Index:
    """The marker a register array's reference receives as its index."""

    __slots__ = ()

    @override
    def __repr__(self) -> str:
        return "INDEX"


INDEX: Final = _Index()
"""A path step: the element of the register array being accessed."""

Step = str | int | _Index
"""One step of a path: an attribute name, a constant index or :data:`INDEX`."""


class FieldRefError(Exception):
    """A reference is not a chain of attribute reads (the caller adds context)."""


_NOT_A_PATH: Final = (
    "the reference computes something instead of naming a field; write a "
    "chain of attribute reads like 'lambda s: s.regs.flags'"
)


@final
class _Recorder:
    """Stands for the state while a reference runs; notes each attribute read."""

    __slots__ = ("_pyqemu_steps",)

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self._pyqemu_steps = steps

    def __getattr__(self, name: str) -> _Recorder:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Recorder((*self._pyqemu_steps, name))

    def __getitem__(self, key: object) -> _Recorder:
        if key is INDEX or (
            isinstance(key, int) and not isinstance(key, bool) and key >= 0
        ):
            assert isinstance(key, int | _Index)
            return _Recorder((*self._pyqemu_steps, key))
        raise FieldRefError(
            f"the reference indexes with {key!r}; index with the array's index "
            "argument ('lambda s, n: s.regs.prio[n]') or a constant"
        )

    def __call__(self, *args: object, **kwargs: object) -> _Recorder:
        steps = self._pyqemu_steps
        if steps and steps[-1] == "get" and not args and not kwargs:
            return _Recorder(steps[:-1])
        raise FieldRefError(
            "the reference calls a method; only '.get()' of a BqlCell or "
            "BqlRefCell may appear in it ('lambda s: s.cell.get().field')"
        )

    def __iter__(self) -> typing.Iterator[object]:
        raise FieldRefError(_NOT_A_PATH)

    def __bool__(self) -> bool:
        raise FieldRefError(_NOT_A_PATH)


def field_path(
    ref: Callable[..., object], *, indexed: bool = False
) -> tuple[Step, ...]:
    """Return the attribute path that ``ref`` reads.

    Args:
        ref: ``lambda s: s.a.b`` (or ``lambda s, n: s.a[n].b`` when
            ``indexed``).
        indexed: pass :data:`INDEX` as a second argument.

    Raises:
        FieldRefError: ``ref`` does something other than reading attributes,
            or reads none.
    """
    if not callable(ref):
        raise FieldRefError(
            f"expected a reference like 'lambda s: s.regs.flags', got {ref!r}"
        )
    args: tuple[object, ...] = (_Recorder(()), INDEX) if indexed else (_Recorder(()),)
    try:
        out = ref(*args)
    except FieldRefError:
        raise
    except TypeError:
        raise FieldRefError(_NOT_A_PATH) from None
    if not isinstance(out, _Recorder):
        raise FieldRefError(_NOT_A_PATH)
    steps = out._pyqemu_steps
    if not steps or not isinstance(steps[0], str):
        raise FieldRefError(
            "the reference returns its argument itself; name a field of it "
            "('lambda s: s.regs.flags')"
        )
    return steps


def describe_path(steps: tuple[Step, ...]) -> str:
    """The path as the lambda body writes it: ``s.timers[n].config``."""
    out = "s"
    for step in steps:
        if isinstance(step, str):
            out += f".{step}"
        elif isinstance(step, _Index):
            out += "[n]"
        else:
            out += f"[{step}]"
    return out


def caller_namespaces(depth: int) -> list[Mapping[str, object]]:
    """The locals and globals of the frames above a function, nearest first.

    ``depth`` 0 starts at the function calling this one, 1 at its caller.  A
    declaration keeps them to evaluate string annotations of classes
    defined in a function body (tests, doctests).
    """
    spaces: list[Mapping[str, object]] = []
    frame: FrameType | None = sys._getframe(depth + 1)
    for _ in range(8):
        if frame is None:
            break
        spaces.append(frame.f_locals)
        spaces.append(frame.f_globals)
        frame = frame.f_back
    return spaces


def type_name(ann: object) -> str:
    """A short name of an annotation for messages (``u32``, ``list[int]``)."""
    if isinstance(ann, type):
        if issubclass(ann, FixedUInt):
            return ann._SHORT
        return ann.__name__
    return repr(ann).replace("typing.", "")


@final
class _Scopes(Mapping[str, object]):
    """Namespaces searched in order, without merging them."""

    __slots__ = ("_spaces",)

    def __init__(self, spaces: list[Mapping[str, object]]) -> None:
        self._spaces = spaces

    @override
    def __getitem__(self, key: str) -> object:
        for space in self._spaces:
            if key in space:
                return space[key]
        raise KeyError(key)

    @override
    def __iter__(self) -> Iterator[str]:
        return iter({k: None for space in self._spaces for k in space})

    @override
    def __len__(self) -> int:
        return len({k for space in self._spaces for k in space})


# owner -> attribute -> (evaluated annotation, declaring class); entries go
# with their class.
_resolved: weakref.WeakKeyDictionary[type, dict[str, tuple[object, type]]] = (
    weakref.WeakKeyDictionary()
)


def resolve_annotation(
    owner: type,
    attr: str,
    namespaces: list[Mapping[str, object]],
    error: Callable[[str], Exception],
) -> tuple[object, type]:
    """Return the evaluated annotation of ``owner.attr`` and the class declaring it.

    Args:
        owner: the class whose attribute is looked up (its MRO is searched).
        attr: the attribute.
        namespaces: extra namespaces to evaluate string annotations in.
        error: makes the exception to raise from a message.

    Raises:
        Exception: what ``error`` makes: no annotated attribute (with a
            suggestion), or an annotation that cannot be evaluated.
    """
    known_attrs = _resolved.get(owner)
    if known_attrs is not None:
        hit = known_attrs.get(attr)
        if hit is not None:
            return hit
    for klass in owner.__mro__:
        anns = inspect.get_annotations(klass)
        if attr not in anns:
            continue
        ann = anns[attr]
        if not isinstance(ann, str):
            return ann, klass
        module = sys.modules.get(klass.__module__)
        globalns: dict[str, object] = dict(vars(module)) if module else {}
        # The nearest namespace wins; looked up in place, not merged (a
        # declaration keeps up to 16 of them, module globals among them).
        localns = _Scopes([{owner.__name__: owner}, *namespaces])
        holder = SimpleNamespace(__annotations__={attr: ann})
        try:
            hints = typing.get_type_hints(
                holder, globalns, localns, include_extras=True
            )
        except (NameError, AttributeError, TypeError, SyntaxError) as exc:
            raise error(
                f"cannot evaluate the annotation '{ann}' of "
                f"{klass.__name__}.{attr} ({exc}); import the types it uses "
                "at module level, not under 'if TYPE_CHECKING:'"
            ) from None
        # A register map resolves the same attribute for each of its
        # (thousands of) array elements: evaluate each annotation once.
        _resolved.setdefault(owner, {})[attr] = (hints[attr], klass)
        return hints[attr], klass
    known = sorted({a for k in owner.__mro__ for a in inspect.get_annotations(k)})
    import difflib  # only for an error's suggestion

    close = difflib.get_close_matches(attr, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise error(
        f"{owner.__name__} has no annotated attribute '{attr}'{hint} (declare "
        f"it in the class body, e.g. '{attr}: u32')"
    )


def unwrap_annotation(ann: object) -> tuple[object, tuple[object, ...], str]:
    """Strip ``Annotated``, ``BqlCell`` and ``BqlRefCell``.

    Returns:
        The inner annotation, the ``Annotated`` metadata, and the name of the
        cell class that held it ("" if none).
    """
    meta: tuple[object, ...] = ()
    holder = ""
    while True:
        origin = typing.get_origin(ann)
        if origin is typing.Annotated:
            meta = meta + tuple(getattr(ann, "__metadata__", ()))
            ann = typing.get_args(ann)[0]
        elif origin in (BqlCell, BqlRefCell) or ann in (BqlCell, BqlRefCell):
            args = typing.get_args(ann)
            holder = getattr(origin or ann, "__name__", "")
            if not args:
                return object, meta, holder
            ann = args[0]
        else:
            return ann, meta, holder
