import base64
import hashlib
import re
import socket
from urllib.parse import urlsplit

from waha_emulator.media import decode_base64
from waha_emulator.testing import WebhookReceiver, wait_until

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


def path_of(url: str) -> str:
    return urlsplit(url).path


async def test_inbound_image_is_served_as_a_file(emu, receiver) -> None:
    await emu.link("med", url=receiver.url, events=["message", "message.any"])
    r = await emu.client.post("/_emulator/sessions/med/inbound", json={
        "from": "4917000001", "type": "image", "caption": "look", "id": "IMG1",
        "media": {"mimetype": "image/png", "data": base64.b64encode(PNG).decode()}})
    assert r.status_code == 201
    msg = r.json()
    assert (msg["hasMedia"], msg["body"]) == (True, "look")
    assert msg["media"]["mimetype"] == "image/png" and msg["media"]["filename"] is None
    assert msg["media"]["error"] is None
    assert msg["media"]["url"] == "http://127.0.0.1:3000/api/files/med/IMG1.png"
    assert msg["_data"]["message"]["imageMessage"]["caption"] == "look"
    evt = await receiver.wait_for_event("message")
    assert evt["payload"]["media"]["url"] == msg["media"]["url"]

    f = await emu.client.get("/api/files/med/IMG1.png")
    assert (f.status_code, f.headers["content-type"], f.content) == (200, "image/png", PNG)
    # browsers: the key as a query parameter
    assert (await emu.anon.get("/api/files/med/IMG1.png", params={"x-api-key": "test-key"})).content == PNG
    assert (await emu.anon.get("/api/files/med/IMG1.png")).status_code == 401


async def test_generated_media_bytes_are_deterministic(emu) -> None:
    await emu.link("gen")
    bodies = []
    for raw in ("DOC1", "DOC1B"):
        r = await emu.client.post("/_emulator/sessions/gen/inbound", json={
            "from": "4917000002", "type": "document", "id": raw,
            "media": {"mimetype": "application/pdf", "filename": "a.pdf", "size": 3000}})
        msg = r.json()
        assert msg["body"] is None and msg["media"]["filename"] == "a.pdf"
        assert msg["media"]["url"].endswith(f"/api/files/gen/{raw}.pdf")
        f = await emu.client.get(f"/api/files/gen/{raw}.pdf")
        assert f.headers["content-type"] == "application/pdf" and len(f.content) == 3000
        assert f.content.startswith(b"%PDF")
        bodies.append(f.content)
    assert bodies[0] != bodies[1]
    again = await emu.client.get("/api/files/gen/DOC1.pdf")
    assert again.content == bodies[0]


async def test_every_inbound_kind(emu) -> None:
    await emu.link("kinds")
    expected = {"image": ("imageMessage", "jpeg"), "video": ("videoMessage", "mp4"), "audio": ("audioMessage", "mpga"),
                "ptt": ("audioMessage", "oga"), "document": ("documentMessage", "bin"),
                "sticker": ("stickerMessage", "webp")}
    for kind, (key, ext) in expected.items():
        r = await emu.client.post("/_emulator/sessions/kinds/inbound", json={"from": "49", "type": kind, "id": f"K{kind}X"})
        assert r.status_code == 201, r.text
        msg = r.json()
        assert key in msg["_data"]["message"], kind
        assert msg["media"]["url"].endswith(f"K{kind}X.{ext}"), (kind, msg["media"]["url"])
    ptt = (await emu.client.get("/api/kinds/chats/49@c.us/messages/false_49@c.us_KpttX")).json()
    assert ptt["_data"]["message"]["audioMessage"]["ptt"] is True
    assert ptt["media"]["mimetype"] == "audio/ogg; codecs=opus"
    bad = await emu.client.post("/_emulator/sessions/kinds/inbound", json={"from": "49", "type": "gif"})
    assert bad.status_code == 400


async def test_files_expire_and_download_media_fetches_again(make_emu) -> None:
    emu = make_emu(files_lifetime=0.3)
    await emu.link("exp")
    r = await emu.client.post("/_emulator/sessions/exp/inbound", json={
        "from": "4917000003", "type": "image", "id": "EXP1", "media": {"size": 100}})
    url = r.json()["media"]["url"]
    assert (await emu.client.get(path_of(url))).status_code == 200

    async def gone() -> bool:
        return (await emu.client.get(path_of(url))).status_code == 404

    await wait_until(gone, 3, message="the file expires")
    r404 = await emu.client.get(path_of(url))
    assert r404.json()["error"]["key"] == "FILE_NOT_FOUND" and r404.json()["error"]["code"] == 404

    one = "/api/exp/chats/4917000003@c.us/messages/false_4917000003@c.us_EXP1"
    no_download = (await emu.client.get(one, params={"downloadMedia": "false"})).json()
    assert no_download["hasMedia"] is True and no_download["media"] is None
    assert (await emu.client.get(path_of(url))).status_code == 404
    again = (await emu.client.get(one, params={"downloadMedia": "true"})).json()
    assert again["media"]["url"] == url  # WAHA's file name is fixed: {session}/{rawId}.{ext}
    assert (await emu.client.get(path_of(url))).status_code == 200
    await wait_until(gone, 3, message="the new copy expires too")


async def test_media_fetch_fails_twice_then_succeeds(emu) -> None:
    await emu.link("flaky")
    r = await emu.client.post("/_emulator/sessions/flaky/inbound", json={"from": "49", "type": "image", "id": "FL1"})
    path = path_of(r.json()["media"]["url"])
    await emu.client.post("/_emulator/faults", json={"status": 500, "paths": ["/api/files/"], "times": 2})
    statuses = [(await emu.client.get(path)).status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert (await emu.client.get("/api/sessions/flaky")).status_code == 200


async def test_reply_to_is_carried_as_waha_reply_to(emu) -> None:
    await emu.link("rep", phone="15550003333")
    first = (await emu.client.post("/_emulator/sessions/rep/inbound",
                                   json={"from": "4917000004", "body": "question?", "id": "Q1"})).json()
    answer = (await emu.client.post("/api/sendText", json={"session": "rep", "chatId": "4917000004",
                                                            "text": "answer", "reply_to": first["id"]})).json()
    assert answer["replyTo"]["id"] == "Q1"  # NOWEB: contextInfo.stanzaId, the raw id
    assert answer["replyTo"]["participant"] == "4917000004@c.us"
    assert answer["replyTo"]["body"] == "question?"
    back = (await emu.client.post("/_emulator/sessions/rep/inbound", json={
        "from": "4917000004", "body": "thanks", "replyTo": answer["id"]})).json()
    assert back["replyTo"]["id"] == answer["id"].split("_")[2]
    assert back["replyTo"]["participant"] == "15550003333@c.us" and back["replyTo"]["body"] == "answer"
    assert back["_data"]["message"]["extendedTextMessage"]["contextInfo"]["stanzaId"] == back["replyTo"]["id"]


async def test_send_image_with_data(emu, receiver) -> None:
    await emu.link("si", url=receiver.url, events=["message.any", "message.ack"])
    raw = (await emu.client.get("/api/si/new-message-id")).json()["id"]
    r = await emu.client.post("/api/sendImage", json={
        "session": "si", "chatId": "4915112345678@c.us", "caption": "a cat", "id": raw,
        "file": {"mimetype": "image/png", "filename": "cat.png", "data": base64.b64encode(PNG).decode()}})
    assert r.status_code == 201, r.text
    sent = r.json()
    assert sent["id"] == f"true_4915112345678@c.us_{raw}"
    assert sent["hasMedia"] is True and sent["body"] == "a cat"
    evt = await receiver.wait_for_event("message.any")
    media = evt["payload"]["media"]
    assert evt["payload"]["source"] == "api" and evt["payload"]["hasMedia"] is True
    assert media["url"].endswith(f"/api/files/si/{raw}.png")
    assert (await emu.client.get(path_of(media["url"]))).content == PNG
    await wait_until(lambda: len(receiver.events("message.ack")) == 2, message="two acks")

    log = (await emu.client.get("/_emulator/sessions/si/sent")).json()
    assert len(log) == 1
    entry = log[0]
    assert (entry["kind"], entry["caption"], entry["mimetype"], entry["filename"], entry["size"]) == (
        "image", "a cat", "image/png", "cat.png", len(PNG))
    assert entry["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert entry["chatId"] == "4915112345678@c.us" and entry["ackName"] == "DEVICE"


async def test_send_file_voice_video_with_a_url(emu) -> None:
    await emu.link("su")
    async with WebhookReceiver() as files:  # answers b"ok" to any request
        for endpoint, extra, kind, mimetype in (
            ("sendFile", {}, "file", "application/octet-stream"),
            ("sendVoice", {"convert": True}, "voice", "audio/ogg; codecs=opus"),
            ("sendVideo", {"asNote": True}, "video", "video/mp4"),
        ):
            r = await emu.client.post(f"/api/{endpoint}", json={
                "session": "su", "chatId": "4915", "file": {"url": files.url, "filename": "x.bin"}, **extra})
            assert r.status_code == 201, r.text
            entry = (await emu.client.get("/_emulator/sessions/su/sent")).json()[-1]
            assert (entry["kind"], entry["mimetype"], entry["size"]) == (kind, mimetype, 2)
            assert entry["sha256"] == hashlib.sha256(b"ok").hexdigest()
        assert [req.method for req in files.requests] == ["GET", "GET", "GET"]
    voice = (await emu.client.get("/_emulator/sessions/su/sent")).json()[1]
    assert voice["_data"]["message"]["audioMessage"]["ptt"] is True
    video = (await emu.client.get("/_emulator/sessions/su/sent")).json()[2]
    assert "ptvMessage" in video["_data"]["message"]


async def test_send_media_errors(emu) -> None:
    await emu.link("sme")
    no_file = await emu.client.post("/api/sendImage", json={"session": "sme", "chatId": "1", "file": {}})
    assert no_file.status_code == 422
    assert no_file.json() == {"message": 'Either "file.url" or "file.data" must be specified.',
                              "error": "Unprocessable Entity", "statusCode": 422}
    async with WebhookReceiver(default_status=404) as missing:
        r = await emu.client.post("/api/sendFile", json={"session": "sme", "chatId": "1",
                                                         "file": {"url": missing.url}})
    assert r.status_code == 500
    body = r.json()
    assert body["statusCode"] == 500 and "404" in body["exception"]["message"]
    assert body["request"]["path"] == "/api/sendFile"
    assert (await emu.client.post("/api/sendImage", json={"session": "sme", "chatId": "1"})).status_code == 400
    stopped = await emu.client.post("/api/sendVideo", json={"session": "nope", "chatId": "1", "file": {"data": ""}})
    assert stopped.status_code == 422
    assert (await emu.client.get("/_emulator/sessions/sme/sent")).json() == []


async def test_send_media_noweb_shape(make_emu) -> None:
    emu = make_emu(send_shape="noweb")
    await emu.link("nwm")
    r = await emu.client.post("/api/sendImage", json={"session": "nwm", "chatId": "5",
                                                      "file": {"data": base64.b64encode(PNG).decode()}})
    body = r.json()
    assert body["status"] == "PENDING" and body["key"]["fromMe"] is True
    image = body["message"]["imageMessage"]
    assert image["mimetype"] == "image/jpeg" and image["fileLength"] == str(len(PNG))
    assert re.fullmatch(r"[A-Za-z0-9+/=]+", image["fileSha256"])


async def test_file_url_fetches_are_bounded(make_emu) -> None:
    emu = make_emu(media_fetch_timeout=0.3, media_max_bytes=1)
    await emu.link("bound")
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/f"
        r = await emu.client.post("/api/sendFile", json={"session": "bound", "chatId": "1", "file": {"url": url}})
    assert r.status_code == 500 and "timeout of 300ms exceeded" in r.json()["exception"]["message"]
    async with WebhookReceiver() as files:  # 2 bytes, over the limit of 1
        r = await emu.client.post("/api/sendFile", json={"session": "bound", "chatId": "1",
                                                         "file": {"url": files.url}})
    assert r.status_code == 500 and "maxContentLength" in r.json()["exception"]["message"]


def test_base64_is_read_as_node_reads_it() -> None:
    data = bytes(range(256)) * 3 + b"end"
    plain = base64.b64encode(data).decode()
    for written in (plain, plain.rstrip("="), f"data:image/png;base64,{plain}", plain[:40] + "\n" + plain[40:],
                    base64.urlsafe_b64encode(data).decode(), " " + plain + " !"):
        assert decode_base64(written) == data, written
    assert decode_base64("") == b"" and decode_base64("QQ") == b"A"
