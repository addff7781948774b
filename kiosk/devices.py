"""Printers, scanners and USB keys plugged into the terminal, watched live (pyudev).

A USB key is where a resident's documents would leak to, or where something
unwanted comes from, so the site can refuse them: the daemon de-authorises the
key when it has the right to (provisioning also installs a udev rule doing the
same at the kernel's level), and ``status`` shows what was plugged either way.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pyudev

log = logging.getLogger(__name__)

PRINTER_INTERFACE_CLASS = "07"   # USB interface class 07: printers
MAX_EVENTS = 20


@dataclass(frozen=True)
class PluggedDevice:
    kind: str          # "printer", "scanner" or "usb-storage"
    name: str
    path: str
    action: str        # "present", "add" or "remove"
    refused: bool = False
    enforced: bool = False
    at: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def classify(device: pyudev.Device) -> str | None:
    """Which of the devices the kiosk cares about this is, if any."""
    properties = device.properties
    if device.subsystem == "block" and properties.get("ID_BUS") == "usb" \
            and properties.get("DEVTYPE") == "disk":
        return "usb-storage"
    if properties.get("libsane_matched") == "yes":
        return "scanner"
    if device.subsystem == "usbmisc" and (device.sys_name or "").startswith("lp"):
        return "printer"
    interfaces = properties.get("ID_USB_INTERFACES", "").split(":")  # ":070102:0e0100:"
    if device.subsystem == "usb" and properties.get("DEVTYPE") == "usb_device" \
            and any(i.startswith(PRINTER_INTERFACE_CLASS) for i in interfaces):
        return "printer"
    return None


def _name(device: pyudev.Device) -> str:
    properties = device.properties
    parts = [properties.get("ID_VENDOR_FROM_DATABASE") or properties.get("ID_VENDOR"),
             properties.get("ID_MODEL_FROM_DATABASE") or properties.get("ID_MODEL")]
    return " ".join(p for p in parts if p).replace("_", " ") or device.sys_name or "?"


def deauthorize(device: pyudev.Device) -> bool:
    """Switch off the USB device behind a block device; False without the right to."""
    usb = device.find_parent("usb", "usb_device")
    if usb is None:
        return False
    try:
        (Path(usb.sys_path) / "authorized").write_text("0")
    except OSError:
        return False
    return True


class DeviceWatcher:
    def __init__(self, refuse_usb_storage: bool = True):
        self.refuse_usb_storage = refuse_usb_storage
        self._present: dict[str, PluggedDevice] = {}
        self._events: list[PluggedDevice] = []
        self._lock = threading.Lock()
        self._observer: pyudev.MonitorObserver | None = None
        self.watching = False

    def _record(self, device: pyudev.Device, action: str) -> None:
        kind = classify(device)
        if kind is None:
            return
        refused = kind == "usb-storage" and self.refuse_usb_storage and action != "remove"
        enforced = deauthorize(device) if refused and action == "add" else False
        entry = PluggedDevice(kind, _name(device), device.sys_path, action, refused, enforced,
                              time.time())
        with self._lock:
            if action == "remove":
                self._present.pop(device.sys_path, None)
            else:
                self._present[device.sys_path] = entry
            if action != "present":
                self._events = (self._events + [entry])[-MAX_EVENTS:]
        if refused:
            log.warning("USB storage refused: %s (%s)", entry.name,
                        "switched off" if enforced else "no right to switch it off")

    def scan_present(self) -> None:
        context = pyudev.Context()
        for subsystem in ("block", "usb", "usbmisc"):
            for device in context.list_devices(subsystem=subsystem):
                self._record(device, "present")

    def start(self) -> None:
        try:
            self.scan_present()
            monitor = pyudev.Monitor.from_netlink(pyudev.Context())
            for subsystem in ("block", "usb", "usbmisc"):
                monitor.filter_by(subsystem)
            self._observer = pyudev.MonitorObserver(
                monitor, callback=lambda device: self._record(device, device.action or "change"),
                name="udev-watch")
            self._observer.daemon = True
            self._observer.start()
            self.watching = True
        except Exception as exc:  # no udev in a container: report, don't crash
            log.warning("device watching unavailable: %s", exc)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.send_stop()

    def snapshot(self) -> list[dict[str, object]]:
        with self._lock:
            return [d.as_dict() for d in self._present.values()]

    def recent_events(self) -> list[dict[str, object]]:
        with self._lock:
            return [d.as_dict() for d in self._events]
