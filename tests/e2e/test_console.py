"""The console (`/ui`) in a real browser: Debian's Chromium, headless, driven by Selenium
through Debian's chromedriver, against a running farm (its API, reconciler, a worker and a
real FFmpeg). It logs in, creates a restream through the form, starts it, sees it running
with a bitrate, plays its HLS output in the bundled player, stops it, and looks at nodes and
projects. Every step leaves a screenshot in test-artifacts/console/<test>/ (kept: a failing
run's last one shows where it stopped)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.farm import ADMIN_EMAIL, ADMIN_PASSWORD, Farm, running_farm
from tests.support.media import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("STREAMFLEET_SCREENSHOTS", "test-artifacts/console"))


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Farm]:
    port = str(free_port())  # its worker serves HLS: the preview plays from there
    with running_farm(
        tmp_path_factory.mktemp("console"),
        pg_server_url,
        {"STREAMFLEET_WORKER_HTTP_PORT": port, "STREAMFLEET_NODE_ADDRESS": "127.0.0.1"},
    ) as started:
        yield started


@pytest.fixture
def browser(request: pytest.FixtureRequest) -> Iterator[Page]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "no chromium and chromedriver (Debian: apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(0)
    artifacts = ARTIFACTS / request.node.name
    artifacts.mkdir(parents=True, exist_ok=True)
    for old in artifacts.glob("*.png"):  # a run's own only
        old.unlink()
    yield Page(driver, artifacts)
    driver.quit()


class Page:
    """The browser, with waits that say what they waited for, and a screenshot per step."""

    def __init__(self, driver: Any, artifacts: Path) -> None:
        self.driver = driver
        self.artifacts = artifacts
        self.steps = 0

    def shot(self, name: str) -> None:
        self.steps += 1
        self.driver.save_screenshot(str(self.artifacts / f"{self.steps:02d}-{name}.png"))

    def wait(self, what: str, found: Callable[[], Any], timeout_s: float = 30) -> Any:
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        def check(_driver: Any) -> Any:
            try:
                return found()
            except WebDriverException:
                return None

        try:
            return WebDriverWait(self.driver, timeout_s, poll_frequency=0.2).until(check)
        except Exception:
            self.shot(f"FAILED-waiting-for-{re.sub(r'[^a-z0-9]+', '-', what.lower())}")
            raise

    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        found: list[Any] = self.driver.find_elements(By.CSS_SELECTOR, selector)
        return found

    def fill(self, path: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        field = self.css(f'[data-path="{path}"]')
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        else:
            field.clear()
            field.send_keys(value)

    def click(self, what: str, selector: str) -> None:
        """Find and click it (tables are drawn again every poll: a found row may go stale)."""

        def clicked() -> bool:
            self.css(selector).click()
            return True

        self.wait(what, clicked)

    def text(self, selector: str) -> str:
        value: str = self.css(selector).text
        return value


def test_log_in_create_start_watch_stop(farm: Farm, browser: Page) -> None:
    page, driver = browser, browser.driver
    driver.get(f"{farm.base_url}/")  # the API's root leads to the console
    page.wait("the login form", lambda: page.css('[data-testid="login-email"]'))
    assert driver.current_url.endswith("/ui/#/login")
    page.shot("login")
    email = page.css('[data-testid="login-email"]')
    email.clear()
    email.send_keys(ADMIN_EMAIL)
    page.css('[data-testid="login-password"]').send_keys(ADMIN_PASSWORD)
    page.css('[data-testid="login-submit"]').click()
    page.wait("the restreams", lambda: page.css('[data-testid="restreams"]'))
    page.shot("restreams")

    page.css('[data-testid="new-restream"]').click()
    page.wait("the form", lambda: page.css('[data-path="transcoding.video_transcoding"]'))
    page.fill("name", "from the console")
    page.fill("input.input_type", "INPUT_TYPE_GENERATE_TEST_VIDEO")
    page.fill("input.resolution_width", "320")
    page.fill("input.resolution_height", "180")
    page.fill("input.encoding_rate", "10")
    page.fill("transcoding.video_transcoding", "libx264")  # a select of its allowed values
    page.fill("transcoding.output_video_bitrate", "300")
    page.fill("transcoding.preset", "ultrafast")
    page.fill("outputs.0.output_type", "OUTPUT_TYPE_HLS")
    page.shot("form")
    page.css('[data-testid="save"]').click()
    page.wait("the restream's page", lambda: page.css('[data-testid="card-state"]'))
    assert "idle" in page.text('[data-testid="card-state"]')

    page.css(".toolbar button").click()  # Start
    page.wait("running", lambda: "running" in page.text('[data-testid="card-state"]'))
    page.wait(
        "a bitrate",
        lambda: re.search(r"[1-9]\d* kbit/s", page.text('[data-testid="card-bitrate"]')),
    )
    page.wait(
        "the preview playing",
        lambda: driver.execute_script(
            "const v = document.querySelector('[data-testid=player]');"
            "return v && v.readyState >= 2 && v.currentTime > 0;"
        ),
        timeout_s=60,
    )
    page.wait("its events", lambda: "running" in page.text('[data-testid="events"]'))
    page.shot("running")

    driver.get(f"{farm.base_url}/ui/#/restreams")
    row = page.wait(
        "its row with a bitrate",
        lambda: next(
            (
                r
                for r in page.all('[data-testid="restream-row"]')
                if "running" in r.text and re.search(r"[1-9]\d* kbit/s", r.text)
            ),
            None,
        ),
    )
    assert row.get_attribute("data-name") == "from the console"
    restream = row.get_attribute("data-id")
    page.wait(  # a line of at least three bitrates, polled one after another
        "a sparkline",
        lambda: len(page.css("svg.spark polyline").get_attribute("points").split()) >= 3,
    )
    page.shot("list-running")

    page.click("Stop", f'[data-testid="restream-row"][data-id="{restream}"] [data-testid="stop"]')
    page.wait(
        "stopped", lambda: any("idle" in r.text for r in page.all('[data-testid="restream-row"]'))
    )
    page.shot("stopped")

    driver.get(f"{farm.base_url}/ui/#/nodes")
    node = page.wait(
        "the node", lambda: page.css(f'[data-testid="node-row"][data-name="{farm.node}"]')
    )
    assert "active" in node.text and " m (" in node.text  # its CPU reserved and capacity
    page.shot("nodes")
    driver.get(f"{farm.base_url}/ui/#/projects")
    page.wait("the projects", lambda: page.all('[data-testid="project"]'))
    page.shot("projects")


def test_a_refused_field_is_named_in_the_form(farm: Farm, browser: Page) -> None:
    page, driver = browser, browser.driver
    driver.get(f"{farm.base_url}/ui/#/login")
    page.wait("the login form", lambda: page.css('[data-testid="login-key"]'))
    key = farm.bearer["Authorization"].removeprefix("Bearer ")
    page.css('[data-testid="login-key"]').send_keys(key)  # an API key instead of a password
    page.css('[data-testid="login-submit"]').click()
    page.wait("the restreams", lambda: page.css('[data-testid="restreams"]'))
    driver.get(f"{farm.base_url}/ui/#/new")
    page.wait("the form", lambda: page.css('[data-path="outputs.0.output_type"]'))
    page.fill("name", "bad")
    page.fill("input.input_type", "INPUT_TYPE_RTMP_URL")
    page.fill("input.input_stream_url", "file:///etc/passwd")
    page.fill("outputs.0.output_type", "OUTPUT_TYPE_UDP_URL")
    page.fill("outputs.0.output_stream_url", "udp://127.0.0.1:5000")
    page.css('[data-testid="save"]').click()
    problem = page.wait(
        "the problem next to its field",
        lambda: page.css('[data-problem="input.input_stream_url"]').text or None,
    )
    assert "scheme" in problem
    assert "invalid" in page.css('[data-path="input.input_stream_url"]').get_attribute("class")
    page.shot("refused")
