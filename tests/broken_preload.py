"""A module that fails as it is imported: a fork server told to load it never serves."""

raise RuntimeError("this module fails on import, as a broken install would")
