"""The Callaba Engine restream document's requests, replayed as its cURL lines send them:
methods, paths, headers and bodies byte for byte (the token is one of this farm's, the id the
one the create answered). The 5centsCDN and Gjirafa documents' requests are replayed in
test_fivecents.py and test_gjirafa.py."""

from __future__ import annotations

import json
from typing import Any

import redis
from fastapi.testclient import TestClient

from common.db import Database
from tests.support.nodes import Offers, simulate_node

CREATE = """{
"restream_name": "Awesome restream",
"input": {
"input_type": "INPUT_TYPE_RTSP_URL",
"input_stream_url": "rtsp://127.0.0.1/live.sdp"
},
"output": {
"output_type": "OUTPUT_TYPE_SRT_URL",
"output_stream_url": "srt://127.0.0.1:2035"
},
"active": true
}"""
UPDATE = """{
"id": "62275f1bccaa650032da2b53",
"restream_name": "Awesome restream. Updated",
"input": {
"input_type": "INPUT_TYPE_RTSP_URL",
"input_stream_url": "rtsp://127.0.0.1/live.sdp"
},
"output": {
"output_type": "OUTPUT_TYPE_SRT_URL",
"output_stream_url": "srt://127.0.0.1:2036"
},
"active": true
}"""
BY_ID = """{
"id": "62275f1bccaa650032da2b53"
}"""
DOC_ID = "62275f1bccaa650032da2b53"


def curl(
    client: TestClient, method: str, path: str, token: str, body: str | None, *, json_type: bool
) -> Any:
    """As `curl -X <method> <url> -H 'accept: application/json' -H 'x-access-token: …'
    [-H 'Content-Type: application/json'] -d '<body>'` sends it (`-d` alone: a form type)."""
    headers = {"accept": "application/json", "x-access-token": token}
    headers["Content-Type"] = (
        "application/json" if json_type else "application/x-www-form-urlencoded"
    )
    response = client.request(method, path, content=(body or "").encode(), headers=headers)
    assert response.status_code == 200, (path, response.text)
    return response.json()


def test_every_request_of_the_restream_document(
    client: TestClient, token: str, db: Database, redis_client: redis.Redis
) -> None:
    simulate_node(db, redis_client, "n1")
    created = curl(client, "POST", "/api/restream/create", token, CREATE, json_type=True)
    assert set(created) >= {"id", "created"}
    rid = created["id"]

    def mine(body: str) -> str:
        return body.replace(DOC_ID, rid)

    updated = curl(client, "POST", "/api/restream/update", token, mine(UPDATE), json_type=True)
    assert updated["success"] is True
    for verb in ("stop", "start"):
        answer = curl(client, "POST", f"/api/restream/{verb}", token, mine(BY_ID), json_type=True)
        assert answer["success"] is True
    [listed] = curl(client, "POST", "/api/restream/getAll", token, "", json_type=False)
    assert set(listed) >= {"id", "restream_name", "restream_type", "active", "created", "modified"}
    assert listed["restream_name"] == "Awesome restream. Updated"
    shown = curl(client, "POST", "/api/restream/getById", token, mine(BY_ID), json_type=True)
    assert shown["output"][0]["output_stream_url"] == "srt://127.0.0.1:2036"
    assert set(shown["input"][0]) >= {"id", "input_type", "input_stream_url"}
    # The document's "getStat" example posts to getProcessData, with an empty JSON body.
    stats = curl(client, "POST", "/api/restream/getProcessData", token, "", json_type=True)
    assert stats == [{"id": rid, "bitrate": 0}]
    assert curl(client, "POST", "/api/restream/getStat", token, "", json_type=True) == stats
    removed = curl(client, "DELETE", "/api/restream/remove", token, mine(BY_ID), json_type=True)
    assert removed["success"] is True


def test_the_documents_input_examples(
    client: TestClient, token: str, db: Database, redis_client: redis.Redis
) -> None:
    """Its server-module and listen inputs, as its examples write them (the server ids are
    this farm's: "Objectid" in the text)."""
    simulate_node(db, redis_client, "n1", offers=Offers(server_kinds=("srt", "rtmp")))
    servers = {}
    for kind, port in (("srt", 9000), ("rtmp", 1936)):
        body = {"server_name": "srt-server-name", "server_type": f"SERVER_TYPE_{kind.upper()}",
                "server_port": port}  # fmt: skip
        servers[kind] = curl(
            client, "POST", f"/api/{kind}-servers/create", token, json.dumps(body), json_type=True
        )["id"]
    examples = [
        {"input_type": "INPUT_TYPE_SRT_SOFTWARE", "input_server_id": servers["srt"],
         "input_stream_id": "publisher/srt-server-name/srt-stream-01"},
        {"input_type": "INPUT_TYPE_SRT_HARDWARE", "input_server_id": servers["srt"],
         "input_stream_id": "publisher/srt-server-name/srt-stream-01"},
        {"input_type": "INPUT_TYPE_RTMP_SOFTWARE", "input_server_id": servers["rtmp"],
         "input_stream_id": "publisher/srt-server-name/srt-stream-01"},
        {"input_type": "INPUT_TYPE_SRT_URL",
         "input_stream_listen_port": {"port": 2035, "transport": "UDP"}},
        {"input_type": "INPUT_TYPE_SRT_URL", "input_stream_url": "srt://1.2.3.4:8000?rcvbuf=12036704"},
    ]  # fmt: skip
    for n, source in enumerate(examples):
        body = {"restream_name": f"example {n}", "input": source, "active": False,
                "output": {"output_type": "OUTPUT_TYPE_SRT_URL",
                           "output_stream_url": "srt://127.0.0.1:2035"}}  # fmt: skip
        created = curl(
            client, "POST", "/api/restream/create", token, json.dumps(body), json_type=True
        )
        shown = curl(
            client,
            "POST",
            "/api/restream/getById",
            token,
            json.dumps({"id": created["id"]}),
            json_type=True,
        )
        assert shown["input"][0]["input_type"] == source["input_type"].replace(
            "SRT_URL", "SRT_LISTEN" if "input_stream_listen_port" in source else "SRT_URL"
        )
