"""``kiosk-provision``: one idempotent command turning a fresh Debian 12 into a terminal.

Run as root on the terminal (``kiosk-provision --site site.toml``), or with
``--root DIR`` on an image tree. ``--check`` says what would change and changes
nothing. See docs/technician.md.
"""
