"""Real servers for the test suite: each module starts one kind and provides its fixtures.

The root ``tests/conftest.py`` loads every module here as a pytest plugin, so the
fixtures (``redis_url``, ``mongodb_url``, ``dynamodb_url``, ...) are available to every
test, the documentation examples included. Each fixture uses the ``ACC_<NAME>_URL``
environment variable when it is set (docker-compose), otherwise starts a local server,
otherwise skips with the reason; with ``ACC_REQUIRE_SERVICES=1`` (CI) it fails instead.
"""
