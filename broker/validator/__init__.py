"""Judging one stored object, promoting or quarantining it, and the sweep."""
