"""Build-test fixtures: the Docker engine fixtures (docker_engine, os_base, docker_client) live in tests/conftest.py."""
