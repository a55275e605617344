"""Fixtures of the end-to-end tests on the shared `stack` (tests/conftest.py): webhook-ingest as WAHA
sees it, what goes over the bus, what MongoDB holds."""

import httpx
import pytest

from ..helpers import BusRecorder, mongo


@pytest.fixture
async def ingest(stack):
    async with httpx.AsyncClient(base_url=stack.url("webhook-ingest"), timeout=30) as client:
        yield client


@pytest.fixture
async def bus(stack, rabbitmq_url, topology):
    async with BusRecorder(rabbitmq_url, topology) as recorder:
        yield recorder


@pytest.fixture
async def db(stack):
    client = mongo(stack)
    yield client["waha_fleet"]
    await client.close()
