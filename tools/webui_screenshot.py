"""Take the README's picture of the web page: serve a model, sing an example in headless chromium, save a PNG.

    python tools/webui_screenshot.py --exp_name demo_visinger --out docs/webui.png

Uses Debian's chromium and chromedriver (apt-get install chromium chromium-driver; a Hangul font
such as fonts-nanum for the lyrics) through Selenium, as the browser test does. The PNG is
reduced to a palette image so that it stays small in git.
"""
from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--exp_name")
    source.add_argument("--ckpt", type=Path)
    parser.add_argument("--score", type=Path, default=REPO_ROOT / "data" / "examples" / "sanchaek.mid")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "webui.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--colors", type=int, default=96, help="palette size of the saved PNG")
    args = parser.parse_args()

    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = ["--exp_name", args.exp_name] if args.exp_name else ["--ckpt", str(args.ckpt)]
    log = tempfile.NamedTemporaryFile("w+", suffix=".log")
    server = subprocess.Popen([sys.executable, str(REPO_ROOT / "inference" / "webui.py"), *model, "--port", str(port)], cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    driver = None
    try:
        while "serving on" not in Path(log.name).read_text():
            if server.poll() is not None:
                raise SystemExit(f"the server stopped:\n{Path(log.name).read_text()[-2000:]}")
            time.sleep(0.5)
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={args.width},1500", "--hide-scrollbars"):
            options.add_argument(argument)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 300, poll_frequency=0.5)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#score-upload input[type=file]"))
        driver.find_element(By.CSS_SELECTOR, "#score-upload input[type=file]").send_keys(str(args.score.resolve()))
        wait.until(lambda d: d.find_element(By.ID, "status").text.startswith(f"{args.score.name}:"))
        driver.find_element(By.ID, "render").click()
        wait.until(lambda d: "sang" in d.find_element(By.ID, "status").text)
        wait.until(lambda d: d.execute_script("const i = document.querySelector('#plot img'); return !!i && i.complete && i.naturalWidth > 0"))
        time.sleep(1.0)
        height = driver.execute_script("return document.querySelector('gradio-app').scrollHeight")
        driver.set_window_size(args.width, height + 160)
        time.sleep(1.0)
        with tempfile.NamedTemporaryFile(suffix=".png") as shot:
            driver.save_screenshot(shot.name)
            image = Image.open(shot.name).convert("RGB")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            image.quantize(colors=args.colors, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
        print(f"{args.out} ({args.out.stat().st_size // 1024} KiB, {image.width}x{image.height})")
    finally:
        if driver is not None:
            driver.quit()
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
