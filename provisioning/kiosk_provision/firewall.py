"""The resident's firewall: the browser's user may reach the filtering proxy, nothing else.

The URL policy inside the browser (``kiosk.policy``) and Squid's allow rules
(``kiosk.proxy``) decide which pages a resident sees. This rule set makes the
second one unavoidable: whatever runs as the resident user — the browser, a
renderer that escaped its sandbox, a page that found a way to open a socket —
can only open TCP connections to Squid's port on loopback. No DNS (a name lookup
is already a leak, and a tunnel), no other loopback service (CUPS, the daemon's
share port), no ICMP, no other address or port, IPv4 or IPv6. Squid itself runs
as its own user and is not restricted here: it resolves the allowed names and
connects out. Every other user (root's apt, the daemon printing to a network
printer) is untouched.

Refused packets are *rejected* (a TCP reset, an ICMP error), not dropped, so the
browser fails at once instead of waiting for a time-out; a named counter counts
them (``nft list counter inet plus_kiosk resident_refused``) — no log, so no
address a resident tried is ever written down.

The file is loaded with ``nft -f`` by ``plus-kiosk-firewall.service`` at boot,
before the network and before the daemon can start a browser, and again by
kiosk-provision when it changes. It replaces only its own table, atomically
(nft applies a file as one transaction), so loading it twice is harmless and
other tables (Debian's ``/etc/nftables.conf``, Docker's…) are left alone.
"""

from __future__ import annotations

import ipaddress

TABLE = "plus_kiosk"
FILE = "/etc/plus-kiosk/firewall.nft"


def _user(user: str | int) -> str:
    """A uid as nft wants it: a number, or a quoted name resolved when the file is loaded."""
    if isinstance(user, int):
        return str(user)
    if not user or '"' in user or any(c.isspace() for c in user):
        raise ValueError(f"not a user name: {user!r}")
    return f'"{user}"'


def _users(users: str | int | tuple[str | int, ...]) -> str:
    """One user, or an anonymous set of them (the shell's and the browser's)."""
    names = list(dict.fromkeys(_user(u) for u in (users if isinstance(users, tuple) else (users,))))
    return names[0] if len(names) == 1 else "{ " + ", ".join(names) + " }"


def nft_rules(resident_user: str | int | tuple[str | int, ...], proxy_user: str | int,
              proxy_host: str, proxy_port: int) -> str:
    """The ``nft -f`` file for a terminal whose browser (and shell) run as ``resident_user``
    (one user, or a tuple: the browser has its own user, the shell another).

    Users are names or uids (kiosk-provision passes the uids of the tree it writes,
    so the file does not depend on the host's /etc/passwd when checked).
    ``proxy_host`` must be a loopback address: the proxy is never offered to the wifi.
    """
    address = ipaddress.ip_address(proxy_host.strip("[]"))
    if not address.is_loopback:
        raise ValueError(f"the proxy must listen on loopback, not {proxy_host}")
    if not 0 < int(proxy_port) < 65536:
        raise ValueError(f"not a port: {proxy_port}")
    residents = resident_user if isinstance(resident_user, tuple) else (resident_user,)
    if _user(proxy_user) in {_user(user) for user in residents}:
        raise ValueError("the resident and the proxy must be different users")
    family = "ip" if address.version == 4 else "ip6"
    resident, proxy = _users(resident_user), _user(proxy_user)
    return f"""\
#!/usr/sbin/nft -f
# PLUS kiosk — the resident user's firewall (written by kiosk-provision; do not edit:
# it is generated from the site file's [proxy] listen, kiosk_provision/firewall.py).
# The browser runs as the resident user; its packets may only reach the filtering
# proxy (Squid) on loopback. Everything else it sends is rejected at once (so the
# browser fails fast instead of hanging) and counted, never logged.
# Look at it:   nft list table inet {TABLE}
# Counters:     nft list counters table inet {TABLE}

# Replace our own table, and only it: declaring it first makes the delete succeed
# on the first load too, and nft applies this whole file as one transaction.
table inet {TABLE} {{}}
delete table inet {TABLE}

table inet {TABLE} {{
\t# Packets the resident's programs tried to send anywhere but the proxy.
\tcounter resident_refused {{}}
\t# Connections (and their packets) from the resident to the proxy.
\tcounter resident_to_proxy {{}}

\tchain output {{
\t\t# Locally generated packets, whoever owns the socket; other users pass untouched.
\t\ttype filter hook output priority filter; policy accept;

\t\t# Squid's own user: it resolves the allowed names and connects out for the browser.
\t\tmeta skuid {proxy} accept

\t\t# The one way out for the resident: TCP to the proxy's address and port. Matched on
\t\t# the address, not on the loopback interface: packets to the terminal's own LAN
\t\t# address travel over loopback too.
\t\tmeta skuid {resident} {family} daddr {address} tcp dport {int(proxy_port)} \
counter name "resident_to_proxy" accept

\t\t# Anything else from the resident: other loopback ports (CUPS, the daemon's share
\t\t# port), DNS and all UDP, ICMP, other addresses, IPv4 or IPv6.
\t\tmeta skuid {resident} meta l4proto tcp counter name "resident_refused" \
reject with tcp reset
\t\tmeta skuid {resident} counter name "resident_refused" reject with icmpx type \
admin-prohibited
\t}}
}}
"""
