"""QMP events: models send them, monitors receive them.

This module models QEMU's ``include/qapi/qmp-event.h`` together with the
``qapi_event_emit()`` that QEMU's ``monitor/monitor.c`` implements: the event
senders generated from the schema hand each event to :func:`qapi_event_emit`,
which delivers it to every registered listener.

Models send an event through its typed sender, generated at build time from
``qapi/schema.json`` into :mod:`qapi.qapi_events` (QEMU's generated
``qapi-events-*.h``): one function per event, ``qapi_event_send_<name>()``,
whose keyword arguments are the event's members with their schema types, so
mypy checks every call.  The runtime registers the listeners (each QMP monitor
adds one); a model never imports the runtime to send an event, and the data
flows one way, model -> :mod:`qemu_api.qmp_event` -> monitor:

>>> from qapi.qapi_events import qapi_event_send_rtc_change
>>> seen = []
>>> def listener(name, data):
...     seen.append((name, data))
>>> qapi_event_add_listener(listener)
>>> qapi_event_send_rtc_change(offset=-3600, qom_path="/machine/unattached/rtc")
>>> seen
[('RTC_CHANGE', {'offset': -3600, 'qom-path': '/machine/unattached/rtc'})]
>>> qapi_event_remove_listener(listener)
>>> qapi_event_send_rtc_change(offset=0, qom_path="/x")  # nobody listens now
>>> len(seen)
1

The members go on the wire under their schema names (``qom-path``), optional
members only when given.  An event without members is delivered with empty
data (and the monitor sends it without a ``data`` key, as QEMU does).
QEMU's monitor rate-limits some events (``RTC_CHANGE`` among them, one per
second); pyqemu's delivers every event.
"""

from __future__ import annotations

from collections.abc import Callable

from qemu_api.qom import JSONValue

__all__ = [
    "EventListener",
    "qapi_event_add_listener",
    "qapi_event_emit",
    "qapi_event_remove_all_listeners",
    "qapi_event_remove_listener",
]

EventListener = Callable[[str, dict[str, JSONValue]], None]
"""A receiver of QMP events: ``listener(event name, data)``."""

_listeners: list[EventListener] = []


def qapi_event_add_listener(listener: EventListener) -> None:
    """Deliver every later event to ``listener`` (a QMP monitor, a test).

    Listeners run in the order they were added, in the thread that sends the
    event (with the BQL held, as models send events from their callbacks).
    """
    _listeners.append(listener)


def qapi_event_remove_listener(listener: EventListener) -> None:
    """Stop delivering events to ``listener`` (no error if it is not registered)."""
    if listener in _listeners:
        _listeners.remove(listener)


def qapi_event_remove_all_listeners() -> None:
    """Forget every listener (for a new machine or a test)."""
    _listeners.clear()


def qapi_event_emit(name: str, data: dict[str, JSONValue]) -> None:
    """Deliver the event ``name`` with ``data`` to every listener.

    The generated ``qapi_event_send_*()`` functions call this with the
    event's name and its members in schema order; models call those instead,
    so that the schema types are checked.  Calling it directly is for events
    outside the schema: tests of the monitor's framing, for instance.

    >>> seen = []
    >>> qapi_event_add_listener(lambda name, data: seen.append(name))
    >>> qapi_event_emit("PING", {})
    >>> seen
    ['PING']
    >>> qapi_event_remove_all_listeners()
    """
    for listener in list(_listeners):
        listener(name, data)
