"""Pytest fixtures shared by every package's tests (registered by the root conftest.py)."""
