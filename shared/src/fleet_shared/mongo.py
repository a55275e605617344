"""The MongoDB client every database-owning service uses."""

from pymongo import AsyncMongoClient


def make_mongo_client(url: str, service: str) -> AsyncMongoClient:
    # Majority writes: an AMQP ack after the write means the write survives a failover.
    return AsyncMongoClient(
        url, appname=service, w="majority", tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=3000
    )
