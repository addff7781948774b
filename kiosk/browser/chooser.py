"""The file chooser portals open for uploads: only this session's scans and downloads.

A Qt file dialog would let a resident browse the whole disk (and see other
people's traces if any survived); this one lists nothing else, in big rows a
finger can hit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiosk.i18n import _


def choose(parent: Any, files: list[Path], multiple: bool) -> list[Path]:
    from qtpy import QtCore, QtGui, QtWidgets

    dialog = QtWidgets.QDialog(parent)
    dialog.setWindowTitle(_("Choose a document"))
    dialog.setWindowFlags(QtCore.Qt.WindowType.Dialog | QtCore.Qt.WindowType.FramelessWindowHint)
    dialog.setStyleSheet("QWidget { font-size: 28px; } QPushButton { min-height: 72px; "
                         "padding: 0 32px; } QListWidget::item { min-height: 72px; }")
    layout = QtWidgets.QVBoxLayout(dialog)
    title = QtWidgets.QLabel(_("Choose a document") if files else
                             _("No document yet: scan one or save one from a site first."))
    title.setWordWrap(True)
    layout.addWidget(title)
    listing = QtWidgets.QListWidget()
    listing.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.MultiSelection if multiple
                             else QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
    for path in files:
        item = QtWidgets.QListWidgetItem(path.name)
        item.setData(QtCore.Qt.ItemDataRole.UserRole, str(path))
        item.setIcon(QtGui.QIcon.fromTheme("text-x-generic"))
        listing.addItem(item)
    layout.addWidget(listing)
    buttons = QtWidgets.QDialogButtonBox()
    ok = buttons.addButton(_("Send this document"), QtWidgets.QDialogButtonBox.ButtonRole.AcceptRole)
    buttons.addButton(_("Cancel"), QtWidgets.QDialogButtonBox.ButtonRole.RejectRole)
    ok.setEnabled(False)
    listing.itemSelectionChanged.connect(lambda: ok.setEnabled(bool(listing.selectedItems())))
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout.addWidget(buttons)
    if parent is not None:
        dialog.resize(max(600, parent.width() * 2 // 3), max(400, parent.height() * 2 // 3))
    if dialog.exec() != QtWidgets.QDialog.DialogCode.Accepted:
        return []
    return [Path(item.data(QtCore.Qt.ItemDataRole.UserRole)) for item in listing.selectedItems()]
