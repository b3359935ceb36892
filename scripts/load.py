"""Load test of the live page: N students upload N different photos at the same moment.

    python scripts/load.py --runs-dir runs --experiment demo --sessions 10
    python scripts/load.py --runs-dir runs --sessions 30 --env SOME_SETTING=value
    python scripts/load.py --url http://127.0.0.1:8501 --pid 4242 --sessions 10
    python scripts/load.py --runs-dir runs --sequential 100

Serves the app (`streamlit run app.py` on 127.0.0.1, a free port) on a runs root, or uses one
already running (--url; --pid to read its CPU and memory). The sessions open the live page of
one experiment (--experiment, default the newest under the root) and expect one answer per
model in it. A warm-up session uploads one photo
first, so the models are loaded before anything is timed. Then N sessions (one browser context
each, in one headless Chromium) open the live page, and all N upload a different photo at once.

Printed: per-upload latency (file chosen until all the answers are drawn: median, p95, max), the
server process's CPU-seconds (utime + stime from /proc/<pid>/stat, all its threads) for the page
loads and per upload, and its resident memory before and after. With --sequential K one browser
tab uploads K photos one after another (reloading the page before each), and the resident memory
after the 10th and the K-th upload shows whether the server grows. Unless --no-forward, the
script then times the experiment's models' compiled forward passes on the same photos in its own process
(CPU-seconds), for the ratio.

Traffic goes only to 127.0.0.1; every wait is bounded (--timeout).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from urllib.parse import quote
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHARED_PETS = ROOT.parent / "shared" / "data" / "oxford-pets-3class"
PHOTO_SIZE = (640, 480)  # drawn photos, where the real slice is absent: a phone photo after the browser's downscale
ANSWERS = 6  # one per model of a whole experiment
# The page is done when its script has stopped and every model's caption ("... · 12 ms") is drawn,
# or it shows an error or an exception.
DONE_JS = """([name, answers]) => {
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
  if (document.querySelector("[data-testid='stException']")) return true;
  if (!document.body.innerText.includes(name)) return false;
  if (document.querySelector("[data-testid='stAlert']")) return true;  // e.g. "... is damaged": no answers
  const times = Array.from(document.querySelectorAll("[data-testid='stCaptionContainer']"))
    .filter(e => /\\d+ ms$/.test(e.innerText.trim()));
  return times.length >= answers;
}"""
COUNT_JS = """() => ({
  answers: Array.from(document.querySelectorAll("[data-testid='stCaptionContainer']"))
    .filter(e => /\\d+ ms$/.test(e.innerText.trim())).length,
  exceptions: document.querySelectorAll("[data-testid='stException']").length
    + (document.body.innerText.includes("Traceback") ? 1 : 0),
})"""


# --------------------------------------------------------------------------- the server

@dataclass
class Server:
    url: str
    pid: int | None  # None: a server we did not start and were not told the pid of


def process_stats(pid: int) -> tuple[float, float]:
    """(CPU-seconds, resident MB) of a process: utime + stime of all its threads, and VmRSS."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": fields from the 3rd on
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: the 14th and 15th fields
    cpu = ticks / os.sysconf("SC_CLK_TCK")
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return cpu, rss / 1024


PORTS_ENV = "PETLAB_LOAD_PORTS"  # e.g. "8630-8649": where a shared machine allows servers


def free_port() -> int:
    """A free port on 127.0.0.1: any, or the first free one of $PETLAB_LOAD_PORTS (FIRST-LAST)."""
    first, _, last = os.environ.get(PORTS_ENV, "0-0").partition("-")
    for port in range(int(first), int(last or first) + 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in {PORTS_ENV}={os.environ[PORTS_ENV]}")


def wait_healthy(url: str, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return True
        except OSError:
            time.sleep(0.5)
    return False


@contextlib.contextmanager
def serve(runs_dir: Path, env: dict[str, str] | None = None, timeout: float = 120,
          app_root: Path = ROOT, address: str = "127.0.0.1", port: int | None = None) -> Iterator[Server]:
    """`streamlit run app.py` on `address` (127.0.0.1; 0.0.0.0 to be reached from the network
    too) and `port` (a free one by default), on this run store, until the block ends; the app
    of `app_root` (another checkout, for figures of older code). Its URL is the loopback one."""
    port = free_port() if port is None else port
    environment = {**os.environ, "PETLAB_RUNS_DIR": str(runs_dir), **(env or {})}
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", address, "--browser.gatherUsageStats", "false"],
        cwd=app_root, env=environment, stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_healthy(url, timeout):
            log.seek(0)
            raise RuntimeError(f"streamlit did not start in {timeout:.0f} s: {log.read()[-2000:]}")
        yield Server(url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# --------------------------------------------------------------------------- photos

def make_photos(count: int, folder: Path) -> list[Path]:
    """`count` different photos: the real slice's JPEGs where this machine has it, else drawn
    pets saved as 640x480 JPEGs. Each gets a unique name, so a page shows which one it answered."""
    import numpy as np
    from PIL import Image

    from labcore.data.sources import draw_pet

    folder.mkdir(parents=True, exist_ok=True)
    real = sorted((SHARED_PETS / "images").glob("*.jpg")) if (SHARED_PETS / "images").is_dir() else []
    real = [p for p in real if p.read_bytes()[:3] == b"\xff\xd8\xff"]  # the slice has a GIF and a PNG named .jpg
    photos = []
    rng = np.random.default_rng(0)
    for n in range(count):
        target = folder / f"load-{n:03d}.jpg"
        if n < len(real):
            shutil.copyfile(real[n], target)
        else:
            pet, _, _ = draw_pet(n % 37, rng, size=240)
            Image.fromarray(pet).resize(PHOTO_SIZE, Image.Resampling.BICUBIC).save(target, "JPEG", quality=90)
        photos.append(target)
    return photos


# --------------------------------------------------------------------------- the sessions

@dataclass
class Upload:
    seconds: float
    answers: int
    exceptions: int


def live_url(url: str, experiment: str | None) -> str:
    return f"{url}/live" + (f"?experiment={quote(experiment)}" if experiment else "")


async def open_live(browser, url: str, timeout_ms: float):
    """A new session (its own browser context) on the live page `url`, its first run finished."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    page.set_default_timeout(timeout_ms)
    await page.goto(url)
    await page.get_by_role("heading", name="Live inference").wait_for()
    await page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
    return page


async def upload(page, photo: Path, answers: int) -> Upload:
    """Choose the photo in the page's uploader; the time until every answer is drawn."""
    start = time.perf_counter()
    await page.locator("input[type=file]").set_input_files(str(photo))
    await page.wait_for_function(DONE_JS, arg=[photo.name, answers], polling=100)
    seconds = time.perf_counter() - start
    counts = await page.evaluate(COUNT_JS)
    return Upload(seconds, counts["answers"], counts["exceptions"])


@dataclass
class LoadResult:
    sessions: int
    latencies: list[float]
    answers: list[int]
    exceptions: list[int]
    page_load_cpu_s: float | None = None
    upload_cpu_s: float | None = None  # all N uploads together
    rss_start_mb: float | None = None  # before the warm-up (no model loaded)
    rss_before_mb: float | None = None  # after the warm-up, before the N sessions
    rss_after_mb: float | None = None
    rss_by_upload_mb: dict[int, float] = field(default_factory=dict)  # sequential mode: after upload k
    load_average: tuple[float, float] = (0.0, 0.0)  # 1-minute load at start and end (other processes included)

    @property
    def cpu_per_upload_s(self) -> float | None:
        return None if self.upload_cpu_s is None else self.upload_cpu_s / self.sessions


def _stats(server: Server) -> tuple[float | None, float | None]:
    return process_stats(server.pid) if server.pid else (None, None)


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


async def _simultaneous(server: Server, url: str, photos: list[Path], warmup: Path, answers: int,
                        timeout_s: float) -> LoadResult:
    from playwright.async_api import async_playwright

    load_start = os.getloadavg()[0]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            _, rss_start = _stats(server)
            first = await open_live(browser, url, timeout_s * 1000)
            await upload(first, warmup, answers)  # loads and warms every model
            await first.context.close()
            cpu0, rss_before = _stats(server)
            pages = await asyncio.gather(*(open_live(browser, url, timeout_s * 1000) for _ in photos))
            cpu1, _ = _stats(server)
            done = await asyncio.gather(*(upload(page, photo, answers) for page, photo in zip(pages, photos)))
            cpu2, rss_after = _stats(server)
        finally:
            await browser.close()
    return LoadResult(len(photos), [u.seconds for u in done], [u.answers for u in done], [u.exceptions for u in done],
                      page_load_cpu_s=_minus(cpu1, cpu0), upload_cpu_s=_minus(cpu2, cpu1), rss_start_mb=rss_start,
                      rss_before_mb=rss_before, rss_after_mb=rss_after, load_average=(load_start, os.getloadavg()[0]))


async def _sequential(server: Server, url: str, photos: list[Path], warmup: Path, answers: int,
                      timeout_s: float) -> LoadResult:
    from playwright.async_api import async_playwright

    load_start = os.getloadavg()[0]
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            _, rss_start = _stats(server)
            page = await open_live(browser, url, timeout_s * 1000)
            await upload(page, warmup, answers)
            cpu0, rss_before = _stats(server)
            done, by_upload = [], {}
            for k, photo in enumerate(photos, 1):
                # A fresh page each time (the old session ends): a second upload into the same
                # uploader sometimes never finished here, and the question is the server's memory.
                await page.goto(url)
                await page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
                done.append(await upload(page, photo, answers))
                by_upload[k] = _stats(server)[1]
            cpu1, rss_after = _stats(server)
        finally:
            await browser.close()
    return LoadResult(len(photos), [u.seconds for u in done], [u.answers for u in done], [u.exceptions for u in done],
                      upload_cpu_s=_minus(cpu1, cpu0), rss_start_mb=rss_start, rss_before_mb=rss_before,
                      rss_after_mb=rss_after, rss_by_upload_mb=by_upload, load_average=(load_start, os.getloadavg()[0]))


def run_load(server: Server, photos: list[Path], warmup: Path, *, experiment: str | None = None,
             sequential: bool = False, answers: int = ANSWERS, timeout_s: float = 600) -> LoadResult:
    """N sessions uploading `photos` at once (or one session, one after another) to the live
    page of `experiment` (None: the app's default), after a warm-up upload of `warmup` in a
    session of its own."""
    run = _sequential if sequential else _simultaneous
    return asyncio.run(run(server, live_url(server.url, experiment), photos, warmup, answers, timeout_s))


def experiment_runs(runs_dir: Path, name: str | None) -> tuple[str, list]:
    """The experiment to load (by name, else the newest under `runs_dir`) and its runs with a model."""
    from labcore.store.experiments import list_experiments

    found = list_experiments(runs_dir)
    chosen = next((e for e in found if name in (e.key, e.name)), None) if name else (found[0] if found else None)
    if chosen is None:
        raise SystemExit(f"load.py: no experiment {name or ''} under {runs_dir} "
                         f"(found: {', '.join(e.key for e in found) or 'none'})")
    return chosen.key, [run for run in chosen.runs if run.has_model]


# --------------------------------------------------------------------------- the floor

def forward_cpu_seconds(runs: list, photos: list[Path], repeats: int = 3) -> tuple[float, int, list[int]]:
    """CPU-seconds of the runs' models' compiled forward passes per photo (all models, summed),
    median over `repeats` rounds of every photo; with the model count and their input sizes."""
    import tensorflow as tf

    from labcore.bench.inference import forward_cpu_per_image
    from labcore.data.images import load_image
    from labcore.show.inference import Predictor
    tf.get_logger().setLevel("ERROR")  # each Predictor traces its own function: no retracing warnings
    predictors = [Predictor.from_run(run) for run in runs]
    images = [load_image(photo.read_bytes(), photo.name).image for photo in photos]
    return forward_cpu_per_image(predictors, images, repeats), len(predictors), sorted({p.image_size for p in predictors})


# --------------------------------------------------------------------------- report

def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def report(result: LoadResult, forward: tuple[float, int, list[int]] | None, sequential: bool,
           expected: int = ANSWERS) -> str:
    lat = result.latencies
    kind = "uploads one after another (a fresh page each)" if sequential else "sessions uploading at the same moment"
    lines = [f"{result.sessions} {kind}; load average (1 min, other processes included): "
             f"{result.load_average[0]:.1f} at start, {result.load_average[1]:.1f} at end",
             f"  answers per upload: {min(result.answers)}..{max(result.answers)} (expected {expected}); "
             f"exceptions: {sum(result.exceptions)}",
             f"  latency (s): median {statistics.median(lat):.2f}  p95 {percentile(lat, 95):.2f}  max {max(lat):.2f}"]
    if result.upload_cpu_s is not None:
        if result.page_load_cpu_s is not None:
            lines.append(f"  server CPU-s: {result.page_load_cpu_s:.2f} for the {result.sessions} page loads, "
                         f"{result.upload_cpu_s:.2f} for the uploads")
        lines.append(f"  server CPU-s per upload: {result.cpu_per_upload_s:.3f}")
        lines.append(f"  server RSS (MB): {result.rss_start_mb:.0f} at start, {result.rss_before_mb:.0f} after the "
                     f"warm-up upload, {result.rss_after_mb:.0f} after the {result.sessions} uploads")
        if result.rss_by_upload_mb:
            marks = sorted({k for k in (1, 10, 50, 100, result.sessions) if k in result.rss_by_upload_mb})
            lines.append("  server RSS after upload k (MB): "
                         + ", ".join(f"{k}: {result.rss_by_upload_mb[k]:.0f}" for k in marks))
    if forward is not None:
        seconds, models, sizes = forward
        lines.append(f"  compiled forward passes of the {models} models on the same photos "
                     f"({'/'.join(map(str, sizes))} px, this process): {seconds:.3f} CPU-s per photo")
        if result.cpu_per_upload_s is not None:
            lines.append(f"  server CPU per upload / forward passes: {result.cpu_per_upload_s / seconds:.2f}x "
                         "(target <= 1.5x)")
    return "\n".join(lines)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The options this script and scripts/lecture.py share: the store, the experiment, the
    server's environment, the waits, the forward-pass timing and the JSON file."""
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "runs", help="the runs root to serve")
    parser.add_argument("--experiment", help="the experiment whose live page is loaded (default: the newest)")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="environment for the server this script starts (repeatable)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds any one wait may take")
    parser.add_argument("--no-forward", action="store_true", help="skip timing the forward passes")
    parser.add_argument("--json", type=Path, help="also write every figure here")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_server_arguments(parser)
    parser.add_argument("--url", help="use this running server (http://127.0.0.1:PORT) instead of starting one")
    parser.add_argument("--pid", type=int, help="with --url: the server's process id, for its CPU and memory")
    parser.add_argument("--sessions", type=int, default=10, help="sessions uploading at the same moment")
    parser.add_argument("--sequential", type=int, metavar="K",
                        help="instead: one tab uploads K photos in turn, reloading the page before each")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"load.py: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 1
    if args.url and not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        print("load.py: only a server on this machine (127.0.0.1) may be loaded", file=sys.stderr)
        return 1
    count = args.sequential or args.sessions
    experiment, runs = experiment_runs(args.runs_dir, args.experiment)
    env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory() as tmp:
        photos = make_photos(count + 1, Path(tmp))
        warmup, photos = photos[-1], photos[:-1]
        with (contextlib.nullcontext(Server(args.url.rstrip("/"), args.pid)) if args.url
              else serve(args.runs_dir, env)) as server:
            result = run_load(server, photos, warmup, experiment=experiment, sequential=bool(args.sequential),
                              answers=len(runs), timeout_s=args.timeout)
        forward = None if args.no_forward else forward_cpu_seconds(runs, photos[:10])
    print(f"experiment {experiment}: {len(runs)} models")
    print(report(result, forward, bool(args.sequential), len(runs)))
    if args.json:
        args.json.write_text(json.dumps({**asdict(result), "experiment": experiment, "models": len(runs), "env": env,
                                         "forward_cpu_s": forward and forward[0]},
                                        indent=2))
    return 0 if all(a >= len(runs) for a in result.answers) and not any(result.exceptions) else 1


if __name__ == "__main__":
    sys.exit(main())
