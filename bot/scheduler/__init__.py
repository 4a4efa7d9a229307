"""Scheduled auto-posting of generated verses to a channel, exactly once per slot."""
