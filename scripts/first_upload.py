"""The first upload after the server starts: how long it waits for the models.

    python scripts/first_upload.py --runs-dir runs --experiment demo --read 60

Serves the app (`streamlit run app.py` on 127.0.0.1, a free port: scripts/load.py's server),
opens the Overview in headless Chromium as a first visitor does, waits --read seconds (the
visitor reads it), then opens the Live page in a new session and uploads one photo. Printed:
the upload's latency (file chosen until every model's answer is drawn), the server's
CPU-seconds during the upload, and during the reading (the app warms the models then).
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402


async def measure(runs_dir: Path, experiment: str, read: float, answers: int) -> str:
    from playwright.async_api import async_playwright

    photo = load.make_photos(1, Path(tempfile.mkdtemp(prefix="first-upload-")))[0]
    with load.serve(runs_dir) as server:
        cpu_start, _ = load.process_stats(server.pid)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=load.CHROMIUM, args=load.CHROMIUM_ARGS)
            try:
                first = await (await browser.new_context()).new_page()
                first.set_default_timeout(300_000)
                await first.goto(f"{server.url}/?experiment={experiment}")
                await first.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
                await asyncio.sleep(read)
                live = await load.open_live(browser, load.live_url(server.url, experiment), 300_000)
                cpu_before, _ = load.process_stats(server.pid)
                upload = await load.upload(live, photo, answers)
                cpu_after, _ = load.process_stats(server.pid)
            finally:
                await browser.close()
    return (f"first upload after {read:.0f} s on the Overview: {upload.seconds:.1f} s until all {upload.answers} "
            f"answers, server {cpu_after - cpu_before:.1f} CPU-s during it, {cpu_before - cpu_start:.1f} CPU-s before "
            f"it (start, page loads, warming)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, required=True)
    parser.add_argument("--experiment", default="demo")
    parser.add_argument("--read", type=float, default=60.0, help="seconds on the Overview before the upload")
    parser.add_argument("--answers", type=int, default=load.ANSWERS, help="models in the experiment")
    args = parser.parse_args()
    print(asyncio.run(measure(args.runs_dir, args.experiment, args.read, args.answers)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
