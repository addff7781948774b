"""How the URL filter's speed holds up as a site's rule list grows.

Prints, from one run, decisions per second with 100 and with 10,000 rules and
with a plain linear scan of the same 10,000 rules, then the two ratios that
matter (targets: 10,000 rules at most 1.3x slower than 100; the index at least
20x faster than the scan). The machines are noisy, so the configurations are
measured in alternating rounds and each keeps its best round: the ratios come
from measurements taken side by side, never from absolute timings.

    python bench/urlfilter.py [--rounds N] [--check]
"""

from __future__ import annotations

import argparse
import random
import sys
import time

from kiosk.urlfilter import URLFilter

WORDS = ["impots", "caf", "ameli", "mairie", "sante", "emploi", "eau", "edf", "ants", "poste",
         "region", "ecole", "bus", "sud", "marin", "luce", "diamant", "vauclin", "francois",
         "anses", "arlet", "riviere", "pilote", "saintes", "esprit", "ducos", "lamentin"]
TLDS = ["fr", "gouv.fr", "mq", "com", "org", "eu", "net"]


def make_rules(count: int, rng: random.Random) -> list[str]:
    """A realistic mix: domains, exact hosts, schemes, ports, paths and queries."""
    rules = []
    for i in range(count):
        host = f"{rng.choice(WORDS)}{i}.{rng.choice(TLDS)}"
        kind = i % 10
        if kind < 5:
            rules.append(host)
        elif kind == 5:
            rules.append(f".www.{host}")
        elif kind == 6:
            rules.append(f"https://{host}")
        elif kind == 7:
            rules.append(f"{host}/{rng.choice(WORDS)}")
        elif kind == 8:
            rules.append(f"{host}:8443")
        else:
            rules.append(f"{host}/watch?v={rng.choice(WORDS)}")
    return rules


def make_urls(rules: list[str], count: int, rng: random.Random) -> list[str]:
    """URLs that hit the given rules (under subdomains, with paths) or miss everything."""
    hosts = [r.split("://")[-1].lstrip(".").split("/")[0].split(":")[0] for r in rules]
    urls = []
    for i in range(count):
        if i % 4 == 3:
            urls.append(f"https://{rng.choice(WORDS)}-x.{rng.choice(TLDS)}/nothing")
        else:
            sub = rng.choice(["", "www.", "espace.", "a.b."])
            urls.append(f"https://{sub}{rng.choice(hosts)}/{rng.choice(WORDS)}?v={rng.choice(WORDS)}")
    return urls


def rate(decide, urls: list[str]) -> float:
    start = time.perf_counter()
    for url in urls:
        decide(url)
    return len(urls) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--urls", type=int, default=4000)
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    rng = random.Random(972)
    big_rules = make_rules(10_000, rng)
    small = URLFilter(["*"], big_rules[:100])
    big = URLFilter(["*"], big_rules)
    # The same URLs for every configuration: they hit the first 100 rules
    # (present in both lists) or nothing at all.
    urls = make_urls(big_rules[:100], args.urls, rng)
    scan_urls = urls[: max(20, args.urls // 100)]

    for url in urls[:200]:  # same answers, whichever way they are found
        assert big.decide(url) == big.decide_by_scan(url), url

    best = {"100 rules": 0.0, "10,000 rules": 0.0, "10,000 rules, linear scan": 0.0}
    for _ in range(args.rounds):
        best["100 rules"] = max(best["100 rules"], rate(small.is_allowed, urls))
        best["10,000 rules"] = max(best["10,000 rules"], rate(big.is_allowed, urls))
        best["10,000 rules, linear scan"] = max(best["10,000 rules, linear scan"],
                                                rate(big.decide_by_scan, scan_urls))

    for name, value in best.items():
        print(f"{name:<28}{value:>12,.0f} decisions/s")
    slowdown = best["100 rules"] / best["10,000 rules"]
    speedup = best["10,000 rules"] / best["10,000 rules, linear scan"]
    print(f"{'slowdown 10,000 vs 100':<28}{slowdown:>12.2f}x   (target <= 1.3x)")
    print(f"{'speed-up over linear scan':<28}{speedup:>12.0f}x   (target >= 20x)")
    if args.check and (slowdown > 1.3 or speedup < 20):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
