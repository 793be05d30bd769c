"""Fixtures for a real mongo server (work in progress)."""
