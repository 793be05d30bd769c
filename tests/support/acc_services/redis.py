"""Fixtures for a real redis server (work in progress)."""
