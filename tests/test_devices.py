"""pyudev on this machine's real device tree (no USB hardware is plugged in CI)."""

import pyudev

from kiosk.devices import DeviceWatcher, classify

KINDS = {None, "printer", "scanner", "usb-storage"}


def test_every_real_device_classifies_without_error():
    context = pyudev.Context()
    seen = 0
    for device in context.list_devices():
        kind = classify(device)
        assert kind in KINDS
        if kind == "usb-storage":
            assert device.properties.get("ID_BUS") == "usb"
        seen += 1
    assert seen > 10
    for device in context.list_devices(subsystem="block"):
        if device.properties.get("ID_BUS") != "usb":
            assert classify(device) != "usb-storage", device.sys_path


def test_watcher_starts_and_reports_plain_data():
    watcher = DeviceWatcher(refuse_usb_storage=True)
    watcher.start()
    try:
        for entry in watcher.snapshot() + watcher.recent_events():
            assert entry["kind"] in KINDS - {None}
            assert isinstance(entry["refused"], bool)
    finally:
        watcher.stop()
