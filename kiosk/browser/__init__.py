"""The kiosk browser: pywebview on Qt WebEngine, the site's policy on every request."""
