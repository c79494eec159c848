import errno

import pytest

from qemu_api.error import (
    Error,
    ErrorClass,
    error_get_progname,
    error_report,
    error_report_err,
    error_set_progname,
    warn_report,
)


@pytest.fixture
def progname():
    old = error_get_progname()
    error_set_progname("qemu-system-arm")
    yield
    error_set_progname(old)


def test_error_class_values():
    assert [c.value for c in ErrorClass] == [
        "GenericError",
        "CommandNotFound",
        "DeviceNotActive",
        "DeviceNotFound",
        "KVMMissingCap",
    ]


def test_error_defaults():
    e = Error("something failed")
    assert str(e) == "something failed"
    assert e.msg == "something failed"
    assert e.error_class is ErrorClass.GENERIC_ERROR
    assert e.hint is None
    assert isinstance(e, Exception)
    assert e.pretty() == "something failed"


def test_error_class_and_hint():
    e = Error("nope", error_class=ErrorClass.DEVICE_NOT_FOUND, hint="try 'uart0'\n")
    assert e.error_class is ErrorClass.DEVICE_NOT_FOUND
    assert e.hint == "try 'uart0'\n"
    assert str(e) == "nope"
    assert e.pretty() == "nope\ntry 'uart0'"


def test_error_is_keyword_only():
    untyped: type = Error
    with pytest.raises(TypeError, match="positional argument"):
        untyped("x", ErrorClass.GENERIC_ERROR)


def test_prepend_changes_in_place():
    e = Error("bad size", hint="h")
    assert e.prepend("ringbuf: ") is e
    assert str(e) == "ringbuf: bad size"
    assert e.msg == "ringbuf: bad size"
    assert e.hint == "h"
    e.prepend("a: ")
    assert str(e) == "a: ringbuf: bad size"


def add_context():
    try:
        raise Error("no backend")
    except Error as e:
        raise e.prepend("uart0: ") from None


def test_prepend_and_reraise():
    with pytest.raises(Error, match=r"^uart0: no backend$"):
        add_context()


def test_append_hint():
    e = Error("x")
    assert e.append_hint("line 1\n") is e
    e.append_hint("line 2\n")
    assert e.hint == "line 1\nline 2\n"
    assert e.pretty() == "x\nline 1\nline 2"


def test_from_os_error():
    exc = OSError(errno.EACCES, "Permission denied")
    e = Error.from_os_error("Could not open '/x'", exc, hint="check permissions")
    assert str(e) == "Could not open '/x': Permission denied"
    assert e.hint == "check permissions"


def test_from_os_error_without_strerror():
    e = Error.from_os_error("open failed", OSError("weird"))
    assert str(e) == "open failed: weird"


def test_error_report(progname, capsys):
    error_report("something broke")
    warn_report("something odd")
    assert capsys.readouterr().err == (
        "qemu-system-arm: something broke\nqemu-system-arm: warning: something odd\n"
    )


def test_error_report_err(progname, capsys):
    error_report_err(Error("no such chardev", hint="Did you mean 'serial0'?"))
    error_report_err(Error("plain"))
    error_report_err(Error("two lines", hint="a\nb\n"))
    assert capsys.readouterr().err == (
        "qemu-system-arm: no such chardev\n"
        "Did you mean 'serial0'?\n"
        "qemu-system-arm: plain\n"
        "qemu-system-arm: two lines\na\nb\n"
    )


def test_default_progname():
    assert error_get_progname() == "pyqemu"
