"""Screenshots of every Present slide at 1280 x 720, as the presenter's projector shows them, and of
a phone's Live page (390 x 844) with "What breed is it?".

    python scripts/present_screenshots.py --url http://127.0.0.1:8650 --experiment demo --out docs/screenshots

Uses a server already running on this machine (run scripts/class_run.py --url ... first to fill the
board); each slide is opened by its address (?slide=N) and shot once its script has stopped.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import load  # noqa: E402

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
PICTURES_IN_VIEW_LOADED = """() => Array.from(document.images).filter(i => {
    const r = i.getBoundingClientRect();
    return r.bottom > 0 && r.top < window.innerHeight && r.width > 0;
}).every(i => i.complete && i.naturalWidth > 0)"""


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40]


def main(argv: list[str] | None = None) -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the app on this machine, e.g. http://127.0.0.1:8650")
    parser.add_argument("--experiment", default="demo")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--phone-url", help="the Live page as a phone opens it (for the phone's shot)")
    parser.add_argument("--phone-photo", type=Path, help="the photo the phone uploads")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=load.CHROMIUM, args=load.CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.set_default_timeout(180_000)
        number, total = 1, None
        while total is None or number <= total:
            page.goto(f"{args.url}/present?experiment={args.experiment}&slide={number}")
            page.wait_for_selector(IDLE)
            caption = page.get_by_text(re.compile(r"^Slide \d+ of \d+")).first
            caption.wait_for()
            total = int(re.search(r"of (\d+)", caption.inner_text()).group(1))
            time.sleep(2)  # plotly's first draw, after the script
            title = page.locator("h1").first.inner_text()
            path = args.out / f"present-{number:02d}-{slug(title)}.png"
            page.screenshot(path=str(path))
            print(f"{path}  {title}")
            number += 1
        if args.phone_url and args.phone_photo:
            phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                        has_touch=True).new_page()
            phone.set_default_timeout(180_000)
            phone.goto(args.phone_url)
            phone.wait_for_selector(IDLE)
            phone.locator("input[type=file]").set_input_files(str(args.phone_photo))
            phone.get_by_text("What breed is it?").wait_for()
            phone.wait_for_selector(IDLE)
            # The last model's picture at the top, its answers and the question under it.
            phone.locator("[data-testid='stImage']").last.evaluate("e => e.scrollIntoView({block: 'start'})")
            # The script's idle mark comes before the browser has fetched the pictures it drew:
            # wait until every picture in view has arrived, or the shot shows a blank frame.
            phone.wait_for_function(PICTURES_IN_VIEW_LOADED)
            path = args.out / "present-phone-live.png"
            phone.screenshot(path=str(path))
            print(path)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
