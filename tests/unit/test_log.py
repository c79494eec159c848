import threading

import pytest

from qemu_api import log
from qemu_api.error import Error
from qemu_api.log import (
    CPU_LOG_EXEC,
    CPU_LOG_INT,
    CPU_LOG_MMU,
    CPU_LOG_PAGE,
    CPU_LOG_PCALL,
    CPU_LOG_PLUGIN,
    CPU_LOG_RESET,
    CPU_LOG_TB_CPU,
    CPU_LOG_TB_FPU,
    CPU_LOG_TB_IN_ASM,
    CPU_LOG_TB_NOCHAIN,
    CPU_LOG_TB_OP,
    CPU_LOG_TB_OP_IND,
    CPU_LOG_TB_OP_OPT,
    CPU_LOG_TB_OUT_ASM,
    CPU_LOG_TB_VPU,
    LOG_GUEST_ERROR,
    LOG_INVALID_MEM,
    LOG_PER_THREAD,
    LOG_STRACE,
    LOG_TB_OP_PLUGIN,
    LOG_TRACE,
    LOG_UNIMP,
    QEMU_LOG_ITEMS,
    log_mask_ln,
    qemu_get_log_filename,
    qemu_get_log_mask,
    qemu_log,
    qemu_log_enabled,
    qemu_log_force_flags,
    qemu_log_help,
    qemu_log_mask,
    qemu_log_reset,
    qemu_log_separate,
    qemu_log_set_trace_hook,
    qemu_loglevel_mask,
    qemu_set_log,
    qemu_set_log_filename,
    qemu_set_log_filename_flags,
    qemu_str_to_log_mask,
)


@pytest.fixture(autouse=True)
def plain_log():
    """Test the log as built without the log trace backend.

    qemu_api.trace (when imported) forces LOG_TRACE on and installs the
    ``-d trace:`` hook, as QEMU's log trace backend does; set both aside.
    """
    forced, hook = log._forced_flags, log._trace_hook
    qemu_log_force_flags(0)
    qemu_log_set_trace_hook(None)
    qemu_log_reset()
    yield
    qemu_log_reset()
    qemu_log_set_trace_hook(hook)
    qemu_log_force_flags(forced)


@pytest.fixture
def trace_hook():
    patterns: list[str] = []
    qemu_log_set_trace_hook(patterns.append)
    return patterns


def test_mask_values_match_qemu():
    assert CPU_LOG_TB_OUT_ASM == 1 << 0
    assert CPU_LOG_TB_IN_ASM == 1 << 1
    assert CPU_LOG_TB_OP == 1 << 2
    assert CPU_LOG_TB_OP_OPT == 1 << 3
    assert CPU_LOG_INT == 1 << 4
    assert CPU_LOG_EXEC == 1 << 5
    assert CPU_LOG_PCALL == 1 << 6
    assert CPU_LOG_TB_CPU == 1 << 8
    assert CPU_LOG_RESET == 1 << 9
    assert LOG_UNIMP == 1 << 10
    assert LOG_GUEST_ERROR == 1 << 11
    assert CPU_LOG_MMU == 1 << 12
    assert CPU_LOG_TB_NOCHAIN == 1 << 13
    assert CPU_LOG_PAGE == 1 << 14
    assert LOG_TRACE == 1 << 15
    assert CPU_LOG_TB_OP_IND == 1 << 16
    assert CPU_LOG_TB_FPU == 1 << 17
    assert CPU_LOG_PLUGIN == 1 << 18
    assert LOG_STRACE == 1 << 19
    assert LOG_PER_THREAD == 1 << 20
    assert CPU_LOG_TB_VPU == 1 << 21
    assert LOG_TB_OP_PLUGIN == 1 << 22
    assert LOG_INVALID_MEM == 1 << 23


def test_item_names_in_qemu_order():
    assert [i.name for i in QEMU_LOG_ITEMS] == [
        "out_asm", "in_asm", "op", "op_opt", "op_ind", "op_plugin", "int", "exec",
        "cpu", "fpu", "mmu", "pcall", "cpu_reset", "unimp", "guest_errors", "page",
        "nochain", "plugin", "strace", "tid", "vpu", "invalid_mem",
    ]  # fmt: skip


def test_disabled_by_default(capsys):
    assert qemu_get_log_mask() == 0
    assert not qemu_log_enabled()
    qemu_log_mask(LOG_GUEST_ERROR, "hidden\n")
    log_mask_ln(LOG_GUEST_ERROR, "hidden")
    qemu_log("hidden too\n")  # no log destination is open yet
    assert capsys.readouterr().err == ""


def test_mask_filters_messages(capsys):
    qemu_set_log(LOG_GUEST_ERROR)
    assert qemu_log_enabled()
    assert not qemu_log_separate()
    qemu_log_mask(LOG_GUEST_ERROR, "pl011_read: Bad offset 0x1000\n")
    qemu_log_mask(LOG_UNIMP, "unimp hidden\n")
    qemu_log_mask(LOG_UNIMP | LOG_GUEST_ERROR, "either bit\n")
    log_mask_ln(LOG_GUEST_ERROR, "with newline")
    qemu_log("as is, ")
    qemu_log("no newline added")
    assert capsys.readouterr().err == (
        "pl011_read: Bad offset 0x1000\neither bit\nwith newline\n"
        "as is, no newline added"
    )


def test_loglevel_mask_and_get():
    qemu_set_log(LOG_UNIMP | CPU_LOG_INT)
    assert qemu_get_log_mask() == LOG_UNIMP | CPU_LOG_INT
    assert qemu_loglevel_mask(LOG_UNIMP)
    assert qemu_loglevel_mask(LOG_UNIMP | LOG_GUEST_ERROR)
    assert not qemu_loglevel_mask(LOG_GUEST_ERROR)


def test_log_stays_open_when_mask_returns_to_zero(capsys):
    qemu_set_log(LOG_UNIMP)
    qemu_set_log(0)
    qemu_log_mask(LOG_UNIMP, "masked\n")
    qemu_log("still open\n")
    assert capsys.readouterr().err == "still open\n"


def test_stderr_looked_up_at_write_time(capsys, monkeypatch):
    import io

    qemu_set_log(LOG_GUEST_ERROR)
    buf = io.StringIO()
    monkeypatch.setattr("sys.stderr", buf)
    log_mask_ln(LOG_GUEST_ERROR, "to the new stream")
    assert buf.getvalue() == "to the new stream\n"


def test_log_to_file(tmp_path, capsys):
    path = tmp_path / "qemu.log"
    path.write_text("old contents\n")
    qemu_set_log_filename(str(path))
    assert qemu_get_log_filename() == str(path)
    assert path.read_text() == "old contents\n"  # opened only when enabled
    qemu_set_log(LOG_GUEST_ERROR)
    assert qemu_log_separate()
    log_mask_ln(LOG_GUEST_ERROR, "one")
    log_mask_ln(LOG_GUEST_ERROR, "two")
    assert path.read_text() == "one\ntwo\n"  # truncated, then flushed per message
    assert capsys.readouterr().err == ""


def test_change_file_while_enabled(tmp_path):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    qemu_set_log(LOG_UNIMP)
    qemu_set_log_filename(str(a))
    log_mask_ln(LOG_UNIMP, "to a")
    qemu_set_log_filename(str(b))
    log_mask_ln(LOG_UNIMP, "to b")
    assert a.read_text() == "to a\n"
    assert b.read_text() == "to b\n"


def test_back_to_stderr(tmp_path, capsys):
    qemu_set_log(LOG_UNIMP)
    qemu_set_log_filename(str(tmp_path / "x.log"))
    qemu_set_log_filename(None)
    assert qemu_get_log_filename() is None
    log_mask_ln(LOG_UNIMP, "back")
    assert capsys.readouterr().err == "back\n"


def test_filename_pid_template(tmp_path):
    import os

    qemu_set_log_filename(str(tmp_path / "q-%d.log"))
    assert qemu_get_log_filename() == str(tmp_path / f"q-{os.getpid()}.log")


@pytest.mark.parametrize("name", ["q-%s.log", "q-%d-%d.log", "q%", "q-%d%%"])
def test_bad_filename_template(tmp_path, name):
    with pytest.raises(Error, match=r"^Bad logfile template: ") as ei:
        qemu_set_log_filename(str(tmp_path / name))
    assert str(ei.value).endswith(name)
    assert "one '%d'" in (ei.value.hint or "")
    assert qemu_get_log_filename() is None


def test_unopenable_file_leaves_state_unchanged(tmp_path, capsys):
    qemu_set_log(LOG_UNIMP)
    missing = tmp_path / "no-such-dir" / "q.log"
    with pytest.raises(Error, match=f"^Error opening logfile {missing}: No such file"):
        qemu_set_log_filename(str(missing))
    assert qemu_get_log_filename() is None
    log_mask_ln(LOG_UNIMP, "still on stderr")
    assert capsys.readouterr().err == "still on stderr\n"


TID_NEEDS_TEMPLATE = r"^Filename template with '%d' required for 'tid'$"


def test_tid_needs_template(tmp_path):
    with pytest.raises(Error, match=TID_NEEDS_TEMPLATE):
        qemu_set_log(LOG_PER_THREAD | LOG_UNIMP)
    with pytest.raises(Error, match=TID_NEEDS_TEMPLATE):
        qemu_set_log_filename_flags(str(tmp_path / "x.log"), LOG_PER_THREAD)
    assert qemu_get_log_mask() == 0


def test_tid_ignored_once_a_filename_is_set(tmp_path):
    import os

    qemu_set_log_filename(str(tmp_path / "p-%d.log"))
    qemu_set_log(LOG_PER_THREAD | LOG_UNIMP)  # QEMU drops the tid bit here
    assert qemu_get_log_mask() == LOG_UNIMP
    log_mask_ln(LOG_UNIMP, "one file")
    assert (tmp_path / f"p-{os.getpid()}.log").read_text() == "one file\n"


def test_tid_per_thread_files(tmp_path):
    template = str(tmp_path / "t-%d.log")
    qemu_set_log_filename_flags(template, LOG_PER_THREAD | LOG_UNIMP)
    assert qemu_get_log_filename() == template
    assert qemu_get_log_mask() == LOG_UNIMP
    assert qemu_log_separate()
    log_mask_ln(LOG_UNIMP, "main")
    ids = [threading.get_native_id()]

    def body():
        ids.append(threading.get_native_id())
        log_mask_ln(LOG_UNIMP, "other")

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert (tmp_path / f"t-{ids[0]}.log").read_text() == "main\n"
    assert (tmp_path / f"t-{ids[1]}.log").read_text() == "other\n"
    with pytest.raises(Error, match=r"^Cannot change log filename after setting "):
        qemu_set_log_filename(str(tmp_path / "u-%d.log"))
    qemu_set_log(LOG_GUEST_ERROR)  # tid stays on
    log_mask_ln(LOG_GUEST_ERROR, "again")
    assert (tmp_path / f"t-{ids[0]}.log").read_text() == "main\nagain\n"


def test_reset(tmp_path, capsys):
    qemu_set_log_filename(str(tmp_path / "r.log"))
    qemu_set_log(LOG_UNIMP)
    qemu_log_reset()
    assert qemu_get_log_mask() == 0
    assert qemu_get_log_filename() is None
    assert not qemu_log_enabled()
    qemu_set_log(LOG_UNIMP)
    log_mask_ln(LOG_UNIMP, "stderr")
    assert capsys.readouterr().err == "stderr\n"


def test_str_to_log_mask():
    assert qemu_str_to_log_mask("guest_errors") == LOG_GUEST_ERROR
    assert qemu_str_to_log_mask("unimp,guest_errors") == LOG_UNIMP | LOG_GUEST_ERROR
    assert qemu_str_to_log_mask("cpu_reset,int,in_asm") == (
        CPU_LOG_RESET | CPU_LOG_INT | CPU_LOG_TB_IN_ASM
    )
    assert qemu_str_to_log_mask("") == 0
    for item in QEMU_LOG_ITEMS:
        assert qemu_str_to_log_mask(item.name) == item.mask


def test_str_to_log_mask_all():
    expected = 0
    for item in QEMU_LOG_ITEMS:
        expected |= item.mask
    assert qemu_str_to_log_mask("all") == expected
    assert not expected & LOG_TRACE


@pytest.mark.parametrize("bad", ["guest_error", "unimp,", "unimp,,int", "help", "All"])
def test_str_to_log_mask_unknown(bad):
    with pytest.raises(Error, match=r"^Unknown log item ") as ei:
        qemu_str_to_log_mask(bad)
    assert f"in '-d {bad}'" in str(ei.value)
    assert ei.value.hint == qemu_log_help()


def test_trace_items_without_hook_are_unknown():
    with pytest.raises(Error, match=r"^Unknown log item 'trace:pl011_\*'"):
        qemu_str_to_log_mask("trace:pl011_*")


def test_trace_items_go_to_hook(trace_hook):
    mask = qemu_str_to_log_mask("guest_errors,trace:pl011_*,trace:hpet_timer")
    assert mask == LOG_GUEST_ERROR | LOG_TRACE
    assert trace_hook == ["pl011_*", "hpet_timer"]


def test_empty_trace_pattern_is_unknown(trace_hook):
    with pytest.raises(Error, match=r"^Unknown log item 'trace:'"):
        qemu_str_to_log_mask("trace:")
    assert trace_hook == []


def test_help_text():
    text = qemu_log_help()
    lines = text.splitlines()
    assert lines[0] == "Log items (comma separated):"
    assert lines[1] == (
        "out_asm         show generated host assembly code for each compiled TB"
    )
    assert "unimp           log unimplemented functionality" in lines
    assert (
        "guest_errors    log when the guest OS does something invalid (eg accessing a"
        in lines
    )
    assert "non-existent register)" in lines
    assert lines[-1] == "invalid_mem     log invalid memory accesses"
    assert "trace:" not in text


def test_help_text_with_trace(trace_hook):
    text = qemu_log_help()
    assert text.endswith(
        "invalid_mem     log invalid memory accesses\n"
        "trace:PATTERN   enable trace events\n"
        '\nUse "-d trace:help" to get a list of trace events.\n\n'
    )


def test_disabled_call_is_one_int_test():
    # qemu_log_mask must not format, look up streams or take locks when off.
    assert log._loglevel == 0
    code = qemu_log_mask.__code__
    assert code.co_names == ("_loglevel", "_write")


def test_forced_flags_stay_on(capsys):
    qemu_log_force_flags(LOG_TRACE)
    assert qemu_get_log_mask() == LOG_TRACE
    assert qemu_log_enabled()  # a non-zero mask opens the log
    qemu_set_log(LOG_UNIMP)
    assert qemu_get_log_mask() == LOG_UNIMP | LOG_TRACE
    qemu_set_log(0)
    assert qemu_get_log_mask() == LOG_TRACE
    qemu_log_reset()
    assert qemu_get_log_mask() == LOG_TRACE
    qemu_log("trace line\n")
    assert capsys.readouterr().err == "trace line\n"
    qemu_log_force_flags(0)
    assert qemu_get_log_mask() == LOG_TRACE  # no longer forced, still set
    qemu_set_log(0)
    assert qemu_get_log_mask() == 0
