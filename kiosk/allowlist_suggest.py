"""Turning a recorded visit into proposed allow rules.

A technician records a real visit (``kiosk-browser --record FILE``) on a
terminal, then asks which hosts the portal needed that the site file refused.
Proposals are one rule per refused host (Chrome format, subdomains included),
busiest first, with what was asked of it; the technician decides what to keep
— nothing is added by itself.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from kiosk import weburl
from kiosk.browser.audit import read


@dataclass(frozen=True)
class Proposal:
    rule: str
    requests: int
    resource_types: tuple[str, ...]
    example: str
    page: bool  # the resident was sent there (a main-frame navigation)


def suggest(record: str | Path) -> list[Proposal]:
    counts: Counter[str] = Counter()
    kinds: dict[str, set[str]] = defaultdict(set)
    examples: dict[str, str] = {}
    pages: set[str] = set()
    for entry in read(record):
        refused_page = entry.get("event") == "refused_navigation"
        if not refused_page and (entry.get("allowed", True) or "event" in entry):
            continue
        parsed = weburl.parse(entry.get("url", ""))
        if parsed is None or parsed.scheme not in ("http", "https", "ws", "wss") or not parsed.host:
            continue  # refused for its scheme: no rule can (or should) open it
        host = parsed.host
        counts[host] += 1
        kinds[host].add("page" if refused_page else str(entry.get("resource_type", "?")))
        examples.setdefault(host, parsed.href)
        if refused_page or entry.get("main_frame"):
            pages.add(host)
    return [Proposal(host, count, tuple(sorted(kinds[host])), examples[host], host in pages)
            for host, count in counts.most_common()]


def as_toml(proposals: list[Proposal]) -> str:
    lines = ["# Hosts refused during the recorded visit (most requested first).",
             "# Copy the ones the portal really needs into its allow = [ ... ] list."]
    for proposal in proposals:
        kinds = ", ".join(proposal.resource_types)
        lines.append(f'"{proposal.rule}",  # {proposal.requests} request(s): {kinds}'
                     f' — e.g. {proposal.example[:80]}')
    return "\n".join(lines) + "\n"
