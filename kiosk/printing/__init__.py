"""Printing through CUPS for the daemon (issue #4): not built yet."""
