"""Fixtures for a real dynamodb server (work in progress)."""
