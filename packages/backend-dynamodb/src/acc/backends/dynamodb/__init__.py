"""acc.backends.dynamodb: a DynamoDB store for acc (work in progress)."""

from acc.backends.dynamodb._version import __version__

__all__ = ["__version__"]
