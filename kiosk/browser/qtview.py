"""pywebview's Qt classes, replaced by ones that route through the kiosk browser.

pywebview builds its window from module-level classes of its Qt backend; swapping
them before the window exists is the one way to get our interceptor installed on
the profile before the first load, our page class (popups, permissions, file
chooser, navigations) and the profile settings that keep the engine quiet.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from kiosk.browser import network


def install(kiosk: Any) -> None:
    """Swap pywebview's Qt classes for ones that route through ``kiosk``."""
    from qtpy import QtCore
    from qtpy.QtWebEngineCore import (QWebEnginePage, QWebEngineScript,
                                      QWebEngineUrlRequestInterceptor)
    from webview.platforms import qt as webview_qt

    base = webview_qt.BrowserView
    # pywebview also asks Chromium to grant camera and microphone without asking.
    append = webview_qt.environ_append
    webview_qt.environ_append = lambda name, *flags: append(
        name, *[f for f in flags if f != "--use-fake-ui-for-media-stream"])

    class Interceptor(QWebEngineUrlRequestInterceptor):
        def __init__(self, window: Any):
            super().__init__()

        def interceptRequest(self, info: Any) -> None:  # noqa: N802 (Qt's name)
            kiosk.intercept(info)

    class PopupCatcher(QWebEnginePage):
        """A page that never shows: it hands its first navigation to the view."""

        def acceptNavigationRequest(self, url, nav_type, is_main_frame):  # noqa: N802
            kiosk.open_popup(url)
            QtCore.QTimer.singleShot(0, lambda: kiosk.popups.remove(self)
                                     if self in kiosk.popups else None)
            return False

    class Page(base.WebPage):
        def onFeaturePermissionRequested(self, url, feature):  # noqa: N802
            # pywebview grants camera and microphone; a public kiosk grants nothing.
            self.setFeaturePermission(
                url, feature, QWebEnginePage.PermissionPolicy.PermissionDeniedByUser)

        def createWindow(self, window_type):  # noqa: N802
            catcher = PopupCatcher(self.profile(), self)
            kiosk.popups.append(catcher)  # Qt does not own it: keep it alive until used
            return catcher

        def acceptNavigationRequest(self, url, nav_type, is_main_frame):  # noqa: N802
            return kiosk.accept_navigation(url, nav_type, is_main_frame)

        def chooseFiles(self, mode, old_files, mime_types):  # noqa: N802
            multiple = mode == QWebEnginePage.FileSelectionMode.FileSelectOpenMultiple
            return kiosk.choose_files(multiple)

        def javaScriptConsoleMessage(self, level, message, line, source):  # noqa: N802
            pass

    class InputFilter(QtCore.QObject):
        def eventFilter(self, watched, event):  # noqa: N802
            return kiosk.filter_event(event)

    class View(base):
        RequestInterceptor = Interceptor  # installed on the profile before any load

        def __init__(self, window: Any):
            kiosk.own_page_pending = True  # pywebview's empty placeholder page
            super().__init__(window)
            kiosk.view = self
            # pywebview's page class cannot be subclassed in place (it names
            # itself through a module global), so ours replaces it afterwards.
            page = Page(self, profile=self.profile)
            self.webview.setPage(page)
            self.webview.setAcceptDrops(False)
            network.quiet_profile(self.profile)
            self.profile.downloadRequested.connect(kiosk.on_download)
            page.printRequested.connect(lambda: None)
            script = QWebEngineScript()
            script.setName("plus-kiosk-keyboard")
            script.setSourceCode((resources.files("kiosk.browser") / "keyboard.js")
                                 .read_text(encoding="utf-8"))
            script.setInjectionPoint(QWebEngineScript.InjectionPoint.DocumentReady)
            script.setWorldId(QWebEngineScript.ScriptWorldId.ApplicationWorld)
            script.setRunsOnSubFrames(True)
            self.profile.scripts().insert(script)
            page.loadFinished.connect(kiosk.on_load_finished)
            page.urlChanged.connect(kiosk.on_url_changed)
            self._input_filter = InputFilter(self)
            QtCore.QCoreApplication.instance().installEventFilter(self._input_filter)
            self.webview.setUrl(QtCore.QUrl(kiosk.start_url))

        def showEvent(self, event):  # noqa: N802
            super().showEvent(event)
            if kiosk.geometry:  # after pywebview's own sizing, which has the last word
                x, y, width, height = kiosk.geometry
                self.setFixedSize(width, height)
                self.move(x, y)

    webview_qt.BrowserView = View
