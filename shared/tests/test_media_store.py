"""The media store's contract, on GridFS (the MongoDB-wire server) and on an S3-compatible server
(moto's, on a real socket): the same behaviour from both."""

import hashlib
from collections.abc import AsyncIterator

import pytest
from moto.server import ThreadedMotoServer

from fleet_devtools.localdev import free_port
from fleet_shared.media import MediaNotFound, MediaSettings, media_key, open_media_store
from fleet_shared.mongo import make_mongo_client

pytestmark = pytest.mark.integration

BIG = bytes(range(256)) * 5000  # 1.28 MB: several chunks


@pytest.fixture(scope="module")
def s3_server():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["gridfs", "s3"])
async def store(request, mongodb_url, mongo_db, s3_server) -> AsyncIterator:
    settings = MediaSettings(
        media_store=request.param, media_database=mongo_db.name, s3_endpoint_url=s3_server,
        s3_bucket=f"b{mongo_db.name.replace('_', '')}", s3_access_key_id="test", s3_secret_access_key="test",
    )
    mongo = make_mongo_client(mongodb_url, "media-tests")
    async with open_media_store(settings, mongo) as media:
        if request.param == "s3":
            await media._s3.create_bucket(Bucket=settings.s3_bucket)
        yield media
    await mongo.close()


async def read_all(store, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])


async def test_a_file_is_stored_once_and_read_back_whole(store):
    key = media_key("alice", "false_1@c.us_AAA")

    ref = await store.put(key, BIG, "image/jpeg")

    assert (ref.store, ref.key, ref.size, ref.sha256) == (store.name, key, len(BIG), hashlib.sha256(BIG).hexdigest())
    assert await store.find(key) == ref
    assert await read_all(store, key) == BIG


async def test_putting_a_key_again_keeps_the_first_bytes(store):
    key = media_key("alice", "false_1@c.us_BBB")
    first = await store.put(key, b"first", "text/plain")

    again = await store.put(key, b"second, longer", "text/plain")

    assert again == first
    assert await read_all(store, key) == b"first"


async def test_a_missing_file_is_not_found_and_deleting_it_is_harmless(store):
    assert await store.find("messages/alice/nothing") is None
    with pytest.raises(MediaNotFound):
        await read_all(store, "messages/alice/nothing")
    await store.delete("messages/alice/nothing")


async def test_users_files_are_apart(store):
    await store.put(media_key("alice", "m1"), b"alice's", "text/plain")
    await store.put(media_key("bob", "m1"), b"bob's", "text/plain")

    assert await read_all(store, media_key("alice", "m1")) == b"alice's"
    assert await read_all(store, media_key("bob", "m1")) == b"bob's"


async def test_a_deleted_file_is_gone(store):
    key = media_key("alice", "gone")
    await store.put(key, b"x", None)

    await store.delete(key)

    assert await store.find(key) is None
