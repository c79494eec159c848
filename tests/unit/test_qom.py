"""Tests of qemu_api.qom: types, casts, the tree, properties, paths."""

import re
from collections.abc import Iterator
from typing import ClassVar

import pytest

from qemu_api.error import Error, ErrorClass
from qemu_api.qom import (
    Container,
    Interface,
    Object,
    ObjectProperty,
    container_get,
    object_cast,
    object_class_by_name,
    object_class_dynamic_cast,
    object_class_get_list,
    object_dynamic_cast,
    object_get_objects_root,
    object_get_root,
    object_new,
    object_property_add_child,
    object_property_get,
    object_property_set,
    object_resolve_path,
    object_resolve_path_full,
    object_resolve_path_type,
    object_tree_reset,
    object_unparent,
    override,
    qom_get,
    qom_list,
    qom_set,
    type_get_parent,
    type_info,
    type_is_ancestor,
)


@pytest.fixture(autouse=True)
def _fresh_tree() -> Iterator[None]:
    object_tree_reset()
    yield
    object_tree_reset()


class Greeting(Interface, type_name="test-qom-greeting"):
    def greet(self) -> str:
        return "hi"


class Animal(Object, type_name="test-qom-animal", abstract=True):
    order: ClassVar[list[str]] = []

    @override
    def instance_init(self) -> None:
        Animal.order.append("animal")
        self.legs = 4

    @override
    def instance_post_init(self) -> None:
        Animal.order.append("post")


class Dog(Animal, Greeting, type_name="test-qom-dog"):
    finalized: ClassVar[list[str]] = []
    unparented: ClassVar[list[str]] = []

    @override
    def instance_init(self) -> None:
        Animal.order.append("dog")
        self.name = "rex"
        self.good = True
        self.age = 3
        self.property_add_str("name", lambda: self.name, self._set_name)
        self.property_add_bool("good", lambda: self.good)
        self.property_add_uint("age", 8, lambda: self.age, self._set_age)

    def _set_name(self, v: str) -> None:
        self.name = v

    def _set_age(self, v: int) -> None:
        self.age = v

    @override
    def instance_unparent(self) -> None:
        Dog.unparented.append(self.name)
        super().instance_unparent()

    @override
    def instance_finalize(self) -> None:
        Dog.finalized.append(self.name)


class Cat(Animal, type_name="test-qom-cat"):
    pass


class Broken(Object, type_name="test-qom-broken"):
    @override
    def instance_init(self) -> None:
        object_get_root().property_add_child("child", Container())
        raise Error("cannot build this")


class Sneaky(Object, type_name="test-qom-sneaky"):
    @override
    def instance_init(self) -> None:
        object_get_root().property_add_child("sneaky", self)


class Kennel(Object, type_name="test-qom-kennel"):
    @override
    def instance_init(self) -> None:
        self.resident: Dog | None = None
        self.property_add_link("resident", Dog, lambda: self.resident, self._set)

    def _set(self, d: Dog | None) -> None:
        self.resident = d


def refuse(owner: Object, name: str, target: Object | None) -> None:
    raise Error(f"link '{name}' is frozen")


class Frozen(Object, type_name="test-qom-frozen"):
    @override
    def instance_init(self) -> None:
        self.target: Object | None = None
        self.property_add_link("t", Object, lambda: self.target, self._set, refuse)
        self.property_add_link("ro", Object, lambda: self.target, self._set, None)

    def _set(self, d: Object | None) -> None:
        self.target = d


# -- types ------------------------------------------------------------------


def test_type_registry_records() -> None:
    info = type_info("test-qom-dog")
    assert info is not None
    assert info.parent == "test-qom-animal"
    assert info.interfaces == ("test-qom-greeting",)
    assert info.cls is Dog
    assert not info.abstract
    animal = type_info("test-qom-animal")
    assert animal is not None
    assert animal.abstract
    greeting = type_info("test-qom-greeting")
    assert greeting is not None
    assert greeting.parent == "interface"
    assert type_get_parent("test-qom-dog") == "test-qom-animal"
    assert type_get_parent("object") is None
    assert type_get_parent("nope") is None


def test_hierarchy_queries() -> None:
    assert type_is_ancestor("test-qom-dog", "test-qom-animal")
    assert type_is_ancestor("test-qom-dog", "object")
    assert type_is_ancestor("test-qom-dog", "test-qom-greeting")
    assert not type_is_ancestor("test-qom-cat", "test-qom-greeting")
    assert not type_is_ancestor("nope", "object")
    assert object_class_by_name("test-qom-dog") is Dog
    assert object_class_by_name("test-qom-greeting") is None
    assert object_class_by_name("nope") is None
    assert object_class_dynamic_cast(Dog, "test-qom-greeting") is Dog
    assert object_class_dynamic_cast(Cat, "test-qom-greeting") is None
    animals = object_class_get_list("test-qom-animal")
    assert animals == [Cat, Dog]
    assert Animal in object_class_get_list("test-qom-animal", include_abstract=True)
    assert object_class_get_list("test-qom-greeting") == [Dog]


def test_registration_errors() -> None:
    with pytest.raises(TypeError, match="must name its QOM type"):

        class Nameless(Object):
            pass

    with pytest.raises(TypeError, match="Registering 'test-qom-dog' which already"):

        class Again(Object, type_name="test-qom-dog"):
            pass

    with pytest.raises(TypeError, match="define instance_init"):

        class WithInit(Object, type_name="test-qom-with-init"):
            def __init__(self) -> None:
                super().__init__()

    with pytest.raises(TypeError, match="must name its QOM type"):

        class Iface(Interface):
            pass


def test_class_init_runs_once_per_class() -> None:
    calls: list[str] = []

    class Counted(Object, type_name="test-qom-counted"):
        @override
        @classmethod
        def class_init(cls) -> None:
            calls.append(cls.TYPE_NAME)

    class Sub(Counted, type_name="test-qom-counted-sub"):
        pass

    assert calls == ["test-qom-counted"]
    assert Sub.TYPE_NAME == "test-qom-counted-sub"


# -- construction -----------------------------------------------------------------


def test_init_hooks_run_base_first_then_post_init() -> None:
    Animal.order.clear()
    d = Dog.new()
    assert Animal.order == ["animal", "dog", "post"]
    assert d.legs == 4
    assert d.typename() == "test-qom-dog"
    assert d.parent is None
    assert d.canonical_path() is None


def test_object_new_by_name_and_errors() -> None:
    assert isinstance(object_new("test-qom-cat"), Cat)
    with pytest.raises(Error, match="unknown type 'nope'"):
        object_new("nope")
    with pytest.raises(Error, match="object type 'test-qom-animal' is abstract"):
        object_new("test-qom-animal")
    with pytest.raises(Error, match="object type 'test-qom-animal' is abstract"):
        Animal()


def test_failed_init_leaves_no_trace() -> None:
    with pytest.raises(Error, match="cannot build this"):
        Broken()
    # the hook added a child to the root before failing: that is the hook's
    # own doing, but the half-built object itself never appears anywhere
    assert [c.typename() for c in object_get_root().children()] == ["container"]


def test_half_initialised_object_cannot_join_tree() -> None:
    with pytest.raises(Error, match="while it is still being initialised"):
        Sneaky()
    assert object_get_root().property_find("sneaky") is None


# -- casts ----------------------------------------------------------------------


def test_casts() -> None:
    d = Dog()
    c = Cat()
    assert object_dynamic_cast(d, "test-qom-greeting") is d
    assert object_dynamic_cast(c, "test-qom-greeting") is None
    assert object_dynamic_cast(d, "no-such-type") is None
    g = d.dynamic_cast(Greeting)
    assert g is not None
    assert g.greet() == "hi"
    assert c.dynamic_cast(Dog) is None
    assert object_cast(d, Animal) is d
    assert d.cast(Greeting) is d
    with pytest.raises(
        Error,
        match="object of type 'test-qom-cat' is not an instance of 'test-qom-dog'",
    ):
        object_cast(c, Dog)
    with pytest.raises(Error, match="is not an instance of 'test-qom-greeting'"):
        c.cast(Greeting)


# -- tree -------------------------------------------------------------------


def test_containers_and_canonical_paths() -> None:
    root = object_get_root()
    assert root.canonical_path() == "/"
    unattached = container_get(root, "/machine/unattached")
    assert unattached.canonical_path() == "/machine/unattached"
    assert container_get(root, "machine/unattached") is unattached
    assert object_get_objects_root().canonical_path() == "/objects"
    d = object_property_add_child(unattached, "dog", Dog())
    assert d.canonical_path() == "/machine/unattached/dog"
    assert d.parent is unattached
    assert d.name_in_parent == "dog"
    prop = unattached.property_find("dog")
    assert prop is not None
    assert prop.type == "child<test-qom-dog>"
    assert prop.is_child()
    assert not prop.writable
    assert unattached.property_get("dog") == "/machine/unattached/dog"


def test_auto_numbered_children() -> None:
    c = container_get(object_get_root(), "/machine/unattached")
    a = c.property_add_child("device[*]", Cat())
    b = c.property_add_child("device[*]", Cat())
    assert (a.name_in_parent, b.name_in_parent) == ("device[0]", "device[1]")
    a.unparent()
    again = c.property_add_child("device[*]", Cat())
    assert again.name_in_parent == "device[0]"


def test_child_errors() -> None:
    root = object_get_root()
    d = root.property_add_child("dog", Dog())
    with pytest.raises(
        Error,
        match=re.escape(
            "attempt to add duplicate property 'dog' to object (type 'container')"
        ),
    ):
        root.property_add_child("dog", Dog())
    other = root.property_add_child("other", Container())
    with pytest.raises(Error, match="already has a parent \\(as 'dog'\\)"):
        other.property_add_child("again", d)
    with pytest.raises(Error, match="cycle"):
        other.property_add_child("loop", root)


def test_unparent_removes_subtree() -> None:
    Dog.finalized.clear()
    Dog.unparented.clear()
    root = object_get_root()
    box = root.property_add_child("box", Container())
    inner = box.property_add_child("inner", Container())
    d = inner.property_add_child("dog", Dog())
    d.name = "fido"
    object_unparent(box)
    assert root.property_find("box") is None
    assert box.parent is None
    assert box.canonical_path() is None
    assert d.canonical_path() is None
    assert inner.property_find("dog") is None
    assert Dog.unparented == ["fido"]
    assert Dog.finalized == ["fido"]
    assert object_resolve_path("/box/inner/dog") is None
    # unparenting a detached object is a no-op
    box.unparent()


# -- links -------------------------------------------------------------------


def test_link_set_get_and_resolution() -> None:
    root = object_get_root()
    k = root.property_add_child("kennel", Kennel())
    d = container_get(root, "/machine").property_add_child("rex", Dog())
    prop = k.property_find("resident")
    assert prop is not None
    assert prop.type == "link<test-qom-dog>"
    assert prop.is_link()
    assert k.property_get("resident") == ""
    k.property_set("resident", "/machine/rex")
    assert k.resident is d
    assert k.property_get("resident") == "/machine/rex"
    # paths follow links too
    assert object_resolve_path("/kennel/resident") is d
    k.property_set("resident", "rex")  # partial path
    assert k.resident is d
    k.property_set("resident", "")
    assert k.resident is None


def test_link_errors() -> None:
    root = object_get_root()
    k = root.property_add_child("kennel", Kennel())
    container_get(root, "/machine").property_add_child("tom", Cat())
    container_get(root, "/a").property_add_child("rex", Dog())
    container_get(root, "/b").property_add_child("rex", Dog())
    with pytest.raises(Error) as e:
        k.property_set("resident", "/machine/nothing")
    assert str(e.value) == "Device '/machine/nothing' not found"
    assert e.value.error_class is ErrorClass.DEVICE_NOT_FOUND
    with pytest.raises(
        Error, match="Invalid parameter type for 'resident', expected: test-qom-dog"
    ):
        k.property_set("resident", "/machine/tom")
    with pytest.raises(Error, match="Path 'rex' does not uniquely identify an object"):
        k.property_set("resident", "rex")
    with pytest.raises(Error, match="expected: string"):
        k.property_set("resident", 3)
    with pytest.raises(Error, match="expected: test-qom-dog"):
        k.property_set_link("resident", Cat())
    with pytest.raises(
        Error, match=re.escape("Property 'test-qom-kennel.nope' not found")
    ):
        k.property_set_link("nope", None)
    k.property_add_bool("flag", lambda: True)
    with pytest.raises(
        Error, match=re.escape("Property 'test-qom-kennel.flag' is not a link")
    ):
        k.property_set_link("flag", None)


def test_link_checks() -> None:
    f = object_get_root().property_add_child("f", Frozen())
    with pytest.raises(Error, match="link 't' is frozen"):
        f.property_set("t", "/f")
    with pytest.raises(Error, match="link 't' is frozen"):
        f.property_set_link("t", Cat())
    assert f.target is None
    with pytest.raises(
        Error, match=re.escape("Property 'test-qom-frozen.ro' is not writable")
    ):
        f.property_set("ro", "/f")
    with pytest.raises(
        Error, match=re.escape("Property 'test-qom-frozen.ro' is not writable")
    ):
        f.property_set_link("ro", Cat())


def test_link_to_unattached_target_reads_empty() -> None:
    k = object_get_root().property_add_child("kennel", Kennel())
    d = Dog()
    k.property_set_link("resident", d)
    assert k.resident is d
    assert k.property_get("resident") == ""


# -- path resolution -------------------------------------------------------------


def test_resolve_absolute_and_partial() -> None:
    root = object_get_root()
    uart_a = container_get(root, "/machine/a/uart")
    container_get(root, "/machine/b/uart")
    d = container_get(root, "/machine/a").property_add_child("dog", Dog())
    assert object_resolve_path("/") is root
    assert object_resolve_path("/machine//a/uart") is uart_a
    assert object_resolve_path("/machine/a/nothing") is None
    assert object_resolve_path("a/uart") is uart_a
    assert object_resolve_path_full("uart") == (None, True)
    assert object_resolve_path("uart") is None
    assert object_resolve_path_full("nothing") == (None, False)
    assert object_resolve_path("dog") is d
    # typed resolution narrows a partial path to one candidate
    assert object_resolve_path_type("/machine/a/dog", "test-qom-animal") is d
    assert object_resolve_path_type("/machine/a/uart", "test-qom-dog") is None
    assert object_resolve_path_type("a", "container") is not None


# -- properties ------------------------------------------------------------------


def test_property_table_and_accessors() -> None:
    d = object_get_root().property_add_child("dog", Dog())
    assert [(p.name, p.type) for p in d.properties()] == [
        ("name", "str"),
        ("good", "bool"),
        ("age", "uint8"),
    ]
    assert d.property_get_type("age") == "uint8"
    object_property_set(d, "name", "max")
    assert object_property_get(d, "name") == "max"
    d.property_set("age", 255)
    assert d.age == 255
    assert d.property_get("good") is True


def test_property_errors() -> None:
    d = Dog()
    with pytest.raises(
        Error, match=re.escape("Property 'test-qom-dog.nope' not found")
    ):
        d.property_get("nope")
    with pytest.raises(
        Error, match=re.escape("Property 'test-qom-dog.nope' not found")
    ):
        d.property_set("nope", 1)
    with pytest.raises(
        Error, match=re.escape("Property 'test-qom-dog.nope' not found")
    ):
        d.property_get_type("nope")
    with pytest.raises(
        Error, match=re.escape("Property 'test-qom-dog.good' is not writable")
    ):
        d.property_set("good", False)
    with pytest.raises(
        Error, match="Invalid parameter type for 'name', expected: string"
    ):
        d.property_set("name", 5)
    with pytest.raises(
        Error, match="Invalid parameter type for 'age', expected: integer"
    ):
        d.property_set("age", True)
    with pytest.raises(
        Error,
        match=r"Property 'test-qom-dog.age' doesn't take value '256' "
        r"\(minimum: 0, maximum: 255\)",
    ):
        d.property_set("age", 256)
    with pytest.raises(Error, match="duplicate property 'name'"):
        d.property_add_str("name", lambda: "x")
    with pytest.raises(ValueError, match="bits must be 8, 16, 32 or 64"):
        d.property_add_uint("odd", 12, lambda: 0)


def test_write_only_and_deleted_properties() -> None:
    store: list[object] = []
    d = Dog()
    d.property_add(ObjectProperty("sink", "bool", setter=store.append))
    d.property_set("sink", True)
    assert store == [True]
    with pytest.raises(
        Error, match=re.escape("Property 'test-qom-dog.sink' is not readable")
    ):
        d.property_get("sink")
    released: list[str] = []
    d.property_add(ObjectProperty("tmp", "str", release=lambda: released.append("x")))
    d.property_del("tmp")
    assert released == ["x"]
    with pytest.raises(Error, match="not found"):
        d.property_del("tmp")


def test_bool_property_input_check() -> None:
    flag = [False]
    c = Container()
    c.property_add_bool("on", lambda: flag[0], lambda v: flag.__setitem__(0, v))
    c.property_set("on", True)
    assert flag == [True]
    with pytest.raises(
        Error, match="Invalid parameter type for 'on', expected: boolean"
    ):
        c.property_set("on", 1)


def test_qom_list_get_set() -> None:
    d = container_get(object_get_root(), "/machine").property_add_child("rex", Dog())
    rows = qom_list("/machine/rex")
    assert [(r.name, r.type) for r in rows] == [
        ("name", "str"),
        ("good", "bool"),
        ("age", "uint8"),
    ]
    assert [(r.name, r.type) for r in qom_list("/machine")] == [
        ("rex", "child<test-qom-dog>")
    ]
    qom_set("/machine/rex", "name", "buddy")
    assert d.name == "buddy"
    assert qom_get("rex", "name") == "buddy"
    with pytest.raises(Error) as e:
        qom_get("/machine/none", "name")
    assert str(e.value) == "Device '/machine/none' not found"
    assert e.value.error_class is ErrorClass.DEVICE_NOT_FOUND
    with pytest.raises(Error, match="Device '/x' not found"):
        qom_set("/x", "name", "a")
    with pytest.raises(Error, match="Device '/x' not found"):
        qom_list("/x")


def test_tree_reset_tears_everything_down() -> None:
    Dog.finalized.clear()
    d = container_get(object_get_root(), "/machine").property_add_child("rex", Dog())
    old_root = object_get_root()
    object_tree_reset()
    assert object_get_root() is not old_root
    assert Dog.finalized == [d.name]
    assert object_resolve_path("/machine") is None


def test_owned_resources_are_released_in_reverse_order() -> None:
    owner = Container()
    object_get_root().property_add_child("owner", owner)
    order = []

    class Probe:
        def __init__(self, name: str) -> None:
            self.name = name

        def owner_quiesce(self) -> None:
            order.append(("quiesce", self.name))

        def owner_release(self) -> None:
            order.append(("release", self.name))

    for name in ("a", "b", "c"):
        owner.own_resource(Probe(name))
    kept = Probe("kept")
    owner.own_resource(kept)
    owner.disown_resource(kept)
    owner.unparent()
    assert order == [("release", "c"), ("release", "b"), ("release", "a")]
    assert owner.is_finalized()


def test_chained_hooks_are_checked_at_class_definition() -> None:
    with pytest.raises(TypeError, match="the parent's would run twice"):

        class Again(Animal, type_name="test-qom-again"):
            @override
            def instance_init(self) -> None:
                super().instance_init()

    assert object_class_by_name("test-qom-again") is None


def test_failed_init_releases_owned_resources_and_children() -> None:
    released = []

    class Tracker:
        def owner_quiesce(self) -> None:
            pass

        def owner_release(self) -> None:
            released.append("tracker")

    class HalfBuilt(Object, type_name="test-qom-half-built"):
        @override
        def instance_init(self) -> None:
            self.own_resource(Tracker())
            self.part = self.property_add_child("part", Container())
            HalfBuilt.seen = self
            raise Error("no")

        seen: ClassVar[Object | None] = None

    with pytest.raises(Error, match="no"):
        HalfBuilt()
    assert released == ["tracker"]
    half = HalfBuilt.seen
    assert half is not None
    assert half.is_finalized()
    assert half.properties() == []
