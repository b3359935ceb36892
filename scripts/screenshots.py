"""Screenshot every page of the app, as a person sees it, into docs/screenshots/.

    PETLAB_RUNS_DIR=runs python scripts/screenshots.py [--experiment demo] [--port 8597]
        [--pages efficiency breeds ...] [--suffix -3breeds] [--width 1280]

Serves the app with `streamlit run`, opens each page of one experiment (default: the newest) in
headless Chromium (Debian's, through Playwright), waits until the page's script has finished,
and saves a full-page PNG. On the live page it clicks the first example of the experiment, and shoots it again with
the Grad-CAM heat maps on (live-gradcam.png).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"overview": "", "histories": "histories", "compare": "compare", "live": "live", "dataset": "dataset",
         "breeds": "breeds", "efficiency": "efficiency"}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def wait_until_idle(page) -> None:
    page.wait_for_timeout(800)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=300_000)
    page.wait_for_timeout(1500)  # let plotly finish drawing


def full_page_screenshot(page, path: Path, width: int = 1600) -> None:
    """Streamlit scrolls inside its main container, not the document: grow the window to the
    container's height, shoot, then shrink it back."""
    height = page.evaluate("""() => Math.max(...Array.from(
        document.querySelectorAll("[data-testid='stMain'], [data-testid='stAppViewContainer']"),
        e => e.scrollHeight))""")
    page.set_viewport_size({"width": width, "height": min(max(height, 1000), 8000)})
    wait_until_idle(page)
    page.screenshot(path=str(path))
    page.set_viewport_size({"width": width, "height": 1000})


@contextmanager
def serve_app(port: int, env: dict[str, str]) -> Iterator[str]:
    """`streamlit run app.py` on 127.0.0.1:`port` with `env`, answering its health check; yields
    its address and stops it afterwards."""
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                               "--server.port", str(port), "--server.address", "127.0.0.1"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8597)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--experiment", help="the experiment to show (default: the newest)")
    parser.add_argument("--pages", nargs="+", choices=PAGES, default=list(PAGES), help="the pages to shoot (default: all)")
    parser.add_argument("--suffix", default="", help="added to each file's name, e.g. -3breeds")
    parser.add_argument("--width", type=int, default=1600, help="the window's width in pixels")
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if not chromium:
        print("screenshots.py: Debian's chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    with serve_app(args.port, os.environ.copy()) as url:
        args.out.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": 1000})
            page.set_default_timeout(300_000)
            query = f"?experiment={args.experiment}" if args.experiment else ""
            for name, path in ((n, PAGES[n]) for n in args.pages):
                page.goto(f"{url}/{path}{query}")
                wait_until_idle(page)
                if name == "live":
                    page.locator("[data-testid='stButton'] button").filter(has_text="test ").first.click()
                    wait_until_idle(page)
                full_page_screenshot(page, args.out / f"{name}{args.suffix}.png", args.width)
                print(f"saved {args.out / f'{name}{args.suffix}.png'}")
                if name == "live":  # and once more with the Grad-CAM heat maps under the breed heads
                    page.get_by_text("Grad-CAM heat maps").click()
                    wait_until_idle(page)
                    full_page_screenshot(page, args.out / f"live-gradcam{args.suffix}.png", args.width)
                    print(f"saved {args.out / f'live-gradcam{args.suffix}.png'}")
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
