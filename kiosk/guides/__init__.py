"""Step-by-step guides shown beside the portals (issue #6): not built yet."""
