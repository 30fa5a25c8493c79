"""bt's web page in headless Chromium (Debian's chromium + chromium-driver, via selenium).

The page logs in with the control token, shows a live download from a
libtorrent seeder (slowed by its upload limit) advancing through the event
stream, pauses it, uploads a .torrent and removes it. Screenshots go to the
test's tmp folder; with BT_WEB_SCREENSHOT=PATH the one of the live download is
also saved there (docs/web.png is made so).

Selenium never fetches a browser or a driver: the Service names
/usr/bin/chromedriver (so Selenium Manager is not run at all) and SE_OFFLINE
forbids it any download should it run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import need
from swarm import BtDaemon, LibtorrentPeer, OpenTracker, scrape_counts, wait_for
from test_download import tracked_torrent

from bt.create import create_torrent
from bt.metainfo import parse_metainfo

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SIZE = 6 * 1024 * 1024
RATE = 384 * 1024  # the seeder's upload limit: about 16 s for the whole download
TIMEOUT = 60


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    need(
        os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER),
        "chromium and chromium-driver are not installed (Debian packages)",
    )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        need(False, "selenium is not installed (the test extra)")
        raise
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager, if ever run, downloads nothing
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path / "chromium-profile"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--no-proxy-server",  # loopback only, whatever proxy the environment names
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def control_url(daemon: BtDaemon) -> str:
    import json

    url: str = json.loads((daemon.state_dir / "control.json").read_text())["url"]
    return url.rstrip("/")


def row(driver: Any, info_hash: str) -> Any:
    from selenium.webdriver.common.by import By

    rows = driver.find_elements(By.CSS_SELECTOR, f'#torrents tr[data-hash="{info_hash}"]')
    return rows[0] if rows else None


def cell(driver: Any, info_hash: str, name: str) -> str:
    from selenium.webdriver.common.by import By

    found = row(driver, info_hash)
    if found is None:
        return ""
    text: str = found.find_element(By.CSS_SELECTOR, f".{name}").text
    return text


def status_with_cookie(url: str, value: str) -> int:
    """The status of a GET carrying only the page's session cookie."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Cookie": f"bt_session={value}"})
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def percent(text: str) -> float:
    return float(text.rstrip("%")) if text.endswith("%") else -1.0


def until(condition: Any, what: str, timeout: float = TIMEOUT) -> None:
    """Wait for ``condition``, asking again when the page replaced what it looked at."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    def holds() -> bool:
        try:
            return bool(condition())
        except (StaleElementReferenceException, NoSuchElementException):
            return False

    wait_for(holds, timeout, what, step=0.2)


def act(action: Any, what: str) -> None:
    """Do ``action`` once it finds its elements (the page re-renders some tables)."""
    until(lambda: action() or True, what)


def test_the_page_logs_in_shows_a_live_download_pauses_uploads_and_removes(
    tmp_path: Path, opentracker: OpenTracker, libtorrent: object, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    torrent = tracked_torrent(tmp_path, opentracker, {"data.bin": SIZE}, "data.bin")
    meta = parse_metainfo(torrent.read_bytes())
    info_hash = meta.info_hash.hex()
    seeder = LibtorrentPeer(torrent.read_bytes(), tmp_path / "seed", upload_rate_limit=RATE)
    workdir = tmp_path / "bt"
    workdir.mkdir()
    daemon = BtDaemon(workdir, torrent, workdir / "downloads")
    shots = tmp_path / "screenshots"
    shots.mkdir()
    try:
        wait_for(lambda: scrape_counts(opentracker, meta.info_hash) >= 1, 30, "the seeder")
        daemon.start()
        daemon.wait_for_api()
        base = control_url(daemon)
        token = (daemon.state_dir / "control.token").read_text().strip()

        # Not logged in: the log-in form only.
        browser.get(base + "/")
        assert browser.find_elements(By.ID, "token")
        assert not browser.find_elements(By.ID, "torrents")
        browser.save_screenshot(str(shots / "0-login.png"))
        browser.find_element(By.ID, "token").send_keys("not-the-token")
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        until(lambda: "Wrong token" in browser.find_element(By.ID, "login-message").text, "refusal")
        browser.find_element(By.ID, "token").send_keys(token)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        until(lambda: browser.find_elements(By.ID, "torrents"), "the page after logging in")
        [session] = [c for c in browser.get_cookies() if c["name"] == "bt_session"]
        assert session["httpOnly"] and session["sameSite"] == "Strict"
        assert token not in session["value"] and token not in browser.current_url
        assert status_with_cookie(base + "/api/v1/session", session["value"]) == 200

        # The download advances on the page, pushed by the event stream.
        until(lambda: row(browser, info_hash) is not None, "the torrent's row")
        until(lambda: browser.find_element(By.ID, "live").text == "live", "the event stream")
        until(lambda: 0 < percent(cell(browser, info_hash, "progress-text")) < 100, "progress")
        first = percent(cell(browser, info_hash, "progress-text"))
        until(
            lambda: first < percent(cell(browser, info_hash, "progress-text")) < 100,
            "the progress to change live",
        )
        assert cell(browser, info_hash, "state") == "downloading"
        # Pushed, not polled: the list was read once, at load.
        reads = browser.execute_script(
            "return performance.getEntriesByType('resource')"
            ".filter(e => new URL(e.name).pathname === '/api/v1/torrents').length"
        )
        assert reads == 1
        row(browser, info_hash).click()  # the details: its file, then its peer
        until(lambda: "data.bin" in browser.find_element(By.ID, "tab-files").text, "files")
        browser.find_element(By.CSS_SELECTOR, "[data-tab=peers]").click()
        until(lambda: "127.0.0.1" in browser.find_element(By.ID, "tab-peers").text, "the peer")
        browser.find_element(By.CSS_SELECTOR, "[data-tab=trackers]").click()
        tracker = browser.find_element(By.ID, "tab-trackers")
        until(lambda: opentracker.announce_url in tracker.text, "the tracker")
        until(lambda: " ago" in tracker.text, "the tracker's last announce")
        browser.find_element(By.CSS_SELECTOR, "[data-tab=files]").click()
        browser.save_screenshot(str(shots / "1-downloading.png"))
        if os.environ.get("BT_WEB_SCREENSHOT"):
            browser.save_screenshot(os.environ["BT_WEB_SCREENSHOT"])

        # Pause: the page says so, and the daemon agrees.
        row(browser, info_hash).find_element(By.CSS_SELECTOR, "[data-action=toggle]").click()
        until(lambda: cell(browser, info_hash, "state") == "paused", "paused on the page")
        assert daemon.api("GET", f"/api/v1/torrents/{info_hash}")[1]["state"] == "paused"
        toggle = row(browser, info_hash).find_element(By.CSS_SELECTOR, "[data-action=toggle]")
        assert toggle.text == "Resume"
        browser.save_screenshot(str(shots / "2-paused.png"))

        # Upload a .torrent through the file input.
        content = tmp_path / "other" / "notes.txt"
        content.parent.mkdir()
        content.write_bytes(b"bt's web page test\n" * 1000)
        raw, other = create_torrent(content, workers=1)
        upload = tmp_path / "notes.torrent"
        upload.write_bytes(raw)
        other_hash = other.info_hash.hex()
        browser.find_element(By.ID, "add-paused").click()
        browser.find_element(By.ID, "torrent-file").send_keys(str(upload))
        browser.find_element(By.CSS_SELECTOR, "#add-file button").click()
        until(lambda: row(browser, other_hash) is not None, "the uploaded torrent's row")
        assert cell(browser, other_hash, "title") == "notes.txt"
        _, listed = daemon.api("GET", "/api/v1/torrents")
        assert other_hash in {t["info_hash"] for t in listed["torrents"]}
        browser.save_screenshot(str(shots / "3-uploaded.png"))

        # Its file's priority, set in the details.
        row(browser, other_hash).find_element(By.CSS_SELECTOR, ".title").click()
        until(lambda: "notes.txt" in browser.find_element(By.ID, "tab-files").text, "its files")
        act(
            lambda: Select(
                browser.find_element(By.CSS_SELECTOR, "#tab-files select")
            ).select_by_value("high"),
            "choosing high",
        )
        until(
            lambda: (
                daemon.api("GET", f"/api/v1/torrents/{other_hash}")[1]["files"][0]["priority"]
                == "high"
            ),
            "the priority to reach the daemon",
        )

        # Remove it (keeping no data: it has none).
        other_row = row(browser, other_hash)
        other_row.find_element(By.CSS_SELECTOR, "[data-action=remove]").click()
        other_row.find_element(By.CSS_SELECTOR, "[data-action=remove-delete]").click()
        until(lambda: row(browser, other_hash) is None, "the row to go")
        _, listed = daemon.api("GET", "/api/v1/torrents")
        assert {t["info_hash"] for t in listed["torrents"]} == {info_hash}
        browser.save_screenshot(str(shots / "4-removed.png"))

        # The session's limits.
        browser.find_element(By.ID, "session-down").send_keys("2M")
        browser.find_element(By.CSS_SELECTOR, "#session-limits button").click()
        until(
            lambda: daemon.api("GET", "/api/v1/session")[1]["download_limit"] == 2 * 1024 * 1024,
            "the session's download limit",
        )

        # Log out: the cookie no longer opens anything.
        browser.find_element(By.ID, "logout").click()
        until(lambda: browser.find_elements(By.ID, "token"), "the log-in form again")
        assert status_with_cookie(base + "/api/v1/session", session["value"]) == 401
        assert "Traceback" not in daemon.log()
    finally:
        daemon.stop()
        seeder.close()
    assert sorted(p.name for p in shots.iterdir())[-1] == "4-removed.png"
