"""Device modules: QOM types that load on first use (QEMU's ``util/module.c``).

This module mirrors QEMU's ``include/qemu/module.h`` and its build-time
*modinfo* (``scripts/modinfo-collect.py``, ``scripts/modinfo-generate.py``).
A *module* is a Python module that defines QOM types when it is imported:
a device package of the tree (``hw.char.pl011``) or one installed with pip
that declares itself through the ``pyqemu.devices`` entry point group.

The registry (:class:`ModuleInfo` records) says which types each module
provides, with what a listing needs (parent, interfaces, the ``-device
help`` line and the ``-device TYPE,help`` properties) and the boards that
may use it. Registered types are announced to the QOM layer as stubs
(:class:`~qemu_api.qom.TypeStub`): :func:`~qemu_api.qom.object_class_by_name`
and its friends import the module on first use, and listings
(:func:`module_device_infos`, :func:`~qemu_api.qom.type_get_names`) show
the types without importing anything. A module that fails to import is an
:class:`~qemu_api.error.Error` that names the module and the cause.

Out-of-tree device packages declare, in their ``pyproject.toml``, one entry
point per QOM type, named after the type and pointing at the module that
defines it::

    [project.entry-points."pyqemu.devices"]
    "example-counter" = "pyqemu_example_device.counter"

:func:`module_init_entry_points` registers them; the launcher does so at
start, so the types appear in ``-device help`` and ``-device`` creates them
(a sysbus device derived from
:class:`~qemu_api.sysbus.DynamicSysBusDevice` goes on the platform bus of
the boards that have one).

Example:
    >>> from qemu_api.qom import object_class_by_name
    >>> info = ModuleInfo(
    ...     name="doc-missing",
    ...     import_name="doc_no_such_module",
    ...     objs=(TypeRecord("doc-missing-dev", "device"),),
    ... )
    >>> module_register(info)
    >>> [d.name for d in module_device_infos() if d.name.startswith("doc-")]
    ['doc-missing-dev']
    >>> object_class_by_name("doc-missing-dev")
    Traceback (most recent call last):
    ...
    qemu_api.error.Error: failed to load module 'doc-missing' \
(import doc_no_such_module): ModuleNotFoundError: No module named \
'doc_no_such_module'
    >>> module_unregister("doc-missing")
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, final

from qemu_api._compat import override
from qemu_api.error import Error
from qemu_api.qdev import DeviceState
from qemu_api.qom import (
    JSONValue,
    ObjectPropertyInfo,
    TypeStub,
    object_class_get_list,
    type_info,
    type_is_ancestor_unloaded,
    type_register_stub,
    type_set_loader,
    type_unregister_stubs,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "DeviceEntryPoint",
    "DeviceTypeInfo",
    "ModuleInfo",
    "PropertyRecord",
    "TypeRecord",
    "device_entry_points",
    "modinfo_from_json",
    "modinfo_to_json",
    "module_device_infos",
    "module_device_properties",
    "module_find",
    "module_init_entry_points",
    "module_init_modinfo",
    "module_list",
    "module_load",
    "module_load_qom",
    "module_load_qom_all",
    "module_load_unlisted",
    "module_of_type",
    "module_register",
    "module_unregister",
]

ENTRY_POINT_GROUP: Final = "pyqemu.devices"
"""The packaging entry point group of out-of-tree device packages.

Each entry point is named after a QOM type and points at the module that
defines it (``"my-dev" = "my_pkg.my_dev"``). This name is part of the
stable API.
"""


@final
@dataclass(frozen=True)
class PropertyRecord:
    """One declared property of a device type, as ``-device TYPE,help`` shows it."""

    name: str
    type: str
    description: str | None = None
    default_value: JSONValue = None


@final
@dataclass(frozen=True)
class TypeRecord:
    """One QOM type a module provides (an entry of QEMU's modinfo ``objs``).

    Attributes:
        name: the type name.
        parent: its parent type name.
        abstract: whether it is abstract.
        interfaces: the interfaces it declares.
        device: whether it is a device (``TYPE_DEVICE`` or a subtype).
        desc: the ``-device help`` description (devices).
        bus_type: the bus it plugs into (devices).
        user_creatable: whether ``-device`` may create it (devices).
        properties: its declared qdev properties (devices).
        categories: its ``-device help`` groups, as
            :class:`~qemu_api.qdev.DeviceCategory` values (devices).
    """

    name: str
    parent: str | None
    abstract: bool = False
    interfaces: tuple[str, ...] = ()
    device: bool = True
    desc: str | None = None
    bus_type: str | None = None
    user_creatable: bool = True
    properties: tuple[PropertyRecord, ...] | None = None
    categories: tuple[int, ...] = ()


@final
@dataclass(frozen=True)
class ModuleInfo:
    """A loadable module (QEMU's ``QemuModinfo``).

    Attributes:
        name: the module name: ``hw-char-pl011`` for ``hw/char/pl011``
            (QEMU's names), the Python module name for an entry point.
        import_name: the Python module to import.
        objs: the QOM types it provides.
        boards: the boards that may use it (empty: any).
        origin: where it comes from: ``pyqemu`` for the tree, else the
            distribution that installed it (``name version``).
    """

    name: str
    import_name: str
    objs: tuple[TypeRecord, ...] = ()
    boards: tuple[str, ...] = ()
    origin: str = "pyqemu"


@final
@dataclass(frozen=True)
class DeviceTypeInfo:
    """A device type for ``-device help``, loaded or not.

    Attributes:
        name: the type name.
        desc: the one-line description, or None.
        bus_type: the bus it plugs into, or None.
        user_creatable: whether ``-device`` may create it.
        abstract: whether it is abstract.
        loaded: whether its module is imported.
        module: the module that provides it (None: part of the core).
        categories: its ``-device help`` groups, as
            :class:`~qemu_api.qdev.DeviceCategory` values.
    """

    name: str
    desc: str | None
    bus_type: str | None
    user_creatable: bool
    abstract: bool
    loaded: bool
    module: str | None = None
    categories: tuple[int, ...] = ()


@dataclass
class _Registry:
    modules: dict[str, ModuleInfo] = field(default_factory=dict)
    loaded: set[str] = field(default_factory=set)
    by_type: dict[str, str] = field(default_factory=dict)


_registry = _Registry()


def module_register(info: ModuleInfo) -> None:
    """Add *info* to the registry and announce its types to QOM.

    Types already registered with QOM (their module imported some other way)
    are not announced again. A module registered twice replaces its record.
    """
    old = _registry.modules.get(info.name)
    if old is not None:
        module_unregister(info.name)
    _registry.modules[info.name] = info
    for obj in info.objs:
        _registry.by_type[obj.name] = info.name
        type_register_stub(
            TypeStub(
                name=obj.name,
                parent=obj.parent,
                abstract=obj.abstract,
                interfaces=obj.interfaces,
                module=info.name,
            )
        )
    if info.import_name in sys.modules:
        _registry.loaded.add(info.name)
        type_unregister_stubs(info.name)


def module_unregister(name: str) -> None:
    """Forget module *name* and the stubs of its types (for tests)."""
    info = _registry.modules.pop(name, None)
    if info is None:
        return
    _registry.loaded.discard(name)
    for obj in info.objs:
        if _registry.by_type.get(obj.name) == name:
            del _registry.by_type[obj.name]
    type_unregister_stubs(name)


def module_find(name: str) -> ModuleInfo | None:
    """The registered module called *name*, or None."""
    return _registry.modules.get(name)


def module_of_type(typename: str) -> ModuleInfo | None:
    """The registered module that provides *typename*, or None (no import)."""
    name = _registry.by_type.get(typename)
    return None if name is None else _registry.modules.get(name)


def module_list() -> list[ModuleInfo]:
    """Every registered module, sorted by name."""
    return [_registry.modules[n] for n in sorted(_registry.modules)]


def _load(info: ModuleInfo) -> None:
    if info.name in _registry.loaded:
        return
    try:
        importlib.import_module(info.import_name)
    except Exception as exc:  # any failure of the module's own code
        import traceback  # only on a failure

        where = ""
        tb = traceback.extract_tb(exc.__traceback__)
        if tb and not isinstance(exc, ModuleNotFoundError):
            last = tb[-1]
            where = f" at {last.filename}:{last.lineno}"
        origin = "" if info.origin == "pyqemu" else f", from {info.origin}"
        raise Error(
            f"failed to load module '{info.name}' (import {info.import_name}"
            f"{origin}): {type(exc).__name__}: {exc}{where}",
            hint=_load_hint(info),
        ) from None
    _registry.loaded.add(info.name)
    type_unregister_stubs(info.name)


def _load_hint(info: ModuleInfo) -> str:
    if info.origin == "pyqemu":
        return "the module is part of pyqemu: rebuild it (make) or reinstall it\n"
    dist = info.origin.split(" ")[0]
    return (
        f"the module comes from the package '{dist}': fix or reinstall it "
        f"(pip install --force-reinstall {dist}), or remove it "
        f"(pip uninstall {dist})\n"
    )


def _stub_loader(stub: TypeStub) -> None:
    info = _registry.modules.get(stub.module)
    if info is None:
        raise Error(f"QOM type '{stub.name}' names unknown module '{stub.module}'")
    _load(info)


type_set_loader(_stub_loader)


def module_load(prefix: str, name: str) -> bool:
    """Load module ``prefix + name`` (QEMU's ``module_load``).

    Returns:
        True when the module is loaded (now or before), False when no such
        module is registered.

    Raises:
        Error: the module failed to import (the message names it and says why).
    """
    info = _registry.modules.get(prefix + name)
    if info is None:
        return False
    _load(info)
    return True


def module_load_qom(typename: str) -> bool:
    """Load the module that provides QOM type *typename* (``module_load_qom``).

    Returns:
        True when a module provides the type (and is now loaded), else False.

    Raises:
        Error: the module failed to import.
    """
    name = _registry.by_type.get(typename)
    if name is None:
        return False
    _load(_registry.modules[name])
    return True


def module_load_qom_all() -> None:
    """Load every registered module (``module_load_qom_all``).

    Raises:
        Error: a module failed to import.
    """
    for info in module_list():
        _load(info)


def _record_of(typename: str) -> TypeRecord | None:
    name = _registry.by_type.get(typename)
    if name is None or name in _registry.loaded:
        return None
    for obj in _registry.modules[name].objs:
        if obj.name == typename:
            return obj
    return None


def _unknown(typename: str) -> bool:
    rec = _record_of(typename)
    return rec is not None and rec.parent is None


def module_load_unlisted() -> None:
    """Import the modules whose types the registry cannot list by itself.

    Entry points name their types but not their parents, so listings
    (``-device help``, ``qom-list-types``) import those modules first; the
    tree's modules are listed from the build's registry without importing.

    Raises:
        Error: such a module failed to import.
    """
    for name in sorted({m for t, m in _registry.by_type.items() if _unknown(t)}):
        _load(_registry.modules[name])


def module_device_infos() -> list[DeviceTypeInfo]:
    """Every device type, loaded or not, without importing the tree's modules.

    Loaded types answer from their class, the others from the registry. The
    modules of entry points are imported (an entry point names its types but
    not what they are). Sorted by type name.

    Raises:
        Error: an entry point's module failed to import.
    """
    module_load_unlisted()
    out: dict[str, DeviceTypeInfo] = {}
    for cls in object_class_get_list("device", include_abstract=True):
        if not issubclass(cls, DeviceState):
            continue
        info = type_info(cls.TYPE_NAME)
        out[cls.TYPE_NAME] = DeviceTypeInfo(
            name=cls.TYPE_NAME,
            desc=cls.desc,
            bus_type=cls.bus_type,
            user_creatable=cls.user_creatable,
            abstract=info is not None and info.abstract,
            loaded=True,
            module=_registry.by_type.get(cls.TYPE_NAME),
            categories=tuple(sorted(int(c) for c in cls.categories)),
        )
    for typename, modname in _registry.by_type.items():
        rec = _record_of(typename)
        if rec is None or not rec.device or typename in out:
            continue
        if not type_is_ancestor_unloaded(typename, "device"):
            continue
        out[typename] = DeviceTypeInfo(
            name=typename,
            desc=rec.desc,
            bus_type=rec.bus_type,
            user_creatable=rec.user_creatable,
            abstract=rec.abstract,
            loaded=False,
            module=modname,
            categories=rec.categories,
        )
    return [out[n] for n in sorted(out)]


def module_device_properties(typename: str) -> list[ObjectPropertyInfo] | None:
    """The declared properties of an unloaded device type, from the registry.

    Returns:
        The properties, or None when the type is loaded, unknown, or its
        record does not list them (then ask the class:
        :func:`qemu_api.qdev.qdev_device_list_properties`).
    """
    rec = _record_of(typename)
    if rec is None or rec.properties is None:
        return None
    return [
        ObjectPropertyInfo(p.name, p.type, p.description, p.default_value)
        for p in rec.properties
    ]


@final
@dataclass(frozen=True)
class DeviceEntryPoint:
    """One entry point of group :data:`ENTRY_POINT_GROUP`.

    Attributes:
        name: the QOM type it provides.
        value: the module that defines it (``package.module``).
        origin: the distribution that declares it (``name version``).
    """

    name: str
    value: str
    origin: str = "an unknown distribution"


def _entry_points_items(text: str, source: str, group: str) -> list[tuple[str, str]]:
    """The ``name = value`` lines of *group* in an ``entry_points.txt``."""
    import configparser  # only when a distribution declares devices

    class EntryPointsParser(configparser.ConfigParser):
        """entry_points.txt: names are case-sensitive (QOM type names)."""

        @override
        def optionxform(self, optionstr: str) -> str:
            return optionstr

    parser = EntryPointsParser(delimiters=("=",), interpolation=None)
    parser.read_string(text, source=source)
    return parser.items(group)


def _dist_origin(dirname: str) -> str:
    # name-version.dist-info (the wheel spec's escaped name and version)
    stem = dirname.rsplit(".", 1)[0]
    name, _, version = stem.partition("-")
    return f"{name} {version}".strip()


def device_entry_points(path: Sequence[str] | None = None) -> list[DeviceEntryPoint]:
    """The ``pyqemu.devices`` entry points of the distributions on *path*.

    Reads each ``*.dist-info/entry_points.txt`` on *path* (default
    ``sys.path``), as :func:`importlib.metadata.entry_points` would, without
    the cost of importing :mod:`importlib.metadata` at every start. The first
    distribution of a name on the path wins, as for imports.
    """
    out: list[DeviceEntryPoint] = []
    seen: set[str] = set()
    for entry in sys.path if path is None else path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for dirname in names:
            if not dirname.endswith(".dist-info"):
                continue
            dist = dirname.split("-", 1)[0].lower().replace("_", "-")
            if dist in seen:
                continue
            seen.add(dist)
            eps = os.path.join(entry or ".", dirname, "entry_points.txt")
            try:
                with open(eps, encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            if f"[{ENTRY_POINT_GROUP}]" not in text:
                continue
            origin = _dist_origin(dirname)
            out.extend(
                DeviceEntryPoint(name, value.strip(), origin)
                for name, value in _entry_points_items(text, eps, ENTRY_POINT_GROUP)
            )
    return out


def module_init_entry_points(
    entry_points: Iterable[DeviceEntryPoint] | None = None,
) -> list[ModuleInfo]:
    """Register the device packages installed with pip (``pyqemu.devices``).

    Each entry point names a QOM type and the module that defines it; the
    types of one module form one :class:`ModuleInfo` named after the module.
    Nothing is imported here.

    Args:
        entry_points: the entry points to register (default: those of the
            installed distributions, :func:`device_entry_points`).

    Returns:
        The modules registered.

    Raises:
        Error: an entry point that does not point at a module.

    >>> mods = module_init_entry_points(
    ...     [DeviceEntryPoint("doc-ep-dev", "doc_ep_pkg.dev", "doc-ep 1.0")]
    ... )
    >>> [(m.name, m.origin, [o.name for o in m.objs]) for m in mods]
    [('doc_ep_pkg.dev', 'doc-ep 1.0', ['doc-ep-dev'])]
    >>> module_unregister("doc_ep_pkg.dev")
    """
    if entry_points is None:
        entry_points = device_entry_points()
    grouped: dict[str, tuple[list[str], str]] = {}
    for ep in entry_points:
        module, colon, _attr = ep.value.partition(":")
        module = module.strip()
        if colon or not module:
            fix = module or "pkg.module"
            raise Error(
                f"entry point '{ep.name}' of {ep.origin} in group "
                f"'{ENTRY_POINT_GROUP}' is '{ep.value}': it must name the module "
                "that defines the QOM type, not an attribute",
                hint=f'declare it as "{ep.name}" = "{fix}"\n',
            )
        types, _origin = grouped.setdefault(module, ([], ep.origin))
        types.append(ep.name)
    out = []
    for mod, (types, origin) in sorted(grouped.items()):
        if mod in _registry.modules and _registry.modules[mod].origin == "pyqemu":
            continue
        info = ModuleInfo(
            name=mod,
            import_name=mod,
            # Entry points carry only the type names: parents are unknown
            # until the module is imported, so the listing loads these.
            objs=tuple(TypeRecord(t, None) for t in sorted(types)),
            origin=origin,
        )
        module_register(info)
        out.append(info)
    return out


def modinfo_to_json(modules: Sequence[ModuleInfo]) -> list[dict[str, JSONValue]]:
    """The registry as JSON-like data (what the build writes, QEMU's modinfo)."""
    out: list[dict[str, JSONValue]] = []
    for m in modules:
        objs: list[JSONValue] = []
        for o in m.objs:
            rec: dict[str, JSONValue] = {
                "name": o.name,
                "parent": o.parent,
                "abstract": o.abstract,
                "interfaces": list(o.interfaces),
                "device": o.device,
                "desc": o.desc,
                "bus_type": o.bus_type,
                "user_creatable": o.user_creatable,
                "categories": list(o.categories),
            }
            if o.properties is not None:
                rec["properties"] = [
                    {
                        "name": p.name,
                        "type": p.type,
                        "description": p.description,
                        "default_value": p.default_value,
                    }
                    for p in o.properties
                ]
            objs.append(rec)
        out.append(
            {
                "name": m.name,
                "import_name": m.import_name,
                "boards": list(m.boards),
                "objs": objs,
            }
        )
    return out


def _ints(d: Mapping[str, JSONValue], key: str) -> tuple[int, ...]:
    v = d.get(key, [])
    if not isinstance(v, list) or not all(
        isinstance(x, int) and not isinstance(x, bool) for x in v
    ):
        raise Error(f"modinfo: '{key}' must be a list of numbers, not {v!r}")
    return tuple(x for x in v if isinstance(x, int))


def _str(d: Mapping[str, JSONValue], key: str) -> str:
    v = d.get(key)
    if not isinstance(v, str):
        raise Error(f"modinfo: '{key}' must be a string, not {v!r}")
    return v


def _opt_str(d: Mapping[str, JSONValue], key: str) -> str | None:
    v = d.get(key)
    if v is not None and not isinstance(v, str):
        raise Error(f"modinfo: '{key}' must be a string or null, not {v!r}")
    return v


def _strs(d: Mapping[str, JSONValue], key: str) -> tuple[str, ...]:
    v = d.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise Error(f"modinfo: '{key}' must be a list of strings, not {v!r}")
    return tuple(x for x in v if isinstance(x, str))


def _dicts(v: object, what: str) -> list[dict[str, JSONValue]]:
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise Error(f"modinfo: {what} must be a list of objects")
    return [x for x in v if isinstance(x, dict)]


def modinfo_from_json(data: object) -> list[ModuleInfo]:
    """Parse what :func:`modinfo_to_json` wrote.

    Raises:
        Error: malformed data (the registry file is corrupt: rebuild).

    >>> m = ModuleInfo("hw-x", "hw.x", (TypeRecord("x", "device", desc="X"),))
    >>> modinfo_from_json(modinfo_to_json([m])) == [m]
    True
    """
    out = []
    for m in _dicts(data, "the module list"):
        objs = []
        for o in _dicts(m.get("objs", []), "'objs'"):
            props: tuple[PropertyRecord, ...] | None = None
            if "properties" in o:
                props = tuple(
                    PropertyRecord(
                        _str(p, "name"),
                        _str(p, "type"),
                        _opt_str(p, "description"),
                        p.get("default_value"),
                    )
                    for p in _dicts(o["properties"], "'properties'")
                )
            objs.append(
                TypeRecord(
                    name=_str(o, "name"),
                    parent=_opt_str(o, "parent"),
                    abstract=o.get("abstract") is True,
                    interfaces=_strs(o, "interfaces"),
                    device=o.get("device") is True,
                    desc=_opt_str(o, "desc"),
                    bus_type=_opt_str(o, "bus_type"),
                    user_creatable=o.get("user_creatable") is True,
                    properties=props,
                    categories=_ints(o, "categories"),
                )
            )
        out.append(
            ModuleInfo(
                name=_str(m, "name"),
                import_name=_str(m, "import_name"),
                objs=tuple(objs),
                boards=_strs(m, "boards"),
            )
        )
    return out


def module_init_modinfo(data: object, *, load: bool) -> list[ModuleInfo]:
    """Register the tree's modules from the build's modinfo.

    Args:
        data: the modinfo (:func:`modinfo_to_json`'s format).
        load: import every module now (a build without ``--enable-modules``)
            instead of on first use.

    Returns:
        The modules registered.

    Raises:
        Error: malformed modinfo, or (with *load*) a module failed to import.
    """
    mods = modinfo_from_json(data)
    for m in mods:
        module_register(m)
    if load:
        for m in mods:
            _load(m)
    return mods
