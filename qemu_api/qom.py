"""The QEMU Object Model: types, casts, the object tree and QOM properties.

This module models QEMU's QOM (``include/qom/object.h``, ``qom/object.c``,
``qom/container.c``) the way QEMU's Rust ``qom`` crate presents it:

- **Types** are Python classes. A class becomes a QOM type by naming it::

      class Timer(Object, type_name="my-timer"): ...

  ``__init_subclass__`` records a :class:`TypeInfo` (name, parent, abstract,
  interfaces) in the global type table, so ``object_new("my-timer")`` works and
  the type shows up in :func:`object_class_get_list`. Interfaces are mixin
  classes derived from :class:`Interface`.
- **Construction is all or nothing** (QEMU's pinned-init goal). ``Timer()``
  (or ``Timer.new()`` / :func:`object_new`) runs every ``instance_init`` from
  the base type down, then every ``instance_post_init``; only then is the object
  returned. Until it is returned the object cannot be attached to the tree. If
  an init hook raises, what the object had acquired is undone before the
  exception propagates: its resources are released (an armed timer cannot
  fire), its properties and children are torn down, and the
  ``instance_finalize`` of every class whose ``instance_init`` had completed
  runs. Objects take no constructor arguments: they are configured through
  properties afterwards. A hook never calls its parent's version
  (``super().instance_init()``): the framework chains them, and a class that
  does is refused when it is defined.
- **Resources die with their owner.** Timers, interrupt lines, clock
  callbacks, chardev handlers and address spaces that call into an object
  are *owned* by it (:class:`OwnedResource`, :meth:`Object.own_resource`);
  by default the owner is the object whose method the callback is
  (:func:`callback_owner`). Finalizing the object releases them, so nothing
  calls into a dead object.
- **The object tree** starts at :func:`object_get_root`. ``child<T>``
  properties make an object own another (paths like ``/machine/unattached``);
  ``link<T>`` properties point at objects elsewhere in the tree.
  :meth:`Object.unparent` detaches an object and tears down its subtree.
- **Properties** have QEMU's type strings (``"bool"``, ``"uint32"``, ``"str"``,
  ``"child<pl011>"``, ``"link<irq>"``) and exchange JSON-like Python values
  (:data:`JSONValue`), which is what ``qom-get``/``qom-set`` carry.
  :func:`qom_get`, :func:`qom_set` and :func:`qom_list` mirror those QMP
  commands.

Example:
    >>> class Greeter(Object, type_name="doc-greeter"):
    ...     def instance_init(self) -> None:
    ...         self.greeting = "hello"
    ...         self.property_add_str(
    ...             "greeting", lambda: self.greeting, self._set_greeting
    ...         )
    ...
    ...     def _set_greeting(self, value: str) -> None:
    ...         self.greeting = value
    >>> g = Greeter()
    >>> root = Container()
    >>> _ = root.property_add_child("greeter", g)
    >>> g.property_set("greeting", "hi")
    >>> g.property_get("greeting")
    'hi'
    >>> root.property_find("greeter").type
    'child<doc-greeter>'
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import (
    ClassVar,
    Final,
    NamedTuple,
    Protocol,
    Self,
    TypeAlias,
    TypeVar,
    final,
)

from qemu_api._compat import override
from qemu_api.error import Error, ErrorClass

__all__ = [
    "TYPE_CONTAINER",
    "TYPE_INTERFACE",
    "TYPE_OBJECT",
    "Container",
    "Interface",
    "JSONValue",
    "LinkCheck",
    "Object",
    "ObjectProperty",
    "ObjectPropertyInfo",
    "OwnedResource",
    "PathResolution",
    "TypeInfo",
    "TypeStub",
    "callback_owner",
    "container_get",
    "object_cast",
    "object_class_by_name",
    "object_class_dynamic_cast",
    "object_class_get_list",
    "object_dynamic_cast",
    "object_get_canonical_path",
    "object_get_objects_root",
    "object_get_root",
    "object_new",
    "object_property_add_child",
    "object_property_add_link",
    "object_property_allow_set_link",
    "object_property_get",
    "object_property_set",
    "object_resolve_path",
    "object_resolve_path_component",
    "object_resolve_path_full",
    "object_resolve_path_type",
    "object_tree_reset",
    "object_unparent",
    "override",
    "qom_get",
    "qom_list",
    "qom_set",
    "type_get_names",
    "type_get_parent",
    "type_info",
    "type_is_ancestor",
    "type_is_ancestor_unloaded",
    "type_register_stub",
    "type_set_loader",
    "type_unregister_stubs",
    "visit_type_bool",
    "visit_type_int",
    "visit_type_str",
]

TYPE_OBJECT = "object"
"""Name of the root QOM type (``TYPE_OBJECT``)."""
TYPE_INTERFACE = "interface"
"""Name of the root interface type (``TYPE_INTERFACE``)."""
TYPE_CONTAINER = "container"
"""Name of the container type used for tree nodes (``TYPE_CONTAINER``)."""

JSONValue: TypeAlias = (
    bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None
)
"""A JSON-like value, as carried by ``qom-get`` and ``qom-set``."""

T = TypeVar("T")
ObjT = TypeVar("ObjT", bound="Object")

LinkCheck: TypeAlias = Callable[["Object", str, "Object | None"], None]
"""Checks a new link target: ``check(owner, property_name, target)``.

It raises :class:`~qemu_api.error.Error` to refuse the change (QEMU's
``check`` argument of ``object_property_add_link``).
"""


class OwnedResource(Protocol):
    """Something that calls into an object and must not outlive it.

    Timers (:class:`~qemu_api.timer.Timer`), interrupt lines
    (:class:`~qemu_api.irq.IRQState`), clock callbacks
    (:class:`~qemu_api.clock.Clock`), chardev handlers
    (:class:`~qemu_api.chardev.CharBackend`) and address spaces
    (:class:`~qemu_api.memory.AddressSpace`) implement it; they give
    themselves to their owner with :meth:`Object.own_resource` when they are
    created with one. The owner calls the two methods at the end of its life:

    - :meth:`owner_quiesce` when a device is unrealized: stop acting on the
      owner for now (a timer is disarmed, chardev handlers are removed), but
      stay usable, since the device may be realized again;
    - :meth:`owner_release` when the owner is finalized (or, for a resource
      created while a device was realized, when it is unrealized): drop every
      reference into the owner for good. It may be called more than once.
    """

    def owner_quiesce(self) -> None:
        """The owning device was unrealized: stop calling into it for now."""

    def owner_release(self) -> None:
        """The owner is going away: never call into it again."""


def callback_owner(callback: Callable[..., object]) -> Object | None:
    """Return the QOM object whose method ``callback`` is, or None.

    This is the default owner of a timer, an interrupt handler, a clock
    callback or chardev handlers: a callback that is a method of a device
    (``self.timer_expired``), possibly wrapped in :func:`functools.partial`,
    dies with the device. For a lambda or another function the owner cannot
    be known: pass ``owner=`` explicitly.

    >>> c = Container()
    >>> callback_owner(c.typename) is c, callback_owner(lambda: None)
    (True, None)
    """
    fn: object = callback
    while isinstance(fn, functools.partial):
        fn = fn.func
    if isinstance(fn, types.MethodType):
        owner = fn.__self__
        if isinstance(owner, Object):
            return owner
    return None


def _calls_own_hook(code: types.CodeType, name: str) -> bool:
    """Whether ``code`` (or code nested in it) refers to attribute ``name``."""
    if name in code.co_names:
        return True
    return any(
        isinstance(const, types.CodeType) and _calls_own_hook(const, name)
        for const in code.co_consts
    )


# Hooks the framework chains from the base type down (or up, for finalize):
# a class that calls its parent's version would run it twice.
_CHAINED_HOOKS: Final = ("instance_init", "instance_post_init", "instance_finalize")


@final
@dataclass(frozen=True)
class TypeInfo:
    """The registration record of one QOM type (QEMU's ``TypeInfo``).

    Attributes:
        name: the type name, e.g. ``"pl011"``.
        parent: the parent type name; ``None`` only for ``"object"`` and
            ``"interface"``.
        abstract: abstract types cannot be instantiated.
        interfaces: names of the interfaces this type declares directly.
        cls: the Python class that implements the type.
    """

    name: str
    parent: str | None
    abstract: bool
    interfaces: tuple[str, ...]
    cls: type[Object] | type[Interface]


_type_table: dict[str, TypeInfo] = {}


@final
@dataclass(frozen=True)
class TypeStub:
    """A QOM type that a module provides but that is not loaded yet.

    Device modules (:mod:`qemu_api.module`) announce their types with stubs,
    so lookups can load the module on first use and listings can show the
    type without importing it (QEMU's modinfo ``objs``).

    Attributes:
        name: the type name.
        parent: the parent type name.
        abstract: whether the type is abstract.
        interfaces: names of the interfaces it declares directly.
        module: the module (:class:`qemu_api.module.ModuleInfo` name) that
            defines it.
    """

    name: str
    parent: str | None
    abstract: bool
    interfaces: tuple[str, ...]
    module: str


_type_stubs: dict[str, TypeStub] = {}
_type_loader: Callable[[TypeStub], None] | None = None


def type_register_stub(stub: TypeStub) -> None:
    """Announce a type that a module provides (it loads on first lookup).

    A stub for a type that is already registered is ignored.
    """
    if stub.name not in _type_table:
        _type_stubs[stub.name] = stub


def type_unregister_stubs(module: str) -> None:
    """Forget the stubs of *module* (its types are loaded or it went away)."""
    for name in [n for n, s in _type_stubs.items() if s.module == module]:
        del _type_stubs[name]


def type_set_loader(loader: Callable[[TypeStub], None] | None) -> None:
    """Install the function that loads the module of a stub on first lookup.

    The loader imports the module (which registers the type) or raises
    :class:`~qemu_api.error.Error` naming the module and the cause.
    """
    global _type_loader
    _type_loader = loader


def _lookup(name: str) -> TypeInfo | None:
    """The registration record of *name*, loading its module if needed."""
    info = _type_table.get(name)
    if info is not None:
        return info
    stub = _type_stubs.get(name)
    if stub is None or _type_loader is None:
        return None
    _type_loader(stub)
    _type_stubs.pop(name, None)
    info = _type_table.get(name)
    if info is None:
        raise Error(
            f"module '{stub.module}' was loaded but does not define QOM type '{name}'",
            hint="the module registry or the package's entry points are out of "
            "date: rebuild pyqemu or reinstall the device package\n",
        )
    return info


def _known(name: str) -> tuple[str | None, bool, tuple[str, ...]] | None:
    """(parent, abstract, interfaces) of a registered or announced type."""
    info = _type_table.get(name)
    if info is not None:
        return info.parent, info.abstract, info.interfaces
    stub = _type_stubs.get(name)
    if stub is not None:
        return stub.parent, stub.abstract, stub.interfaces
    return None


def type_is_ancestor_unloaded(name: str, ancestor: str) -> bool:
    """Like :func:`type_is_ancestor`, without loading any module.

    Announced types (:class:`TypeStub`) answer from their declared parent and
    interfaces; interfaces inherited from ancestors count.

    >>> type_is_ancestor_unloaded("container", "object")
    True
    """
    seen: set[str] = set()
    todo = [name]
    while todo:
        cur = todo.pop()
        if cur == ancestor:
            return True
        if cur in seen:
            continue
        seen.add(cur)
        known = _known(cur)
        if known is None:
            continue
        parent, _abstract, interfaces = known
        if parent is not None:
            todo.append(parent)
        todo.extend(interfaces)
        info = _type_table.get(cur)
        if info is not None:
            # interfaces inherited through Python bases count as in QEMU
            todo.extend(
                b.TYPE_NAME for b in info.cls.__mro__[1:] if issubclass(b, Interface)
            )
    return False


def type_get_names(
    implements: str | None = None, include_abstract: bool = False
) -> list[tuple[str, str | None, bool]]:
    """List every type, loaded or announced, without loading any module.

    Args:
        implements: only types that are (or implement) this type name.
        include_abstract: include abstract types too.

    Returns:
        ``(name, parent, abstract)`` for each type, sorted by name: the data of
        QMP ``qom-list-types``. Interfaces are left out, as QEMU does.

    >>> ("container", "object", False) in type_get_names("object")
    True
    """
    out: list[tuple[str, str | None, bool]] = []
    for name in sorted(set(_type_table) | set(_type_stubs)):
        info = _type_table.get(name)
        if info is not None and not issubclass(info.cls, Object):
            continue
        known = _known(name)
        assert known is not None
        parent, abstract, _ifaces = known
        if info is None and not type_is_ancestor_unloaded(name, TYPE_OBJECT):
            continue
        if abstract and not include_abstract:
            continue
        if implements is not None and not type_is_ancestor_unloaded(name, implements):
            continue
        out.append((name, parent, abstract))
    return out


def _register(info: TypeInfo) -> None:
    if info.name in _type_table:
        raise TypeError(
            f"Registering '{info.name}' which already exists "
            f"(as {_type_table[info.name].cls.__qualname__}): "
            "QOM type names must be unique, pick another type_name"
        )
    _type_table[info.name] = info
    _type_stubs.pop(info.name, None)


def type_info(name: str) -> TypeInfo | None:
    """Return the registration record of type ``name``, or None if unknown.

    >>> type_info("container").parent
    'object'
    """
    return _lookup(name)


def type_get_parent(name: str) -> str | None:
    """Return the parent type name of ``name`` (None for a root or unknown type).

    >>> type_get_parent("container")
    'object'
    """
    info = _lookup(name)
    return info.parent if info else None


def type_is_ancestor(name: str, ancestor: str) -> bool:
    """Whether type ``name`` is ``ancestor`` or derives from it.

    Interfaces count: a type is a descendant of every interface it implements.

    >>> type_is_ancestor("container", "object")
    True
    >>> type_is_ancestor("object", "container")
    False
    """
    info = _lookup(name)
    target = _lookup(ancestor)
    if info is None or target is None:
        return False
    return issubclass(info.cls, target.cls)


def object_class_by_name(name: str) -> type[Object] | None:
    """Return the class of the (non-interface) type ``name``, or None.

    >>> object_class_by_name("container") is Container
    True
    """
    info = _lookup(name)
    if info is None or not issubclass(info.cls, Object):
        return None
    return info.cls


def object_class_dynamic_cast(cls: type[Object], name: str) -> type[Object] | None:
    """Return ``cls`` if it is type ``name`` or a subtype of it, else None.

    This is QEMU's ``object_class_dynamic_cast``; ``name`` may be an interface.
    """
    target = _type_table.get(name)
    if target is None or not issubclass(cls, target.cls):
        return None
    return cls


def object_class_get_list(
    implements: str | None = None, include_abstract: bool = False
) -> list[type[Object]]:
    """List registered object classes, optionally those implementing a type.

    Args:
        implements: only classes that are (or implement) this type name.
        include_abstract: include abstract types too.

    Returns:
        The classes, sorted by type name.

    >>> Container in object_class_get_list("object")
    True
    """
    out: list[type[Object]] = []
    for name in sorted(_type_table):
        cls = object_class_by_name(name)
        if cls is None:
            continue
        if not include_abstract and _type_table[name].abstract:
            continue
        if (
            implements is not None
            and object_class_dynamic_cast(cls, implements) is None
        ):
            continue
        out.append(cls)
    return out


def _type_name_of(cls: type[object]) -> str:
    name = cls.__dict__.get("TYPE_NAME")
    return name if isinstance(name, str) else cls.__qualname__


class Interface:
    """Base of QOM interfaces (QEMU's ``InterfaceClass``, ``TYPE_INTERFACE``).

    An interface is a mixin class with its own type name. An object type
    implements it by listing it among its bases; casts to the interface then
    succeed (:func:`object_dynamic_cast`, :meth:`Object.dynamic_cast`)::

        class Resettable(Interface, type_name="resettable"): ...


        class MyDevice(Object, Resettable, type_name="my-device"): ...
    """

    TYPE_NAME: ClassVar[str] = TYPE_INTERFACE

    @override
    def __init_subclass__(
        cls, *, type_name: str | None = None, **kwargs: object
    ) -> None:
        """Register an interface type (object types register in :class:`Object`)."""
        super().__init_subclass__(**kwargs)
        if issubclass(cls, Object):
            return
        if type_name is None:
            raise TypeError(
                f"interface class {cls.__qualname__} must name its QOM type: "
                f"class {cls.__name__}(Interface, type_name='my-interface')"
            )
        parents = [b for b in cls.__bases__ if issubclass(b, Interface)]
        cls.TYPE_NAME = type_name
        _register(
            TypeInfo(
                name=type_name,
                parent=parents[0].TYPE_NAME if parents else TYPE_INTERFACE,
                abstract=True,
                interfaces=(),
                cls=cls,
            )
        )


@final
class ObjectProperty:
    """One entry of an object's property table (QEMU's ``ObjectProperty``).

    Accessors are bound to their object: ``get()`` returns a JSON-like value,
    ``set(value)`` takes one and raises :class:`~qemu_api.error.Error` if it
    does not fit. ``resolve()`` (only for ``child<>`` and ``link<>``) returns
    the object the property points at, for path resolution.

    Its public fields are ``name``; ``type``, QEMU's type string such as
    ``"uint32"`` or ``"link<irq>"``; ``description``, the help text or None;
    ``default_value``, the default when the property declares one; and
    ``has_default``, whether ``default_value`` is meaningful.
    """

    __slots__ = (
        "_get",
        "_release",
        "_resolve",
        "_set",
        "default_value",
        "description",
        "has_default",
        "name",
        "type",
    )

    def __init__(
        self,
        name: str,
        prop_type: str,
        *,
        getter: Callable[[], JSONValue] | None = None,
        setter: Callable[[JSONValue], None] | None = None,
        resolve: Callable[[], Object | None] | None = None,
        release: Callable[[], None] | None = None,
        description: str | None = None,
        default_value: JSONValue = None,
        has_default: bool = False,
    ) -> None:
        self.name = name
        self.type = prop_type
        self.description = description
        self.default_value = default_value
        self.has_default = has_default
        self._get = getter
        self._set = setter
        self._resolve = resolve
        self._release = release

    @property
    def readable(self) -> bool:
        """Whether the property has a getter."""
        return self._get is not None

    @property
    def writable(self) -> bool:
        """Whether the property has a setter."""
        return self._set is not None

    def is_child(self) -> bool:
        """Whether this is a ``child<>`` property (``object_property_is_child``)."""
        return self.type.startswith("child<")

    def is_link(self) -> bool:
        """Whether this is a ``link<>`` property (QEMU ``object_property_is_link``)."""
        return self.type.startswith("link<")

    @override
    def __repr__(self) -> str:
        return f"<ObjectProperty {self.name!r} type={self.type!r}>"


@final
@dataclass(frozen=True)
class ObjectPropertyInfo:
    """One row of ``qom-list`` / ``device-list-properties``.

    Its fields are ``name``; ``type``, QEMU's type string; ``description``,
    the help text or None; and ``default_value``, the default value or None
    when there is none.
    """

    name: str
    type: str
    description: str | None = None
    default_value: JSONValue = None


class PathResolution(NamedTuple):
    """Result of :func:`object_resolve_path_full`.

    ``obj`` is the object found, or None; ``ambiguous`` is True when a
    partial path matched more than one object.
    """

    obj: Object | None
    ambiguous: bool


def visit_type_bool(name: str, value: JSONValue) -> bool:
    """Check that a property input value is a boolean and return it.

    Raises:
        Error: "Invalid parameter type for 'NAME', expected: boolean".

    >>> visit_type_bool("x", True)
    True
    """
    if not isinstance(value, bool):
        raise Error(f"Invalid parameter type for '{name}', expected: boolean")
    return value


def visit_type_int(name: str, value: JSONValue) -> int:
    """Check that a property input value is an integer and return it.

    Raises:
        Error: "Invalid parameter type for 'NAME', expected: integer".

    >>> visit_type_int("x", 3)
    3
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise Error(f"Invalid parameter type for '{name}', expected: integer")
    return value


def visit_type_str(name: str, value: JSONValue) -> str:
    """Check that a property input value is a string and return it.

    Raises:
        Error: "Invalid parameter type for 'NAME', expected: string".

    >>> visit_type_str("x", "abc")
    'abc'
    """
    if not isinstance(value, str):
        raise Error(f"Invalid parameter type for '{name}', expected: string")
    return value


def object_property_allow_set_link(
    owner: Object, name: str, target: Object | None
) -> None:
    """Link check that allows every change (QEMU ``object_property_allow_set_link``)."""


class Object:
    """Base of every QOM object (QEMU's ``Object``, ``TYPE_OBJECT``).

    Subclass with a type name; define ``instance_init`` (and optionally
    ``instance_post_init``, ``instance_finalize``, ``class_init``) instead of
    ``__init__``. The framework chains the hooks as QEMU does: every class's
    ``instance_init`` runs from the base type down, then every
    ``instance_post_init``; ``instance_finalize`` runs from the most derived
    type up. So a hook never calls ``super()``: a class whose
    ``instance_init``, ``instance_post_init`` or ``instance_finalize`` calls
    its parent's (``super().instance_init()``, ``Parent.instance_init(self)``)
    is refused with a :class:`TypeError` when it is defined, because the
    parent's hook would run twice.

    >>> class Dummy(Object, type_name="doc-dummy"):
    ...     def instance_init(self) -> None:
    ...         self.value = 42
    >>> d = Dummy.new()
    >>> d.typename(), d.value, d.parent is None
    ('doc-dummy', 42, True)
    >>> class Twice(Dummy, type_name="doc-twice"):
    ...     def instance_init(self) -> None:
    ...         super().instance_init()
    Traceback (most recent call last):
    ...
    TypeError: Twice.instance_init calls instance_init (super().instance_init() \
or Parent.instance_init(self)): QOM runs the instance_init of every class from \
the base type down by itself, so the parent's would run twice; remove the call
    """

    TYPE_NAME: ClassVar[str] = TYPE_OBJECT

    @override
    def __init_subclass__(
        cls, *, type_name: str | None = None, abstract: bool = False, **kwargs: object
    ) -> None:
        """Register the subclass as QOM type ``type_name``.

        Args:
            type_name: the QOM type name (required).
            abstract: whether the type may not be instantiated.
            **kwargs: passed on to other ``__init_subclass__`` methods.

        Raises:
            TypeError: on a missing or duplicate type name, on an ``__init__``
                override, when two object classes are bases, or when a
                chained hook calls its parent's version.
        """
        super().__init_subclass__(**kwargs)
        if type_name is None:
            raise TypeError(
                f"class {cls.__qualname__} must name its QOM type: "
                f"class {cls.__name__}(Parent, type_name='my-type')"
            )
        if "__init__" in cls.__dict__:
            raise TypeError(
                f"QOM class {cls.__qualname__} defines __init__: define "
                "instance_init(self) instead; QOM objects are created without "
                "arguments and configured through properties"
            )
        obj_bases = [b for b in cls.__bases__ if issubclass(b, Object)]
        if len(obj_bases) != 1:
            raise TypeError(
                f"QOM class {cls.__qualname__} must derive from exactly one object "
                "class (QOM is single inheritance; add behaviour with Interface mixins)"
            )
        for hook_name in _CHAINED_HOOKS:
            fn = cls.__dict__.get(hook_name)
            code = getattr(fn, "__code__", None)
            if isinstance(code, types.CodeType) and _calls_own_hook(code, hook_name):
                order = (
                    "from the most derived type up"
                    if hook_name == "instance_finalize"
                    else "from the base type down"
                )
                raise TypeError(
                    f"{cls.__qualname__}.{hook_name} calls {hook_name} "
                    f"(super().{hook_name}() or Parent.{hook_name}(self)): QOM "
                    f"runs the {hook_name} of every class {order} by itself, so "
                    "the parent's would run twice; remove the call"
                )
        interfaces = tuple(
            b.TYPE_NAME
            for b in cls.__bases__
            if issubclass(b, Interface) and not issubclass(b, Object)
        )
        cls.TYPE_NAME = type_name
        _register(
            TypeInfo(
                name=type_name,
                parent=obj_bases[0].TYPE_NAME,
                abstract=abstract,
                interfaces=interfaces,
                cls=cls,
            )
        )
        init_chain: list[tuple[type, tuple[Callable[[Object], None], ...]]] = []
        post_hooks: list[Callable[[Object], None]] = []
        for klass in reversed(cls.__mro__):
            hooks = tuple(
                hook
                for hook_name in ("_qom_instance_init", "instance_init")
                if (hook := klass.__dict__.get(hook_name)) is not None
            )
            init_chain.append((klass, hooks))
            hook = klass.__dict__.get("instance_post_init")
            if hook is not None:
                post_hooks.append(hook)
        cls._qom_init_chain = tuple(init_chain)
        cls._qom_post_init_hooks = tuple(post_hooks)
        own_class_init = cls.__dict__.get("class_init")
        if own_class_init is not None:
            cls.class_init()

    _qom_init_chain: ClassVar[
        tuple[tuple[type, tuple[Callable[[Object], None], ...]], ...]
    ] = ()
    _qom_post_init_hooks: ClassVar[tuple[Callable[[Object], None], ...]] = ()

    def __init__(self) -> None:
        """Create the object: run all init hooks, or raise and leave no trace."""
        cls = type(self)
        info = _type_table.get(cls.TYPE_NAME)
        if info is None or info.cls is not cls:
            raise TypeError(f"{cls.__qualname__} is not a registered QOM type")
        if info.abstract:
            raise Error(
                f"object type '{cls.TYPE_NAME}' is abstract",
                hint="instantiate one of its concrete subtypes",
            )
        self._properties: dict[str, ObjectProperty] = {}
        self._link_setters: dict[str, Callable[[Object | None], None]] = {}
        self._parent: Object | None = None
        self._name: str | None = None
        self._qom_owned: list[OwnedResource] = []
        # Where own_resource() puts new resources; a device switches it to a
        # list of its own while it is realized.
        self._qom_scope = self._qom_owned
        self._finalized = False
        self._initializing = True
        completed: list[type] = []
        try:
            for klass, hooks in cls._qom_init_chain:
                for hook in hooks:
                    hook(self)
                completed.append(klass)
            for hook in cls._qom_post_init_hooks:
                hook(self)
        except BaseException as exc:
            _abort_construction(self, completed, exc)
            raise
        self._initializing = False

    # -- hooks ------------------------------------------------------------

    @classmethod
    def class_init(cls) -> None:
        """Class initialisation hook, run once when the class is defined."""

    def _qom_instance_init(self) -> None:
        """Framework part of instance initialisation, before ``instance_init``."""

    def instance_init(self) -> None:
        """Instance initialisation hook (QEMU ``instance_init``).

        Create what the object owns. Do not call ``super().instance_init()``:
        the hooks of the parent types have already run.
        """

    def instance_post_init(self) -> None:
        """Hook run after every ``instance_init`` (QEMU ``instance_post_init``)."""

    def instance_finalize(self) -> None:
        """Hook run when the object is torn down after :meth:`unparent`.

        It runs after the object's resources were released and its
        properties and children torn down, most derived type first. It also
        runs for every class whose ``instance_init`` had completed when a
        later init hook raised.
        """

    def _qom_instance_finalize(self) -> None:
        """Framework part of finalization, after ``instance_finalize``."""

    def instance_unparent(self) -> None:
        """Hook run when the object is detached from its parent (QEMU ``unparent``).

        Devices use it to unrealize themselves. Overrides should call super.
        """

    # -- lifetime -----------------------------------------------------------

    def is_finalized(self) -> bool:
        """Whether the object was torn down (or its construction failed).

        A finalized object owns nothing any more: nothing calls into it.
        """
        return self._finalized

    def own_resource(self, resource: OwnedResource) -> None:
        """Make this object the owner of ``resource``, which must not outlive it.

        The resource's :meth:`~OwnedResource.owner_release` runs when the
        object is finalized, in the reverse order of ownership; for a device,
        a resource taken while it is realized (or realizing) is released when
        it is unrealized, and :meth:`~OwnedResource.owner_quiesce` runs on
        every resource at unrealize. Timers, interrupt lines, clock
        callbacks, chardev handlers and address spaces call this themselves
        when they are given an owner.

        Raises:
            Error: the object is finalized; a dead object cannot own anything.

        >>> class Probe:
        ...     def owner_quiesce(self) -> None: ...
        ...     def owner_release(self) -> None:
        ...         print("released")
        >>> c = Container()
        >>> c.own_resource(Probe())
        >>> root = Container()
        >>> _ = root.property_add_child("c", c)
        >>> c.unparent()
        released
        """
        if self._finalized:
            raise Error(
                f"{self!r} is finalized and cannot own {resource!r}",
                hint="create timers, interrupt lines and handlers while their "
                "owner is alive (in instance_init or realize)",
            )
        self._qom_scope.append(resource)

    def disown_resource(self, resource: OwnedResource) -> None:
        """Forget ``resource`` without releasing it (it was released already).

        Does nothing if this object does not own it.
        """
        for owned in (self._qom_scope, self._qom_owned):
            for i, res in enumerate(owned):
                if res is resource:
                    del owned[i]
                    return

    # -- identity and casts -----------------------------------------------

    @classmethod
    def new(cls) -> Self:
        """Create an object of this type (typed ``object_new``)."""
        return cls()

    def typename(self) -> str:
        """The QOM type name (``object_get_typename``)."""
        return self.TYPE_NAME

    def dynamic_cast(self, cls: type[T]) -> T | None:
        """Return this object as ``cls`` if it is one, else None.

        ``cls`` may be an object class or an :class:`Interface`.
        """
        if isinstance(self, cls):
            return self
        return None

    def cast(self, cls: type[T]) -> T:
        """Return this object as ``cls`` or raise (checked ``OBJECT_CHECK``).

        Raises:
            Error: "object of type 'X' is not an instance of 'Y'".
        """
        return object_cast(self, cls)

    # -- tree ----------------------------------------------------------------

    @property
    def parent(self) -> Object | None:
        """The object owning this one through a ``child<>`` property, or None."""
        return self._parent

    @property
    def name_in_parent(self) -> str | None:
        """The child property name in the parent.

        QEMU's ``object_get_canonical_path_component``.
        """
        return self._name

    def canonical_path(self) -> str | None:
        """The absolute path from the root, or None if not attached to the root.

        >>> object_tree_reset()
        >>> c = container_get(object_get_root(), "/machine/peripheral")
        >>> c.canonical_path()
        '/machine/peripheral'
        """
        parts: list[str] = []
        obj: Object = self
        root = object_get_root()
        while obj is not root:
            if obj._parent is None or obj._name is None:
                return None
            parts.append(obj._name)
            obj = obj._parent
        return "/" + "/".join(reversed(parts))

    def children(self) -> Iterator[Object]:
        """Iterate over the direct children (``object_child_foreach``)."""
        for prop in list(self._properties.values()):
            if prop.is_child() and prop._resolve is not None:
                child = prop._resolve()
                if child is not None:
                    yield child

    def property_add_child(self, name: str, child: ObjT) -> ObjT:
        """Make ``child`` a child of this object (``object_property_add_child``).

        A name ending in ``[*]`` picks the first free ``name[N]``.

        Returns:
            ``child``, for chaining.

        Raises:
            Error: the child already has a parent, is still being initialised,
                or the name is taken.
        """
        if child._finalized or self._finalized:
            dead = child if child._finalized else self
            raise Error(
                f"cannot add child '{name}': {dead!r} was finalized",
                hint="a torn-down object cannot be put back in the tree; "
                "create a new one",
            )
        if child._initializing:
            raise Error(
                f"object of type '{child.typename()}' cannot be added as child "
                f"'{name}' while it is still being initialised",
                hint="add children from the parent's instance_init, or after "
                "the child has been created",
            )
        if child._parent is not None:
            raise Error(
                f"object of type '{child.typename()}' already has a parent "
                f"(as '{child._name}'); unparent() it before adding it as '{name}'"
            )
        if child is self or self._is_descendant_of(child):
            raise Error(f"adding child '{name}' would create a cycle in the QOM tree")
        name = self._free_name(name)
        prop = ObjectProperty(
            name,
            f"child<{child.typename()}>",
            getter=child.canonical_path,
            resolve=lambda: child,
            release=lambda: _finalize_child(child),
        )
        self._add_property(prop)
        child._parent = self
        child._name = name
        return child

    def _is_descendant_of(self, other: Object) -> bool:
        obj = self._parent
        while obj is not None:
            if obj is other:
                return True
            obj = obj._parent
        return False

    def property_add_link(
        self,
        name: str,
        target_type: type[ObjT],
        get_target: Callable[[], ObjT | None],
        set_target: Callable[[ObjT | None], None],
        check: LinkCheck | None = object_property_allow_set_link,
    ) -> ObjectProperty:
        """Add a ``link<T>`` property (``object_property_add_link``).

        The link reads as the target's canonical path (``""`` when unset) and
        is written with a path, resolved as QEMU does: an ambiguous partial
        path, a missing object or one of the wrong type is an error. ``check``
        may refuse a change; with ``check=None`` the link is read-only.

        Args:
            name: the property name.
            target_type: the class every target must be an instance of.
            get_target: returns the current target.
            set_target: stores a new target (None to clear it).
            check: validates a change before ``set_target`` is called.

        Returns:
            The new property.
        """
        tname = target_type.TYPE_NAME

        def getter() -> JSONValue:
            target = get_target()
            if target is None:
                return ""
            return target.canonical_path() or ""

        def setter(value: JSONValue) -> None:
            path = visit_type_str(name, value)
            target: Object | None = None
            if path:
                found, ambiguous = object_resolve_path_full(path, tname)
                if ambiguous:
                    raise Error(f"Path '{path}' does not uniquely identify an object")
                if found is None:
                    any_obj, amb = object_resolve_path_full(path)
                    if any_obj is not None or amb:
                        got = (
                            f"'{path}' is a {any_obj.typename()}"
                            if any_obj is not None
                            else f"'{path}' matches no {tname}"
                        )
                        raise Error(
                            f"Invalid parameter type for '{name}', expected: {tname}",
                            hint=f"{got}; link<{tname}> takes the path of a {tname}.\n",
                        )
                    raise Error(
                        f"Device '{path}' not found",
                        error_class=ErrorClass.DEVICE_NOT_FOUND,
                    )
                target = found
            assign(target)

        def assign(target: Object | None) -> None:
            typed: ObjT | None = None
            if target is not None:
                typed = target.dynamic_cast(target_type)
                if typed is None:
                    raise Error(
                        f"Invalid parameter type for '{name}', expected: {tname}",
                        hint=f"The target is a {target.typename()}; "
                        f"link<{tname}> takes a {target_type.__name__}.\n",
                    )
            if check is None:
                raise Error(f"Property '{self.typename()}.{name}' is not writable")
            check(self, name, typed)
            set_target(typed)

        prop = ObjectProperty(
            name,
            f"link<{tname}>",
            getter=getter,
            setter=setter if check is not None else None,
            resolve=get_target,
        )
        self._add_property(prop)
        self._link_setters[name] = assign
        return prop

    def property_set_link(self, name: str, target: Object | None) -> None:
        """Point link property ``name`` at ``target`` (``object_property_set_link``).

        Unlike setting the path, this works for targets not yet in the tree.

        Raises:
            Error: no such link, wrong target type, or the link check refused.
        """
        assign = self._link_setters.get(name)
        if assign is None:
            self._find_err(name)
            raise Error(f"Property '{self.typename()}.{name}' is not a link")
        assign(target)

    def _detach(self) -> None:
        """Remove the object from its parent without tearing it down."""
        parent = self._parent
        if parent is not None and self._name is not None:
            parent._properties.pop(self._name, None)
        self._parent = None
        self._name = None

    def unparent(self) -> None:
        """Detach from the parent and tear down this subtree (``object_unparent``).

        The object's ``instance_unparent`` hook runs (a device unrealizes),
        then what it owns is released (:meth:`own_resource`), its properties
        and children are torn down depth-first, and ``instance_finalize``
        runs. An object without a parent (one that was created and is being
        dropped, as after a failed configuration) is torn down the same way:
        QEMU's ``object_unparent`` followed by the creator's
        ``object_unref``. The root of the tree is never torn down this way
        (see :func:`object_tree_reset`).

        >>> c = Container()
        >>> c.unparent()
        >>> c.is_finalized()
        True
        """
        parent = self._parent
        if parent is None or self._name is None:
            if self is not _root and not self._initializing and not self._finalized:
                _finalize_child(self)
            return
        prop = parent._properties.get(self._name)
        if prop is not None and prop.is_child():
            del parent._properties[self._name]
            if prop._release is not None:
                prop._release()

    # -- properties ------------------------------------------------------------

    def _free_name(self, name: str) -> str:
        if name.endswith("[*]"):
            base = name[:-3]
            i = 0
            while f"{base}[{i}]" in self._properties:
                i += 1
            return f"{base}[{i}]"
        return name

    def _add_property(self, prop: ObjectProperty) -> ObjectProperty:
        if prop.name in self._properties:
            raise Error(
                f"attempt to add duplicate property '{prop.name}' to object "
                f"(type '{self.typename()}')"
            )
        self._properties[prop.name] = prop
        return prop

    def property_add(self, prop: ObjectProperty) -> ObjectProperty:
        """Add a property built by hand (``object_property_add``).

        A name ending in ``[*]`` picks the first free ``name[N]``.

        Raises:
            Error: a property with that name already exists.
        """
        prop.name = self._free_name(prop.name)
        return self._add_property(prop)

    def property_add_bool(
        self,
        name: str,
        getter: Callable[[], bool],
        setter: Callable[[bool], None] | None = None,
        description: str | None = None,
    ) -> ObjectProperty:
        """Add a ``"bool"`` property (``object_property_add_bool``)."""

        def set_json(value: JSONValue) -> None:
            assert setter is not None
            setter(visit_type_bool(name, value))

        return self.property_add(
            ObjectProperty(
                name,
                "bool",
                getter=getter,
                setter=set_json if setter is not None else None,
                description=description,
            )
        )

    def property_add_str(
        self,
        name: str,
        getter: Callable[[], str],
        setter: Callable[[str], None] | None = None,
        description: str | None = None,
    ) -> ObjectProperty:
        """Add a ``"str"`` property (``object_property_add_str``)."""

        def set_json(value: JSONValue) -> None:
            assert setter is not None
            setter(visit_type_str(name, value))

        return self.property_add(
            ObjectProperty(
                name,
                "str",
                getter=getter,
                setter=set_json if setter is not None else None,
                description=description,
            )
        )

    def property_add_uint(
        self,
        name: str,
        bits: int,
        getter: Callable[[], int],
        setter: Callable[[int], None] | None = None,
        description: str | None = None,
    ) -> ObjectProperty:
        """Add a ``"uintN"`` property (``object_property_add_uintN_ptr``).

        Args:
            name: the property name.
            bits: 8, 16, 32 or 64.
            getter: returns the value.
            setter: stores a value already checked to fit in ``bits`` bits.
            description: the help text.

        Raises:
            Error: on a write, a value that does not fit.
        """
        if bits not in (8, 16, 32, 64):
            raise ValueError(f"bits must be 8, 16, 32 or 64, not {bits}")
        maximum = (1 << bits) - 1

        def set_json(value: JSONValue) -> None:
            assert setter is not None
            v = visit_type_int(name, value)
            if not 0 <= v <= maximum:
                raise Error(
                    f"Property '{self.typename()}.{name}' doesn't take value "
                    f"'{v}' (minimum: 0, maximum: {maximum})"
                )
            setter(v)

        return self.property_add(
            ObjectProperty(
                name,
                f"uint{bits}",
                getter=getter,
                setter=set_json if setter is not None else None,
                description=description,
            )
        )

    def property_del(self, name: str) -> None:
        """Remove a property, releasing it (``object_property_del``).

        Raises:
            Error: no such property.
        """
        prop = self._find_err(name)
        del self._properties[name]
        if prop._release is not None:
            prop._release()

    def property_find(self, name: str) -> ObjectProperty | None:
        """Return property ``name`` or None (``object_property_find``)."""
        return self._properties.get(name)

    def _find_err(self, name: str) -> ObjectProperty:
        prop = self._properties.get(name)
        if prop is None:
            raise Error(
                f"Property '{self.typename()}.{name}' not found",
                hint="list the available properties with qom_list()",
            )
        return prop

    def properties(self) -> list[ObjectProperty]:
        """All properties, in the order they were added."""
        return list(self._properties.values())

    def property_get(self, name: str) -> JSONValue:
        """Read a property as a JSON-like value (``object_property_get``).

        Raises:
            Error: no such property, or it is not readable.
        """
        prop = self._find_err(name)
        if prop._get is None:
            raise Error(f"Property '{self.typename()}.{name}' is not readable")
        return prop._get()

    def property_set(self, name: str, value: JSONValue) -> None:
        """Write a property from a JSON-like value (``object_property_set``).

        Raises:
            Error: no such property, it is read-only, or the value is refused.
        """
        prop = self._find_err(name)
        if prop._set is None:
            raise Error(f"Property '{self.typename()}.{name}' is not writable")
        prop._set(value)

    def property_parse(self, name: str, string: str) -> None:
        """Set a property from its command-line spelling (``object_property_parse``).

        This is how ``-device TYPE,name=value`` sets properties: the string
        is converted according to the property's type, then set as by
        :meth:`property_set`. Booleans take ``on``/``off`` (also
        ``yes``/``no``, ``true``/``false``); integers take decimal, ``0x``
        hex or ``0`` octal; ``size`` properties also take a ``K``, ``M``,
        ``G``, ``T``, ``P`` or ``E`` suffix (powers of 1024); strings, links
        and chardevs take the string as it is.

        Raises:
            Error: no such property, a malformed value, or the property
                refused the value.

        >>> c = Container()
        >>> flag = []
        >>> _ = c.property_add_bool("on", lambda: True, flag.append)
        >>> c.property_parse("on", "off")
        >>> flag
        [False]
        """
        prop = self._find_err(name)
        self.property_set(name, _parse_value(name, prop.type, string))

    def property_get_type(self, name: str) -> str:
        """The type string of property ``name`` (``object_property_get_type``).

        Raises:
            Error: no such property.
        """
        return self._find_err(name).type

    @override
    def __repr__(self) -> str:
        path = self.canonical_path() if hasattr(self, "_properties") else None
        where = f" at {path}" if path else ""
        return f"<{type(self).__qualname__} {self.TYPE_NAME!r}{where}>"


_INT_TYPES: Final = frozenset(
    {"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "usize"}
)
_SIZE_SUFFIXES: Final = {"B": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}


def _strtoll(text: str) -> int:
    """Parse like C ``strtoll(text, NULL, 0)``: ``0x`` hex, leading-``0`` octal."""
    body = text.lstrip("+-")
    if len(body) > 1 and body[0] == "0" and body[1] not in "xXbBoO":
        sign = -1 if text.startswith("-") else 1
        return sign * int(body, 8)
    return int(text, 0)


def _parse_value(name: str, prop_type: str, string: str) -> JSONValue:
    if prop_type == "bool":
        low = string.lower()
        if low in ("on", "yes", "true", "y"):
            return True
        if low in ("off", "no", "false", "n"):
            return False
        raise Error(f"Parameter '{name}' expects 'on' or 'off'")
    if prop_type in _INT_TYPES:
        try:
            return _strtoll(string)
        except ValueError:
            raise Error(f"Parameter '{name}' expects an integer") from None
    if prop_type == "size":
        text = string.strip()
        shift = 0
        if text and text[-1].upper() in _SIZE_SUFFIXES:
            shift = _SIZE_SUFFIXES[text[-1].upper()]
            text = text[:-1]
        try:
            value = float(text) if "." in text else _strtoll(text)
        except ValueError:
            raise Error(
                f"Parameter '{name}' expects a size value",
                hint="a non-negative number, optionally followed by B, K, M, G, "
                "T, P or E (powers of 1024)",
            ) from None
        return int(value * (1 << shift))
    return string


def _finalize_child(child: Object) -> None:
    child.instance_unparent()
    child._parent = None
    child._name = None
    _finalize(child)


def _release_resources(owned: list[OwnedResource]) -> None:
    """Release ``owned`` in the reverse order of ownership and empty it."""
    while owned:
        owned.pop().owner_release()


def _release_owned(obj: Object) -> None:
    if obj._qom_scope is not obj._qom_owned:
        _release_resources(obj._qom_scope)
        obj._qom_scope = obj._qom_owned
    _release_resources(obj._qom_owned)


def _release_properties(obj: Object) -> None:
    for name in list(obj._properties):
        prop = obj._properties.pop(name, None)
        if prop is not None and prop._release is not None:
            prop._release()


def _run_finalize_hooks(obj: Object, klass: type) -> None:
    for hook_name in ("instance_finalize", "_qom_instance_finalize"):
        hook = klass.__dict__.get(hook_name)
        if hook is not None:
            hook(obj)


def _finalize(obj: Object) -> None:
    """Tear ``obj`` down (``object_finalize``): resources, properties, hooks."""
    if obj._finalized:
        return
    obj._finalized = True
    _release_owned(obj)
    _release_properties(obj)
    for klass in type(obj).__mro__:
        _run_finalize_hooks(obj, klass)


def _abort_construction(obj: Object, completed: list[type], exc: BaseException) -> None:
    """Undo a construction that raised ``exc`` after the classes ``completed``.

    Like a C++ constructor that throws: what the object acquired is released,
    and only the classes whose ``instance_init`` had completed are finalized.
    A failure while undoing is noted on ``exc`` rather than hiding it.
    """
    obj._finalized = True
    try:
        _release_owned(obj)
        _release_properties(obj)
        for klass in reversed(completed):
            _run_finalize_hooks(obj, klass)
    except Exception as undo_exc:
        exc.add_note(
            f"while undoing the construction of '{obj.typename()}': "
            f"{type(undo_exc).__name__}: {undo_exc}"
        )


_register(TypeInfo(TYPE_OBJECT, None, True, (), Object))
_register(TypeInfo(TYPE_INTERFACE, None, True, (), Interface))


@final
class Container(Object, type_name=TYPE_CONTAINER):
    """A plain tree node, like ``/machine/unattached`` (``TYPE_CONTAINER``)."""


def object_new(typename: str) -> Object:
    """Create an object of type ``typename`` (``object_new``).

    Raises:
        Error: unknown type, interface, or abstract type.

    >>> object_new("container").typename()
    'container'
    """
    cls = object_class_by_name(typename)
    if cls is None:
        raise Error(
            f"unknown type '{typename}'",
            error_class=ErrorClass.GENERIC_ERROR,
            hint="the type must be defined (its module imported) before use",
        )
    return cls()


def object_dynamic_cast(obj: Object, typename: str) -> Object | None:
    """Return ``obj`` if it is of type ``typename`` (or implements it), else None.

    >>> c = Container()
    >>> object_dynamic_cast(c, "object") is c, object_dynamic_cast(c, "nope")
    (True, None)
    """
    target = _type_table.get(typename)
    if target is None or not isinstance(obj, target.cls):
        return None
    return obj


def object_cast(obj: Object, cls: type[T]) -> T:
    """Return ``obj`` as ``cls`` or raise (QEMU's checked cast, ``OBJECT_CHECK``).

    Raises:
        Error: "object of type 'X' is not an instance of 'Y'".

    >>> object_cast(Container(), Object).typename()
    'container'
    """
    if isinstance(obj, cls):
        return obj
    raise Error(
        f"object of type '{obj.typename()}' is not an instance of "
        f"'{_type_name_of(cls)}'"
    )


# -- the object tree ---------------------------------------------------------

_root: Object | None = None


def object_get_root() -> Object:
    """The root of the object tree, path ``/`` (``object_get_root``)."""
    global _root
    if _root is None:
        _root = Container()
    return _root


def object_tree_reset() -> None:
    """Drop the whole object tree and start with an empty root.

    For tests (like QEMU's per-test process): everything reachable from the old
    root is torn down as by :meth:`Object.unparent`.
    """
    global _root
    old = _root
    _root = None
    if old is not None:
        _finalize(old)


def container_get(root: Object, path: str) -> Object:
    """Return the object at ``path`` below ``root``, creating containers on the way.

    QEMU's ``container_get``, e.g.
    ``container_get(object_get_root(), "/machine/unattached")``.
    """
    obj = root
    for part in path.split("/"):
        if not part:
            continue
        child = object_resolve_path_component(obj, part)
        if child is None:
            child = obj.property_add_child(part, Container())
        obj = child
    return obj


def object_get_objects_root() -> Object:
    """The ``/objects`` container, home of ``-object`` instances."""
    return container_get(object_get_root(), "/objects")


def object_get_canonical_path(obj: Object) -> str | None:
    """The absolute path of ``obj``, or None if it is not in the tree."""
    return obj.canonical_path()


def object_property_add_child(parent: Object, name: str, child: ObjT) -> ObjT:
    """Make ``child`` a child of ``parent`` (see :meth:`Object.property_add_child`)."""
    return parent.property_add_child(name, child)


def object_property_add_link(
    obj: Object,
    name: str,
    target_type: type[ObjT],
    get_target: Callable[[], ObjT | None],
    set_target: Callable[[ObjT | None], None],
    check: LinkCheck | None = object_property_allow_set_link,
) -> ObjectProperty:
    """Add a ``link<T>`` property to ``obj`` (see :meth:`Object.property_add_link`)."""
    return obj.property_add_link(name, target_type, get_target, set_target, check)


def object_unparent(obj: Object) -> None:
    """Detach ``obj`` from its parent and tear down its subtree."""
    obj.unparent()


def object_property_get(obj: Object, name: str) -> JSONValue:
    """Read property ``name`` of ``obj`` (see :meth:`Object.property_get`)."""
    return obj.property_get(name)


def object_property_set(obj: Object, name: str, value: JSONValue) -> None:
    """Write property ``name`` of ``obj`` (see :meth:`Object.property_set`)."""
    obj.property_set(name, value)


def object_resolve_path_component(parent: Object, part: str) -> Object | None:
    """Follow one ``child<>`` or ``link<>`` property of ``parent``."""
    prop = parent._properties.get(part)
    if prop is None or prop._resolve is None:
        return None
    return prop._resolve()


def _is_type(obj: Object, typename: str) -> Object | None:
    return object_dynamic_cast(obj, typename)


def _resolve_abs(parent: Object, parts: list[str], typename: str) -> Object | None:
    obj: Object | None = parent
    for part in parts:
        if obj is None:
            return None
        if part == "":
            continue
        obj = object_resolve_path_component(obj, part)
    return _is_type(obj, typename) if obj is not None else None


def _resolve_partial(
    parent: Object, parts: list[str], typename: str, ambiguous: list[bool]
) -> Object | None:
    obj = _resolve_abs(parent, parts, typename)
    for prop in list(parent._properties.values()):
        if not prop.is_child() or prop._resolve is None:
            continue
        child = prop._resolve()
        if child is None:
            continue
        found = _resolve_partial(child, parts, typename, ambiguous)
        if found is not None:
            if obj is not None:
                ambiguous[0] = True
                return None
            obj = found
        if ambiguous[0]:
            return None
    return obj


def object_resolve_path_full(path: str, typename: str = TYPE_OBJECT) -> PathResolution:
    """Resolve ``path`` as QEMU's ``object_resolve_path_type`` does.

    An absolute path (``/machine/foo``) is followed from the root through
    ``child<>`` and ``link<>`` properties. A partial path (``foo`` or
    ``unattached/foo``) matches anywhere in the tree; it must match exactly
    one object of type ``typename``, otherwise the result is None and, if
    several matched, ``ambiguous`` is True.

    >>> object_tree_reset()
    >>> _ = container_get(object_get_root(), "/machine/a/uart")
    >>> _ = container_get(object_get_root(), "/machine/b/uart")
    >>> object_resolve_path_full("uart")
    PathResolution(obj=None, ambiguous=True)
    >>> object_resolve_path_full("a/uart").obj.canonical_path()
    '/machine/a/uart'
    """
    parts = path.split("/")
    root = object_get_root()
    if parts[0] != "":
        ambiguous = [False]
        found = _resolve_partial(root, parts, typename, ambiguous)
        return PathResolution(found, ambiguous[0])
    return PathResolution(_resolve_abs(root, parts[1:], typename), False)


def object_resolve_path_type(path: str, typename: str) -> Object | None:
    """Resolve ``path`` to an object of type ``typename``, or None."""
    return object_resolve_path_full(path, typename).obj


def object_resolve_path(path: str) -> Object | None:
    """Resolve ``path`` (absolute or unambiguous partial) to an object, or None."""
    return object_resolve_path_full(path).obj


def _qom_find(path: str) -> Object:
    obj = object_resolve_path(path)
    if obj is None:
        raise Error(
            f"Device '{path}' not found", error_class=ErrorClass.DEVICE_NOT_FOUND
        )
    return obj


def qom_list(path: str) -> list[ObjectPropertyInfo]:
    """List the properties of the object at ``path`` (QMP ``qom-list``).

    Raises:
        Error: "Device 'PATH' not found" (class DeviceNotFound).

    >>> object_tree_reset()
    >>> _ = container_get(object_get_root(), "/machine")
    >>> [(p.name, p.type) for p in qom_list("/")]
    [('machine', 'child<container>')]
    """
    obj = _qom_find(path)
    return [ObjectPropertyInfo(p.name, p.type, p.description) for p in obj.properties()]


def qom_get(path: str, name: str) -> JSONValue:
    """Read property ``name`` of the object at ``path`` (QMP ``qom-get``).

    Raises:
        Error: the object or the property does not exist, or is unreadable.
    """
    return _qom_find(path).property_get(name)


def qom_set(path: str, name: str, value: JSONValue) -> None:
    """Write property ``name`` of the object at ``path`` (QMP ``qom-set``).

    Raises:
        Error: the object or the property does not exist, or refuses the value.
    """
    _qom_find(path).property_set(name, value)
