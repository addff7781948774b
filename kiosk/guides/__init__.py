"""Step-by-step guides shown beside the portals.

Guides are data (one YAML file each under ``content/``, following
``schema/guide-1.json``) plus the small code that reads them (``library``),
checks them (``check``), follows a resident's progress (``progress``) and finds
them (``search``). Nothing here talks to the daemon or draws on the screen.
"""

from kiosk.guides.library import Guide, GuideLibrary, Step, load_for_site, load_library

__all__ = ["Guide", "GuideLibrary", "Step", "load_for_site", "load_library"]
