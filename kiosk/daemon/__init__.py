"""The local daemon: sessions, the wipe, printing, scanning, share links, agent reset.

It listens on a Unix socket only, so no web page shown in the kiosk browser can
reach it; the shell and ``kioskctl`` talk to it through ``kiosk.daemon_client``.
"""
