"""The QMP monitor: QEMU's ``monitor/`` directory.

:class:`QMPMonitor` serves the QEMU Machine Protocol on a chardev, as
``-qmp`` and ``-qmp-pretty`` ask for. The command set is declared once in
``qapi/schema.json``; the build turns it into :mod:`qapi.qmp_schema` (typed
argument checking and dispatch) and the QMP reference page. The commands are
implemented in :mod:`system.monitor.commands`, the human monitor behind
``human-monitor-command`` in :mod:`system.monitor.hmp`, the protocol and
QEMU's JSON dialect in :mod:`system.monitor.qmp`.
"""

from system.monitor.qmp import QMPMonitor

__all__ = ["QMPMonitor"]
