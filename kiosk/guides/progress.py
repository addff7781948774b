"""Where the resident is in a guide, from the page the portal shows.

The engine takes the furthest step whose URL pattern matches the browser's
address, so a resident who is already logged in jumps past the login steps.
Consecutive steps sharing a pattern happen on one page: reaching that page
shows the first of them, and the resident goes through the others by hand —
the address alone cannot tell them apart, so the engine never overrides a
hand-chosen step among them while the page stays the same.
"""

from __future__ import annotations

from kiosk.guides.library import Guide


class Progress:
    def __init__(self, guide: Guide):
        self.guide = guide
        self.index = 0
        self.url = ""

    @property
    def step(self):
        return self.guide.steps[self.index]

    @property
    def total(self) -> int:
        return len(self.guide.steps)

    def _group_start(self, index: int) -> int:
        steps = self.guide.steps
        while index > 0 and steps[index - 1].url == steps[index].url:
            index -= 1
        return index

    def matching(self, url: str) -> list[int]:
        return [i for i, step in enumerate(self.guide.steps) if step.matcher.is_allowed(url)]

    def follow(self, url: str) -> bool:
        """The browser is at ``url``: move to the step it shows. True if the step changed."""
        if url == self.url:
            return False
        self.url = url
        matches = self.matching(url)
        if not matches:
            return False
        furthest = matches[-1]
        start = self._group_start(furthest)
        if start <= self.index <= furthest:
            return False  # already on this page's steps (maybe moved through them by hand)
        self.index = start
        return True

    def next(self) -> bool:
        if self.index + 1 >= self.total:
            return False
        self.index += 1
        return True

    def previous(self) -> bool:
        if self.index == 0:
            return False
        self.index -= 1
        return True

    @property
    def is_last(self) -> bool:
        return self.index == self.total - 1
