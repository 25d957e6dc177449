"""The web page in a real browser: Debian's headless chromium, driven by Selenium through Debian's chromedriver.

One server (`inference/webui.py` with the tiny test model, as a subprocess) serves every test here;
the last test stops it and checks it left no file behind. Without chromium the browser tests skip
with the reason; under CI (``CI=true``) they fail instead (`.ci/run` installs the packages).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf

from config.errors import UserInputError, error_line
from config.loader import config_section
from inference.webui_handlers import phrases_of
from preprocessor.audio import AudioSettings
from preprocessor.scores.midi_reader import read_score
from tests.inference.conftest import REPO_ROOT, SANCHAEK, cli_env

BYEOL = REPO_ROOT / "data" / "examples" / "byeol.mid"
# Debian's packages chromium and chromium-driver; another installed chromium can be named by these variables.
CHROMIUM = os.environ.get("SVS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SVS_CHROMEDRIVER", "/usr/bin/chromedriver")
SERVER_START_SECONDS = 240  # torch + gradio imports and the g2pk load, on a shared 2-core machine
RENDER_SECONDS = 180


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    log: Path
    tmp: Path  # its TMPDIR
    home: Path  # its HOME
    cwd: Path

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@pytest.fixture(scope="module")
def server(tiny_experiment, ddsp_experiment, tmp_path_factory):
    """`python inference/webui.py --ckpt <tiny> --ckpt <tiny DDSP singer>` on a free port (the DDSP singer gives the
    timbre-transfer tab), with its own empty TMPDIR, HOME and working folder."""
    base = tmp_path_factory.mktemp("webui")
    tmp, home, cwd = base / "tmp", base / "home", base / "cwd"
    for folder in (tmp, home, cwd):
        folder.mkdir()
    port = _free_port()
    env = cli_env() | {"TMPDIR": str(tmp), "HOME": str(home)}
    env.pop("MPLCONFIGDIR", None)
    log = base / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "inference" / "webui.py"), "--ckpt", str(tiny_experiment.checkpoint), "--ckpt", str(ddsp_experiment / "tiny_ddsp"), "--port", str(port)],
            cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    running = Server(process, f"http://127.0.0.1:{port}/", log, tmp, home, cwd)
    deadline = time.monotonic() + SERVER_START_SECONDS
    while "serving on" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            running.stop()
            pytest.fail(f"the web page did not start (exit {process.returncode}):\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def chromium() -> tuple[str, str]:
    """(browser, driver) paths; a skip with the reason when they are missing, a failure under CI."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).is_file()]
    if missing:
        reason = f"{' and '.join(missing)} not found: install Debian's chromium and chromium-driver packages (apt-get install chromium chromium-driver)"
        if _in_ci():
            pytest.fail(f"CI is set but {reason}")
        pytest.skip(reason)
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture(scope="module")
def browser(chromium, server, tmp_path_factory):
    """Headless Debian chromium (never one downloaded at run time), downloads into a folder of its own."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium[0]
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1600", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # every request the page makes
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False})
    # The Debian driver and browser are given, so Selenium Manager has nothing to find; offline, it fetches nothing either.
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = webdriver.Chrome(service=Service(chromium[1]), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


def wait_for(driver, condition, seconds: float, what: str):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, seconds, poll_frequency=0.25).until(lambda d: condition(d))
    except TimeoutException:
        status = driver.execute_script("return document.querySelector('#status')?.innerText")
        raise AssertionError(f"timed out waiting for {what}; status line: {status!r}") from None


def status_text(driver) -> str:
    return driver.execute_script("return document.querySelector('#status')?.innerText || ''")


def open_page(driver, server: Server) -> None:
    driver.get(server.url)
    wait_for(driver, lambda d: d.execute_script("return !!document.querySelector('#score-upload input[type=file]')"), 120, "the upload field")


def upload(driver, path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, "#score-upload input[type=file]").send_keys(str(path))


def table_lyrics(driver) -> list[str]:
    """The lyrics column (the last) of the phrases table, as shown (Gradio 6 draws the rows as a virtual grid)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#phrases [role=row].virtual-row')).map(r => {"
        " const c = r.querySelectorAll('[role=gridcell]'); return c.length ? c[c.length - 1].innerText.trim() : ''; })"
    )


def test_upload_render_listen_and_download(browser, server, tiny_experiment):
    from selenium.webdriver.common.by import By

    audio = config_section(tiny_experiment.config, AudioSettings, "audio")
    score = read_score(SANCHAEK)
    frame = audio.hop_size / audio.sample_rate
    open_page(browser, server)
    upload(browser, SANCHAEK)
    wait_for(browser, lambda d: status_text(d).startswith("sanchaek.mid:"), 120, "the score to load")
    assert table_lyrics(browser) == [phrase.lyrics for phrase in phrases_of(score)]  # Hangul, phrase by phrase

    browser.find_element(By.ID, "render").click()
    wait_for(browser, lambda d: "sang sanchaek.mid" in status_text(d) or "error" in status_text(d), RENDER_SECONDS, "the render")
    assert "error" not in status_text(browser)
    duration = wait_for(browser, audio_duration, 60, "the audio element's metadata")
    # The wav spans the score to the frame (the last note's end rounded to a hop).
    assert abs(duration - score.total_seconds) <= frame

    link = browser.find_element(By.CSS_SELECTOR, "#sung-wav a[download]")
    assert link.get_attribute("download") == "sanchaek.wav"
    link.click()
    downloaded = browser.downloads / "sanchaek.wav"
    wait_for(browser, lambda d: downloaded.is_file() and not list(browser.downloads.glob("*.crdownload")), 60, "the download")
    info = sf.info(downloaded)
    assert (info.format, info.subtype, info.channels, info.samplerate) == ("WAV", "PCM_16", 1, audio.sample_rate)
    assert info.frames % audio.hop_size == 0 and abs(info.frames / info.samplerate - score.total_seconds) <= frame
    assert info.frames / info.samplerate == pytest.approx(duration, abs=1e-3)  # the file the page plays
    assert "in tune" in browser.execute_script("return document.querySelector('#tuning textarea').value")
    assert browser.execute_script("const i = document.querySelector('#plot img'); return !!i && i.naturalWidth > 0")


def test_a_bad_file_shows_the_error_line_and_the_server_goes_on(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    broken = tmp_path / "broken.mid"
    broken.write_bytes(b"MThd but not really a MIDI file")
    with pytest.raises(UserInputError) as cli_error:
        read_score(broken)
    expected = error_line(cli_error.value).replace(str(broken), broken.name)
    open_page(browser, server)
    upload(browser, broken)
    wait_for(browser, lambda d: status_text(d).startswith("error:"), 120, "the error line")
    assert status_text(browser) == expected
    assert browser.execute_script("return document.querySelector('#status .error') !== null")

    # Still serving: an example from the list loads.
    browser.find_element(By.CSS_SELECTOR, "#example input").click()
    option = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "li[role=option][aria-label='byeol.mid']"), 30, "the examples list")
    option[0].click()
    wait_for(browser, lambda d: status_text(d).startswith("byeol.mid:"), 120, "the example to load")
    assert table_lyrics(browser) == [phrase.lyrics for phrase in phrases_of(read_score(BYEOL))]


def audio_duration(driver) -> float | None:
    return driver.execute_script(
        "const a = document.querySelector('#sung-audio audio'); return a && a.readyState >= 1 && isFinite(a.duration) ? a.duration : null"
    )


def test_two_renders_at_once_both_finish(browser, server, tiny_experiment):
    """Two tabs (two sessions) press Render one right after the other; each gets the audio of its own score."""
    from selenium.webdriver.common.by import By

    audio = config_section(tiny_experiment.config, AudioSettings, "audio")
    frame = audio.hop_size / audio.sample_rate
    tabs = {}
    for score in (BYEOL, SANCHAEK):
        if tabs:
            browser.switch_to.new_window("tab")
        open_page(browser, server)
        upload(browser, score)
        wait_for(browser, lambda d: status_text(d).startswith(f"{score.name}:"), 120, f"{score.name} to load")
        tabs[score] = browser.current_window_handle
    for handle in tabs.values():  # both renders are queued before either can finish
        browser.switch_to.window(handle)
        browser.find_element(By.ID, "render").click()
    for score, handle in tabs.items():
        browser.switch_to.window(handle)
        wait_for(browser, lambda d: f"sang {score.name}" in status_text(d) or "error" in status_text(d), RENDER_SECONDS, f"the render of {score.name}")
        duration = wait_for(browser, audio_duration, 60, "the audio element's metadata")
        assert abs(duration - read_score(score).total_seconds) <= frame, score.name
    browser.close()
    browser.switch_to.window(tabs[BYEOL])


def test_the_transfer_tab_sings_an_uploaded_recording(browser, server, tmp_path):
    from selenium.webdriver.common.by import By

    from tests.audio_factory import sung_phrase

    take = tmp_path / "take.wav"
    sf.write(take, sung_phrase([60, 64, 67], 16000), 16000)
    expected_seconds = sf.info(take).frames // 160 * 160 / 16000  # whole frames of the model's hop
    open_page(browser, server)
    browser.find_element(By.XPATH, "//button[@role='tab' and contains(., 'Timbre transfer')]").click()
    field = wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#transfer-upload input[type=file]"), 60, "the recording upload field")
    field[0].send_keys(str(take))
    browser.find_element(By.ID, "transfer-run").click()
    status = "return document.querySelector('#transfer-status')?.innerText || ''"
    wait_for(browser, lambda d: "sang take.wav" in d.execute_script(status) or "error" in d.execute_script(status), RENDER_SECONDS, "the transfer")
    assert "error" not in browser.execute_script(status)
    # The page reports the sung length; the audio element's own metadata is not awaited here: in this
    # Gradio version it never reached readyState >= 1 in the second tab under headless chromium (the
    # handler tests check the written file's length to the frame).
    assert f"({expected_seconds:.1f} s)" in browser.execute_script(status)
    wait_for(browser, lambda d: d.execute_script("const i = document.querySelector('#transfer-plot img'); return !!i && i.complete && i.naturalWidth > 0"), 60, "the transfer plot")
    assert browser.execute_script("const i = document.querySelector('#transfer-plot img'); return !!i && i.naturalWidth > 0")


def test_the_page_fetches_nothing_from_the_network(browser, server):
    """Every request the browser made in these tests went to the local server (no fonts, CDN, analytics)."""
    local = server.url.rstrip("/")
    urls = set()
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
    assert any(url.startswith(local) for url in urls)
    assert [url for url in urls if not url.startswith((local + "/", "data:", "blob:"))] == []


def listening_addresses(port: int) -> set[str]:
    """The IPv4/IPv6 addresses with a socket listening on `port` on this machine (from /proc/net/tcp*)."""
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).is_file():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                if len(address) == 8:
                    addresses.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:
                    words = bytes.fromhex(address)
                    addresses.add(socket.inet_ntop(socket.AF_INET6, b"".join(words[i : i + 4][::-1] for i in range(0, 16, 4))))
    return addresses


def test_the_server_listens_on_localhost_only(server):
    with urllib.request.urlopen(server.url, timeout=30) as response:
        assert response.status == 200
    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    if not Path("/proc/net/tcp").is_file():
        pytest.skip("no /proc/net/tcp here to read the listening address from")
    assert listening_addresses(port) == {"127.0.0.1"}


def test_the_server_stops_and_leaves_no_file_behind(server):
    assert server.stop() == 0, server.log.read_text()[-3000:]
    assert "Traceback" not in server.log.read_text()
    for folder in (server.tmp, server.home, server.cwd):
        assert list(folder.iterdir()) == [], f"{folder}: the server left {[p.name for p in folder.iterdir()]}"
