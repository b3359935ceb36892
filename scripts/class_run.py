"""A class joins in: N phones open the Live page at this machine's network address, each uploads a
photo of known breed and names it; the class board must then show N pets and, for each breed head,
the top-1 and top-5 accuracy a direct computation gets with the same models on the same photos.

    python scripts/class_run.py --runs-dir /tmp/store --experiment demo --sessions 30
    python scripts/class_run.py --url http://127.0.0.1:8650 --pid 4242 --runs-dir /tmp/store --sessions 10

Serves the app (`streamlit run app.py --server.address 0.0.0.0`, the first free port of 8650-8669)
on a runs root, or uses one already running (--url, on this machine; --pid to read its CPU). The
phones open the address the join slide's QR code holds (this machine's network address, found
without sending a packet); the presenter reads the board on 127.0.0.1. Photos: the real slice's
test images (../shared/data/oxford-pets-3class), taken in turn from each breed. Each phone is its
own browser context in one headless Chromium (390 x 844); all upload at once.

Printed: per phone, the seconds from choosing the file to every answer drawn, and from naming the
breed to the board counting it; the server's CPU-seconds for the uploads; the board's draw time;
the board's figures beside the direct ones. Exit 0 when they agree, 1 otherwise, 2 when it cannot
run (no network address, no slice, no Chromium). Traffic goes only to this machine's own
addresses; every wait is bounded (--timeout).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import load  # noqa: E402  (the load script's server and page helpers)
from labcore.show.join import network_address  # noqa: E402

PORTS = range(8650, 8670)
PHONE = {"width": 390, "height": 844}
PROJECTOR = {"width": 1280, "height": 720}
QUESTION = "What breed is it?"
NAMING_ATTEMPTS, NAMING_WAIT_S = 4, 15  # a list closed by another page is opened again
BOARD_ROWS_JS = """table => Array.from(table.querySelectorAll("tr")).map(
  tr => Array.from(tr.children).map(c => c.innerText.trim()))"""
ACCURACY_HEADING = "Breed accuracy on the"
CAMERA = "Take a photo with the camera"
# A widget's code (Streamlit's Checkbox chunk for a toggle, Button, Table...) is fetched the first
# time a page draws one, so a widget can appear after those the script draws later. In CI, on
# fresh machines: the examples' buttons drawn and the camera toggle above them not yet; the
# board's download button and its tables not yet. What must be there is waited for this long.
WIDGET_CODE_WAIT_S = 30


@dataclass
class Photo:
    path: Path
    label: int  # breed index (class id - 1)


def own_network_address() -> str | None:
    """This machine's network address (as the join slide finds it), checked to be its own: a
    socket can bind only to an address this machine holds."""
    address = network_address()
    if address is None:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return None
    return address


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))
                return port
            except OSError:
                continue
    raise RuntimeError(f"no free port in {PORTS.start}-{PORTS.stop - 1}")


@contextlib.contextmanager
def serve_class(runs_dir: Path, timeout: float = 120) -> Iterator[tuple[load.Server, int]]:
    """`streamlit run app.py --server.address 0.0.0.0` on a free port of 8650-8669 (loopback for
    the presenter, the network address for the phones); the server and its port."""
    port = free_port()
    with load.serve(runs_dir, timeout=timeout, address="0.0.0.0", port=port) as server:
        yield server, port


def class_photos(slice_dir: Path, count: int) -> list[Photo]:
    """`count` JPEG photos of the slice's test split with their breeds, one breed after another."""
    by_breed: dict[int, list[Path]] = {}
    for line in (slice_dir / "annotations" / "test.txt").read_text().split("\n"):
        if not line.strip() or line.startswith("#"):
            continue
        name, class_id = line.split()[:2]
        path = slice_dir / "images" / f"{name}.jpg"
        if path.is_file() and path.read_bytes()[:3] == b"\xff\xd8\xff":
            by_breed.setdefault(int(class_id) - 1, []).append(path)
    queues = [sorted(paths) for _, paths in sorted(by_breed.items())]
    photos = []
    while len(photos) < count and any(queues):
        for label, queue in zip(sorted(by_breed), queues):
            if queue and len(photos) < count:
                photos.append(Photo(queue.pop(0), label))
    return photos


def direct_top5(runs_dir: Path, experiment: str, photos: Sequence[Photo]) -> dict[str, list[tuple[int, ...]]]:
    """Each breed head's top-5 on each photo, computed here as the Live page computes it: the
    photo decoded by prepare_photo, the model's compiled forward pass (show.inference)."""
    from labcore.data.images import prepare_photo
    from labcore.show.board import BREED_RUNS
    from labcore.show.inference import Predictor
    from labcore.store.runs import list_runs

    runs = [r for r in list_runs(Path(runs_dir) / experiment) if r.run_id in BREED_RUNS and r.has_model]
    sizes = tuple(sorted({r.image_size for r in runs}))
    prepared = [prepare_photo(p.path.read_bytes(), p.path.name, 420, sizes) for p in photos]
    top5 = {}
    for run in runs:
        predictor = Predictor.from_run(run)
        top5[run.run_id] = [tuple(k for k, _ in predictor.predict(photo.inputs[run.image_size]).top5)
                            for photo in prepared]
    return top5


def expected_rows(top5: dict[str, list[tuple[int, ...]]], labels: Sequence[int]) -> list[list[str]]:
    """The board's accuracy table as it should read: per task, pretrained and scratch top-1 and
    top-5 as 'share (hits of n)', counted here from the top-5 lists."""
    from labcore.show.board import share

    rows = []
    for task in ("detection", "multitask"):
        row = [task]
        for init in ("pretrained", "scratch"):
            got = top5.get(f"{task}-{init}")
            for hit in ((lambda t, y: t[:1] == (y,)), (lambda t, y: y in t)):
                row.append(share(sum(hit(t, y) for t, y in zip(got, labels)), len(labels)) if got else "—")
        rows.append(row)
    return rows


@dataclass
class Phone:
    answered_s: float  # file chosen -> every answer drawn
    named_s: float  # breed clicked in the list -> the page says the board has it
    answers: int
    exceptions: int
    camera_toggle: bool  # the page offered the in-page camera


async def phone(browser, url: str, photo: Photo, answers: int, timeout_s: float, focus: asyncio.Lock,
                share: bool = False) -> Phone:
    """One student: open the Live page, upload the photo, name its breed (and, with `share`,
    tick "Show my photo on the board")."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    from labcore.settings import breed_name

    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    page.set_default_timeout(timeout_s * 1000)
    try:
        await page.goto(url)
        await page.get_by_role("heading", name="Live inference").wait_for()
        await page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
        upload = await load.upload(page, photo.path, answers)
        # Counted once a toggle is drawn (Grad-CAM's, under the answers): a camera toggle would be there by then.
        await appeared(page.get_by_test_id("stCheckbox").first, WIDGET_CODE_WAIT_S)
        camera = await page.get_by_text(CAMERA).count() > 0
        # The phones share one headless browser, where a page that takes the focus (a click) closes another's
        # open list (a blur): they name their breeds one at a time. Real phones do not share a focus.
        # Another page's upload can still take the focus and close this list (seen with tiny models,
        # whose uploads end while others name their breeds): then the list is opened again.
        async with focus:
            question = page.get_by_test_id("stSelectbox").filter(has_text=QUESTION)
            option = page.get_by_role("option", name=breed_name(photo.label), exact=True)
            for attempt in range(1, NAMING_ATTEMPTS + 1):
                await page.bring_to_front()
                await question.click()
                await question.locator("input").fill(breed_name(photo.label))  # narrows the list, as typing does
                start = time.perf_counter()
                try:
                    await option.click(timeout=min(timeout_s, NAMING_WAIT_S) * 1000)
                    break
                except PlaywrightTimeout:
                    if attempt == NAMING_ATTEMPTS:
                        raise
            await page.get_by_text(f"Your pet is on it (breed: {breed_name(photo.label)}).").wait_for()
            named = time.perf_counter() - start
            if share:  # a click takes the focus too
                await page.get_by_text("Show my photo on the board").click()
                await page.get_by_text("Your photo is not shown there").wait_for(state="detached")
        return Phone(upload.seconds, named, upload.answers, upload.exceptions, camera)
    finally:
        await context.close()


async def appeared(locator, timeout_s: float) -> bool:
    """Whether what `locator` finds is on the page within `timeout_s`."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    try:
        await locator.wait_for(state="attached", timeout=timeout_s * 1000)
        return True
    except PlaywrightTimeout:
        return False


async def warm_up(browser, base: str, experiment: str, answers: int, timeout_s: float) -> bool:
    """The presenter's Live page on 127.0.0.1 runs every model on an example (which the board
    does not count), so no phone waits for the models to load; whether it offered the camera."""
    context = await browser.new_context(viewport=PROJECTOR)
    page = await context.new_page()
    page.set_default_timeout(timeout_s * 1000)
    try:
        await page.goto(f"{base}/live?experiment={experiment}")
        await page.get_by_role("heading", name="Live inference").wait_for()
        await page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
        example = page.get_by_role("button", name="test ").first
        name = await example.inner_text()
        camera = await appeared(page.get_by_text(CAMERA), WIDGET_CODE_WAIT_S)
        await example.click()
        await page.wait_for_function(load.DONE_JS, arg=[name.strip(), answers], polling=100)
        return camera
    finally:
        await context.close()


@dataclass
class Board:
    pets_line: str
    rows: list[list[str]]
    draw_s: float  # page opened -> the board drawn with every pet
    controls: bool  # the reset button was drawn


async def read_board(browser, base: str, experiment: str, pets: int, timeout_s: float) -> Board:
    """The board slide as a browser at `base` sees it, once it counts `pets`; its rows: the
    breed-accuracy table's (none where the board has none)."""
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    context = await browser.new_context(viewport=PROJECTOR)
    page = await context.new_page()
    page.set_default_timeout(timeout_s * 1000)
    try:
        start = time.perf_counter()
        await page.goto(f"{base}/present?experiment={experiment}&slide=99")
        line = f"{pets} pet{'s' if pets != 1 else ''} on the board"
        await page.get_by_role("heading", name=line).wait_for()
        await page.get_by_role("button", name="Download the tally (CSV, no photos)").wait_for()  # drawn last
        draw = time.perf_counter() - start
        # The tables can come after the button the script draws last: wait for the accuracy
        # table itself, for a bounded time, then read what is there.
        table = page.get_by_test_id("stColumn").filter(has_text=ACCURACY_HEADING).get_by_test_id("stTable")
        try:
            await table.locator("tr").first.wait_for(timeout=WIDGET_CODE_WAIT_S * 1000)
            rows = await table.evaluate(BOARD_ROWS_JS)
        except PlaywrightTimeout:
            rows = []
        # Counted once the slide's Back button is drawn: a reset button would be there by then.
        await appeared(page.get_by_role("button", name="Back"), WIDGET_CODE_WAIT_S)
        controls = await page.get_by_role("button", name="Reset the board").count() > 0
        return Board(line, rows, draw, controls)
    finally:
        await context.close()


@dataclass
class ClassRun:
    phones: list[Phone]
    board: Board
    expected: list[list[str]]
    visitor_controls: bool  # a phone's view of the board had the reset button
    presenter_camera: bool  # the presenter's Live page (localhost) offered the in-page camera
    upload_cpu_s: float | None = None
    load_average: tuple[float, float] = (0.0, 0.0)
    wall_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not self.errors


async def run_class(server: load.Server, live: str, phone_base: str, experiment: str, photos: Sequence[Photo],
                    expected: list[list[str]], answers: int = 6, timeout_s: float = 300, shared: int = 0) -> ClassRun:
    """Every phone at once, then the board as the presenter and as a visitor see it."""
    from playwright.async_api import async_playwright

    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=load.CHROMIUM, args=load.CHROMIUM_ARGS)
        try:
            camera = await warm_up(browser, server.url, experiment, answers, timeout_s)
            cpu0, _ = load._stats(server)
            focus = asyncio.Lock()
            phones = await asyncio.gather(*(phone(browser, live, photo, answers, timeout_s, focus, n < shared)
                                            for n, photo in enumerate(photos)))
            cpu1, _ = load._stats(server)
            board = await read_board(browser, server.url, experiment, len(photos), timeout_s)
            visitor = await read_board(browser, phone_base, experiment, len(photos), timeout_s)
        finally:
            await browser.close()
    result = ClassRun(list(phones), board, expected, visitor.controls, camera, load._minus(cpu1, cpu0),
                      (load_start, os.getloadavg()[0]), time.perf_counter() - started)
    body = [r for r in board.rows[1:]]
    if body != expected:
        result.errors.append(f"the board's accuracy table {body} differs from the direct computation {expected}")
    if visitor.controls or not board.controls:
        result.errors.append(f"the reset button must be the presenter's only (presenter: {board.controls}, "
                             f"visitor: {visitor.controls})")
    if any(p.exceptions or p.answers < answers for p in phones):
        result.errors.append("a phone got an exception or too few answers")
    if any(p.camera_toggle for p in phones) or not camera:
        result.errors.append("the in-page camera must be offered on localhost and not to a phone on plain http")
    return result


def report(result: ClassRun, sessions: int) -> str:
    answered = sorted(p.answered_s for p in result.phones)
    named = sorted(p.named_s for p in result.phones)
    lines = [f"{sessions} phones, all at once: answers drawn after median {load.percentile(answered, 50):.1f} s, "
             f"slowest {answered[-1]:.1f} s; breed on the board after median {load.percentile(named, 50):.1f} s, "
             f"slowest {named[-1]:.1f} s; whole run {result.wall_s:.0f} s",
             "server CPU for the uploads and answers: "
             + (f"{result.upload_cpu_s:.1f} s ({result.upload_cpu_s / sessions:.2f} s a phone)"
                if result.upload_cpu_s is not None else "unknown (no pid)")
             + f"; load average {result.load_average[0]:.1f} -> {result.load_average[1]:.1f}",
             f"board: {result.board.pets_line!r}, drawn {result.board.draw_s:.1f} s after the page was opened",
             "board's accuracy table / direct computation:"]
    lines += [f"  {' | '.join(got)}\n  {' | '.join(want)}" for got, want in zip(result.board.rows[1:], result.expected)]
    lines.append("AGREE" if result.agrees else "DISAGREE: " + "; ".join(result.errors))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", type=Path, required=True, help="the runs root the app serves")
    parser.add_argument("--experiment", default="demo")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--url", help="a server already running on this machine (its 127.0.0.1 address)")
    parser.add_argument("--pid", type=int, help="that server's process, for its CPU-seconds")
    parser.add_argument("--slice", type=Path, default=load.SHARED_PETS, help="the real slice (original layout)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds any one wait may take")
    parser.add_argument("--share-photos", type=int, default=0, metavar="K",
                        help="the first K phones also put their photo on the board (opt-in)")
    args = parser.parse_args(argv)
    address = own_network_address()
    if address is None:
        print("class_run: this machine has no network address besides loopback", file=sys.stderr)
        return 2
    if not (args.slice / "annotations" / "test.txt").is_file():
        print(f"class_run: no real slice at {args.slice}", file=sys.stderr)
        return 2
    photos = class_photos(args.slice, args.sessions)
    expected = expected_rows(direct_top5(args.runs_dir, args.experiment, photos), [p.label for p in photos])
    with contextlib.ExitStack() as stack:
        if args.url:
            if not args.url.startswith(("http://127.0.0.1:", "http://localhost:")):
                print("class_run: --url must be a server on this machine (http://127.0.0.1:PORT)", file=sys.stderr)
                return 2
            server, port = load.Server(args.url.rstrip("/"), args.pid), int(args.url.rsplit(":", 1)[1].strip("/"))
        else:
            server, port = stack.enter_context(serve_class(args.runs_dir))
        phone_base = f"http://{address}:{port}"
        live = f"{phone_base}/live?experiment={args.experiment}"
        result = asyncio.run(run_class(server, live, phone_base, args.experiment, photos, expected,
                                       timeout_s=args.timeout, shared=args.share_photos))
    print(report(result, len(photos)))
    return 0 if result.agrees else 1


if __name__ == "__main__":
    sys.exit(main())
