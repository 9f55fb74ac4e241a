"""5centsCDN pull streams on a real farm: a pull from nginx-rtmp, packaged to HLS and DASH by
the worker and played from its HTTP server, in the codec asked for."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.farm import Farm, running_farm
from tests.support.ffmpeg_watch import FfmpegWatch
from tests.support.media import free_port, probe, stream_of
from tests.support.peers import nginx_rtmp, publisher, running
from tests.support.wait import wait_for
from worker.rtsp_server import RTP_PORTS

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("farm")]
PLAYBACK_PORT = free_port()


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Farm]:
    env = {
        "STREAMFLEET_WORKER_HTTP_PORT": str(PLAYBACK_PORT),
        "STREAMFLEET_NODE_LABELS": "region=north-america,server=11",
        "STREAMFLEET_CDN_API_REQUESTS_PER_S": "50",  # the test polls; the limit has its own test
        # A pull's size is unknown until it runs: placement budgets 1080p30, which an H.265
        # encode would not fit in this machine's two cores. The test source is 320x180.
        "STREAMFLEET_CPU_MILLICORES": "16000",
    }
    with running_farm(tmp_path_factory.mktemp("farm"), pg_server_url, env) as started:
        yield started


@pytest.fixture(scope="module")
def key(farm: Farm) -> dict[str, str]:
    project = farm.cli("admin", "create-project", "--name", "cdn").splitlines()[-1]
    created = farm.cli(
        "admin", "create-key", "--name", "cdn", "--project", project, "--role", "operator"
    )
    return {"X-API-Key": created.splitlines()[-1]}


def call(farm: Farm, key: dict[str, str], verb: str, path: str, body: Any = None) -> Any:
    response = farm.http.request(verb, f"/v2/streams/restream{path}", json=body, headers=key)
    assert response.status_code == 200, response.text
    return response.json()


def enabled(farm: Farm, key: dict[str, str], number: int) -> dict[str, Any]:
    """The stream once Enabled (it runs); why not, if it does not within 40 s."""

    def state() -> dict[str, Any]:
        found: dict[str, Any] = call(farm, key, "GET", f"/{number}")["stream"]
        return found

    try:
        return wait_for(
            lambda: (s := state())["status"] == "Enabled" and s, timeout_s=40, every_s=0.25
        )
    except AssertionError:
        last = state()
        raise AssertionError(
            f"stream {number} is {last['state']}: {last['stateReason']} / {last['lastError']}"
        ) from None


def media_sequence(url: str) -> int:
    found = re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", httpx.get(url, timeout=5).text)
    return int(found.group(1)) if found else -1


def not_served(url: str) -> bool:
    return httpx.get(url, timeout=5).status_code == 404


def dash_start(url: str) -> int:
    """The number of the oldest segment the manifest still lists."""
    found = re.search(r'startNumber="(\d+)"', httpx.get(url, timeout=5).text)
    return int(found.group(1)) if found else -1


def test_a_pull_is_packaged_to_hls_and_dash_in_the_codec_asked_for(
    farm: Farm, key: dict[str, str], tmp_path: Path
) -> None:
    with nginx_rtmp(tmp_path) as source_port:
        source = f"rtmp://127.0.0.1:{source_port}/live/camera"
        publish = publisher(["-f", "flv", source], size="320x180", rate=25)
        with running(publish, tmp_path / "publisher.log"), FfmpegWatch([source]) as watch:
            body = {
                "name": "show/hevc",
                "codec": "h265",
                "server[mediaserver]": "11",
                "protocols": ["HLS", "DASH"],
                "url[mediaserver][]": source,
                "mode[mediaserver]": "rtmp",
                "audiofix": "Y",
                "draft": "0",
            }
            created = call(farm, key, "POST", "/new", body)
            assert created["message"] == "Stream Created"
            number = created["stream"]["id"]
            stream = enabled(farm, key, number)
            hls, dash = stream["playbackurls"]["hls"], stream["playbackurls"]["dash"]
            assert re.match(
                r"^http://127\.0\.0\.1:\d+/live/[0-9a-f]{24}/[0-9a-f]{24}/index\.m3u8$", hls
            )
            stats = wait_for(
                lambda: (
                    (f := call(farm, key, "GET", f"/{number}/statistics")["statistics"]["fs"])
                    and f["bitrate"] > 0
                    and f
                ),
                timeout_s=10,
                every_s=0.25,
                what="a live bitrate",
            )
            assert stats["status"] == "Alive"

            wait_for(lambda: httpx.get(hls, timeout=5).status_code == 200, timeout_s=20)
            assert stream_of(probe(hls), "video")["codec_name"] == "hevc"  # transcoded
            assert stream_of(probe(hls), "audio")["codec_name"] == "aac"
            wait_for(lambda: httpx.get(dash, timeout=5).status_code == 200, timeout_s=20)
            assert stream_of(probe(dash), "video")["codec_name"] == "hevc"
            # The windows move: the first segment listed advances, old ones go.
            first, first_dash = media_sequence(hls), dash_start(dash)
            wait_for(lambda: media_sequence(hls) > first, timeout_s=30, what="the HLS window")
            wait_for(lambda: dash_start(dash) > first_dash, timeout_s=30, what="the DASH window")

            # h264 from an h264 source: the video is copied, not encoded again.
            body = {**body, "name": "show/copy", "codec": "h264", "protocols": ["HLS"]}
            copy = call(farm, key, "POST", "/new", body)["stream"]["id"]
            copied = enabled(farm, key, copy)
            copy_hls = copied["playbackurls"]["hls"]
            wait_for(lambda: httpx.get(copy_hls, timeout=5).status_code == 200, timeout_s=20)
            assert stream_of(probe(copy_hls), "video")["codec_name"] == "h264"
            commands = [s.pid for s in watch.running(source)]
            assert any(
                "-c:v copy"
                in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                for pid in commands
            )

            # Soft delete stops it (its playlist goes), restore brings it back.
            deleted = call(farm, key, "DELETE", f"/{number}")["stream"]
            assert deleted["status"] == "Deleted"
            wait_for(
                lambda: (
                    call(farm, key, "GET", f"/{number}/statistics")["statistics"]["fs"]["status"]
                    == "Dead"
                ),
                timeout_s=20,
                every_s=0.25,
                what="the deleted stream dead",
            )
            for gone_url in (hls, dash):  # nothing stale is served
                wait_for(partial(not_served, gone_url), timeout_s=10, what=f"{gone_url} gone")
            restored = call(farm, key, "GET", f"/{number}/restore")["stream"]
            assert restored["status"] in ("Deploying", "Enabled")
            for gone in (number, copy):
                call(farm, key, "DELETE", f"/{gone}")


def test_a_stream_for_other_servers_does_not_run_here(farm: Farm, key: dict[str, str]) -> None:
    refused = farm.http.post(
        "/v2/streams/restream/new",
        json={
            "name": "far/away",
            "url[mediaserver][]": "rtmp://x/live/a",
            "server[mediaserver]": "209",
        },
        headers=key,
    )
    assert refused.status_code == 400
    assert "unknown server 209: the farm's servers are 11" in refused.json()["message"]


def test_the_seeds_update_body_plays_rtsp_and_hls_from_the_nodes_own_servers(
    farm: Farm, key: dict[str, str], tmp_path: Path
) -> None:
    """The 5centsCDN document's update body, as sent (its source swapped for a local one):
    H.265 with RTSP and HLS playback, on a farm with the servers 11 and 211; the node that has
    an RTSP server of its own takes it, and both playback URLs play."""
    rtsp_port = free_port(span=2 + RTP_PORTS)  # players', publishers', then RTP's
    worker = farm.start_worker(
        "na-211",
        {
            "STREAMFLEET_NODE_LABELS": "region=north-america,server=211",
            "STREAMFLEET_RTSP_SERVER_PORT": str(rtsp_port),
            "STREAMFLEET_WORKER_HTTP_PORT": str(free_port()),
        },
    )
    said = farm.worker_log("na-211").read_text(errors="replace")
    assert "serves RTSP" in said, said[-3000:]  # else why the node has no RTSP server
    with nginx_rtmp(tmp_path) as source_port:
        source = f"rtmp://127.0.0.1:{source_port}/live/camera"
        with running(publisher(["-f", "flv", source], size="320x180", rate=25)):
            first = {"name": "seed/update", "url[mediaserver][]": source, "draft": "1"}
            number = call(farm, key, "POST", "/new", first)["stream"]["id"]
            seed = {
                "restreamtype": "mediaserver",
                "codec": "h265",
                "server[mediaserver]": "11,211",
                "protocols": ["RTSP", "HLS"],
                "url[mediaserver][]": source,  # the seed's: rtmp://fms-01-01.5centscdn.com
                "mode[mediaserver]": "rtmp",
                "audiofix": "Y",
                "draft": "0",
                "platformtype": "",
            }
            updated = call(farm, key, "POST", f"/{number}", seed)
            assert updated["message"] == "Stream Updated"
            stream = enabled(farm, key, number)
            urls = stream["playbackurls"]
            assert urls["rtsp"] == f"rtsp://127.0.0.1:{rtsp_port}/live/seedupdate"
            wait_for(lambda: httpx.get(urls["hls"], timeout=5).status_code == 200, timeout_s=30)
            assert stream_of(probe(urls["hls"]), "video")["codec_name"] == "hevc"
            played = wait_for(
                lambda: probe(urls["rtsp"], timeout_s=10), timeout_s=30, what="RTSP playback"
            )
            assert stream_of(played, "video")["codec_name"] == "hevc"
            call(farm, key, "DELETE", f"/{number}")
    worker.terminate()
    worker.wait(60)
