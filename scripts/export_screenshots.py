"""Screenshot each section of an HTML export into docs/screenshots/export-<section>.png.

    python -m labcore.show.export --experiment demo -o lab.html
    python scripts/export_screenshots.py lab.html

Opens the file in headless Chromium (Debian's, through Playwright) with every request that is
not the file itself blocked, and says if any was tried.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from labcore.show.export import SECTIONS  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("html", type=Path)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    p.add_argument("--max-height", type=int, default=1400, help="crop each section to this many pixels")
    args = p.parse_args()
    blocked = []
    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})

        def route(r):
            if r.request.url.startswith(("file:", "data:")):
                r.continue_()
            else:
                blocked.append(r.request.url)
                r.abort()

        page.route("**/*", route)
        page.goto(args.html.resolve().as_uri())
        page.wait_for_timeout(3000)  # plotly draws after load
        for key in SECTIONS:
            box = page.locator(f"section#{key}").bounding_box()
            clip = {**box, "height": min(box["height"], args.max_height)}
            page.screenshot(path=str(args.out / f"export-{key}.png"), clip=clip, full_page=True)
            print(f"export-{key}.png: {box['height']:.0f} px tall")
        browser.close()
    print("requests blocked:", blocked or "none")
    return 1 if blocked else 0


if __name__ == "__main__":
    sys.exit(main())
