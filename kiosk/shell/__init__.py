"""The resident-facing Kivy shell (issue #5): not built yet."""
