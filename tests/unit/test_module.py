"""qemu_api.module: the registry, loading on first use, entry points, errors."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qemu_api import qom
from qemu_api.error import Error
from qemu_api.module import (
    DeviceEntryPoint,
    ModuleInfo,
    PropertyRecord,
    TypeRecord,
    device_entry_points,
    modinfo_from_json,
    modinfo_to_json,
    module_device_infos,
    module_device_properties,
    module_init_entry_points,
    module_init_modinfo,
    module_load,
    module_load_qom,
    module_unregister,
)
from qemu_api.qom import object_class_by_name, type_get_names, type_is_ancestor
from qemu_api.sysbus import TYPE_DYNAMIC_SYS_BUS_DEVICE

DEVICE_SRC = """
from qemu_api.qdev import prop_u32
from qemu_api.sysbus import DynamicSysBusDevice


class Widget(DynamicSysBusDevice, type_name="{name}"):
    desc = "a widget"
    level = prop_u32("level", default=3, doc="how high")
"""


@pytest.fixture
def pkgdir(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    names_before = set(sys.modules)
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in set(sys.modules) - names_before:
        if name.startswith("modtest_"):
            del sys.modules[name]


def record(name: str) -> TypeRecord:
    return TypeRecord(
        name,
        TYPE_DYNAMIC_SYS_BUS_DEVICE,
        desc="a widget",
        bus_type="System",
        properties=(PropertyRecord("level", "uint32", "how high", 3),),
    )


def test_a_type_loads_on_first_lookup(pkgdir: Path) -> None:
    (pkgdir / "modtest_lazy.py").write_text(DEVICE_SRC.format(name="modtest-lazy"))
    module_init_modinfo(
        modinfo_to_json(
            [ModuleInfo("hw-modtest-lazy", "modtest_lazy", (record("modtest-lazy"),))]
        ),
        load=False,
    )
    try:
        # listed, with its help data, and nothing imported
        infos = {d.name: d for d in module_device_infos()}
        assert infos["modtest-lazy"].loaded is False
        assert infos["modtest-lazy"].desc == "a widget"
        assert infos["modtest-lazy"].module == "hw-modtest-lazy"
        props = module_device_properties("modtest-lazy")
        assert props is not None
        assert [(p.name, p.type, p.default_value) for p in props] == [
            ("level", "uint32", 3)
        ]
        assert ("modtest-lazy", "dynamic-sysbus-device", False) in type_get_names(
            "sys-bus-device"
        )
        assert "modtest_lazy" not in sys.modules
        # the first lookup imports it
        cls = object_class_by_name("modtest-lazy")
        assert cls is not None
        assert "modtest_lazy" in sys.modules
        assert cls.__module__ == "modtest_lazy"
        assert type_is_ancestor("modtest-lazy", "device")
        assert module_device_properties("modtest-lazy") is None  # ask the class now
    finally:
        module_unregister("hw-modtest-lazy")


def test_module_load_as_qemu(pkgdir: Path) -> None:
    (pkgdir / "modtest_ml.py").write_text(DEVICE_SRC.format(name="modtest-ml"))
    module_init_modinfo(
        modinfo_to_json(
            [ModuleInfo("hw-modtest-ml", "modtest_ml", (record("modtest-ml"),))]
        ),
        load=False,
    )
    try:
        assert module_load("hw-", "nosuch") is False
        assert "modtest_ml" not in sys.modules
        assert module_load("hw-", "modtest-ml") is True
        assert "modtest_ml" in sys.modules
        assert module_load("hw-", "modtest-ml") is True  # already loaded
        assert module_load_qom("modtest-ml") is True
        assert module_load_qom("nosuch-type") is False
    finally:
        module_unregister("hw-modtest-ml")


def test_without_modules_everything_loads_at_start(pkgdir: Path) -> None:
    (pkgdir / "modtest_eager.py").write_text(DEVICE_SRC.format(name="modtest-eager"))
    data = modinfo_to_json(
        [ModuleInfo("hw-modtest-eager", "modtest_eager", (record("modtest-eager"),))]
    )
    try:
        module_init_modinfo(data, load=True)
        assert "modtest_eager" in sys.modules
        assert qom._type_table["modtest-eager"].cls.__module__ == "modtest_eager"
    finally:
        module_unregister("hw-modtest-eager")


def test_an_import_failure_names_the_module_and_the_cause(pkgdir: Path) -> None:
    (pkgdir / "modtest_broken.py").write_text(
        "import os\nraise RuntimeError('no widget today')\n"
    )
    module_init_entry_points(
        [DeviceEntryPoint("modtest-broken", "modtest_broken", "widgets 2.0")]
    )
    try:
        with pytest.raises(Error) as exc:
            object_class_by_name("modtest-broken")
        msg = exc.value.msg
        assert msg.startswith(
            "failed to load module 'modtest_broken' (import modtest_broken, "
            "from widgets 2.0): RuntimeError: no widget today at "
        )
        assert msg.endswith("modtest_broken.py:2")
        assert exc.value.hint is not None
        assert "pip uninstall widgets" in exc.value.hint
    finally:
        module_unregister("modtest_broken")


def test_a_module_without_its_type_is_an_error(pkgdir: Path) -> None:
    (pkgdir / "modtest_empty.py").write_text("X = 1\n")
    module_init_entry_points([DeviceEntryPoint("modtest-gone", "modtest_empty")])
    try:
        with pytest.raises(Error, match="module 'modtest_empty' was loaded but does "
                           "not define QOM type 'modtest-gone'"):  # fmt: skip
            object_class_by_name("modtest-gone")
    finally:
        module_unregister("modtest_empty")


def test_entry_points_must_name_modules() -> None:
    with pytest.raises(Error, match="must name the module") as exc:
        module_init_entry_points([DeviceEntryPoint("x", "pkg.mod:Widget", "p 1")])
    assert exc.value.hint == 'declare it as "x" = "pkg.mod"\n'


def test_entry_points_are_read_from_dist_info(pkgdir: Path) -> None:
    (pkgdir / "modtest_ep.py").write_text(DEVICE_SRC.format(name="ModTest-EP"))
    dist = pkgdir / "modtest_widgets-1.2.dist-info"
    dist.mkdir()
    (dist / "entry_points.txt").write_text(
        "[console_scripts]\nw = modtest_ep:main\n\n"
        "[pyqemu.devices]\nModTest-EP = modtest_ep\n"
    )
    eps = device_entry_points([str(pkgdir)])
    assert eps == [DeviceEntryPoint("ModTest-EP", "modtest_ep", "modtest_widgets 1.2")]
    (info,) = module_init_entry_points(eps)
    try:
        # entry points do not say what their types are: listings import them
        assert "modtest_ep" not in sys.modules
        names = [d.name for d in module_device_infos()]
        assert "ModTest-EP" in names
        assert "modtest_ep" in sys.modules
        assert info.origin == "modtest_widgets 1.2"
    finally:
        module_unregister(info.name)


def test_modinfo_is_checked() -> None:
    with pytest.raises(Error, match="'name' must be a string"):
        modinfo_from_json([{"import_name": "x", "objs": []}])
    with pytest.raises(Error, match="the module list must be a list of objects"):
        modinfo_from_json({"name": "x"})
