"""A lecture hall on one laptop: N sessions upload N photos to the live page at the same moment,
each a light client that speaks Streamlit's own protocol instead of driving a browser.

    python scripts/lecture.py --runs-dir runs --experiment demo --sessions 30 60 100
    python scripts/lecture.py --runs-dir runs --sessions 10 --app-root /tmp/before-src   # older code, same way

A headless browser context costs 50-100 MB and real CPU per session, so 100 of them on the
serving machine measure the browsers more than the server (scripts/load.py, which stays for the
browser-based check). Each session here is one websocket to `/_stcore/stream` carrying the
protobuf messages a browser's Streamlit client sends and receives (`BackMsg`, `ForwardMsg`, from
`streamlit.proto`), and plain HTTP for what a browser fetches besides: the XSRF cookie
(`/_stcore/health`), the photo (`PUT /_stcore/upload_file/...`, after the `file_urls_request`
a browser's uploader sends) and every image the page draws (`/media/...`). Like a browser tab it
opens the live page (`rerun_script` with the page's name and the experiment in the query),
answers the server's `auto_rerun` requests (the training-status fragment's polls) while it is
open, and after the upload sends the uploader's widget state in a `rerun_script`. An upload is
answered when its run has finished with one "... · N ms" caption per model and every image of
that run has been fetched: all the models' results reached the client. Static files (the
page's JavaScript) are not fetched: a browser caches them after its first visit.

For each N the script serves the app afresh (`streamlit run app.py` on 127.0.0.1, a free port),
uploads one warm-up photo in a session of its own (the models load), opens the N sessions, and
has all N upload a different photo at once. Printed side by side per N: answered / sessions,
errors, median and p95 seconds from upload to the last answer, the server's CPU-seconds
(utime + stime of all its threads, /proc/<pid>/stat) per page load and per upload, that against
the models' batch-of-one compiled forward passes on the same photos (timed in this process at
the end), the server's resident memory before and after, the sessions that were told
"queued: n ahead", and this client's own share of the machine's cores during the uploads.
With `--classes K` the same server then takes K-1 more classes, each uploading photos of its own
(a new class, not the same photos again): the memory after each says whether what a class leaves
behind is a ceiling the next one reuses, or grows with every class.

Traffic goes only to the server this script starts on 127.0.0.1; every wait is bounded (--timeout).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402  (scripts/load.py: serving, photos, process figures, the forward floor)

ANSWER = re.compile(r"\d+ ms$")  # the caption under each model's answer ends with its time
QUEUED = re.compile(r"^queued: (\d+) ahead$")
PAGE = "live"
SETTLE_S = 5.0  # after the class has left: the server's batches trimmed (labcore.show.batcher), sessions gone


# --------------------------------------------------------------------------- one session

@dataclass
class Outcome:
    seconds: float | None = None  # upload started until the last answer's image arrived; None: not answered
    answers: int = 0
    images: int = 0
    error: str | None = None
    queued_max: int = 0  # the most "ahead" a "queued: n ahead" line said to this session
    polls: int = 0  # fragment reruns (the status polls) this session answered


class Session:
    """One visitor's tab: a websocket carrying Streamlit's messages, plus HTTP for the rest."""

    def __init__(self, url: str, experiment: str | None, http: ThreadPoolExecutor, timeout: float) -> None:
        self.url, self.http, self.timeout = url, http, timeout
        self.query = f"experiment={quote(experiment)}" if experiment else ""
        self.ws = None
        self.xsrf = ""
        self.session_id = ""
        self.page_hash = ""
        self.uploader_id: str | None = None
        self.widget_states: list = []
        self.elements: dict[tuple, object] = {}  # delta path -> Element, as the page is drawn now
        self.finished: asyncio.Queue = asyncio.Queue()  # the status of each run that finished
        self.file_urls: dict[str, object] = {}  # request id -> FileURLsResponse
        self.auto_reruns: dict[str, float] = {}  # fragment id -> interval
        self.running = False
        self.outcome = Outcome()
        self.tasks: list[asyncio.Task] = []

    async def _fetch(self, request: urllib.request.Request) -> tuple[int, bytes, dict[str, str]]:
        def go():
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return reply.status, reply.read(), {k.lower(): v for k, v in reply.headers.items()}
        return await asyncio.get_running_loop().run_in_executor(self.http, go)

    async def open(self) -> None:
        """Open the live page as a browser does: the XSRF cookie, the websocket, the first run."""
        from websockets.asyncio.client import connect

        _, _, headers = await self._fetch(urllib.request.Request(f"{self.url}/_stcore/health"))
        cookie = headers.get("set-cookie", "")
        self.xsrf = cookie.split("_streamlit_xsrf=", 1)[1].split(";", 1)[0] if "_streamlit_xsrf=" in cookie else ""
        self.ws = await connect(self.url.replace("http://", "ws://") + "/_stcore/stream", subprotocols=["streamlit"],
                                max_size=None, open_timeout=self.timeout, ping_interval=None)
        self.tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._poll())]
        if await self.run() != 0 or self.uploader_id is None:
            raise RuntimeError("the live page drew no file uploader")

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.ws is not None:
            await self.ws.close()

    async def send_rerun(self, fragment_id: str = "") -> None:
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        state = msg.rerun_script
        state.query_string, state.page_name, state.page_script_hash = self.query, PAGE, self.page_hash
        state.widget_states.widgets.extend(self.widget_states)
        if fragment_id:
            state.fragment_id, state.is_auto_rerun = fragment_id, True
        self.running = True
        await self.ws.send(msg.SerializeToString())

    async def run(self) -> int:
        """Rerun the whole page and wait for that run to finish (a status poll's fragment run
        may finish meanwhile); its status (0: done, 1: the script does not compile)."""
        while not self.finished.empty():
            self.finished.get_nowait()
        await self.send_rerun()
        while True:
            status = await asyncio.wait_for(self.finished.get(), self.timeout)
            if status in (0, 1):
                return status

    async def _read(self) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        async for data in self.ws:
            msg = ForwardMsg()
            msg.ParseFromString(data)
            kind = msg.WhichOneof("type")
            if kind == "new_session":  # a run starts: a whole page's redraws it from nothing
                self.session_id = msg.new_session.initialize.session_id or self.session_id
                if not msg.metadata.run.fragment_ids:
                    self.elements = {}
            elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                self.elements[tuple(msg.metadata.delta_path)] = element
                if element.WhichOneof("type") == "file_uploader":
                    self.uploader_id = element.file_uploader.id
                elif element.WhichOneof("type") == "markdown" and (queued := QUEUED.match(element.markdown.body)):
                    self.outcome.queued_max = max(self.outcome.queued_max, int(queued.group(1)))
            elif kind == "navigation":  # st.navigation's pages: the live page's hash, for later runs
                self.page_hash = next((p.page_script_hash for p in msg.navigation.app_pages
                                       if p.url_pathname == PAGE), self.page_hash)
            elif kind == "auto_rerun":
                self.auto_reruns[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
            elif kind == "file_urls_response":
                self.file_urls[msg.file_urls_response.response_id] = msg.file_urls_response
            elif kind == "script_finished":
                self.running = False
                self.finished.put_nowait(msg.script_finished)

    async def _poll(self) -> None:
        """The status fragment's polls, as a browser sends them: each fragment the server asked
        to rerun every `interval` s, whenever no run is under way."""
        due: dict[str, float] = {}
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for fragment, interval in list(self.auto_reruns.items()):
                due.setdefault(fragment, now + interval)
                if now >= due[fragment] and not self.running:
                    due[fragment] = now + interval
                    self.outcome.polls += 1
                    await self.send_rerun(fragment)

    def shown(self) -> tuple[list[str], list[str], list[str]]:
        """The page as drawn: its captions, image URLs, and error or exception texts."""
        captions, images, errors = [], [], []
        for element in self.elements.values():
            kind = element.WhichOneof("type")
            if kind == "markdown":
                captions.append(element.markdown.body.strip())
            elif kind == "imgs":
                images += [image.url for image in element.imgs.imgs]
            elif kind == "exception":
                errors.append(f"exception: {element.exception.type}")
            elif kind == "alert" and element.alert.format == element.alert.ERROR:
                errors.append(re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", element.alert.body.strip()))  # markdown escapes undone
        return captions, images, errors

    async def upload(self, photo: Path, answers: int) -> Outcome:
        """Send the photo through the uploader and wait for every model's answer and image."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        start = time.perf_counter()
        try:
            request_id = str(uuid.uuid4())
            ask = BackMsg()
            ask.file_urls_request.request_id, ask.file_urls_request.session_id = request_id, self.session_id
            ask.file_urls_request.file_names.append(photo.name)
            await self.ws.send(ask.SerializeToString())
            deadline = time.monotonic() + self.timeout
            while request_id not in self.file_urls:
                if time.monotonic() > deadline:
                    raise TimeoutError("no upload URL")
                await asyncio.sleep(0.02)
            urls = self.file_urls[request_id].file_urls[0]
            await self._put(urls.upload_url, photo)
            state = WidgetState(id=self.uploader_id)
            info = state.file_uploader_state_value.uploaded_file_info.add()
            info.name, info.size, info.file_id = photo.name, photo.stat().st_size, urls.file_id
            info.file_urls.CopyFrom(urls)
            self.widget_states = [state]
            if await self.run() != 0:
                raise RuntimeError("the page's script did not compile")
            captions, images, errors = self.shown()
            self.outcome.answers = sum(bool(ANSWER.search(c)) for c in captions)
            if errors or self.outcome.answers < answers:
                raise RuntimeError("; ".join(errors) or f"{self.outcome.answers} answers of {answers}")
            for url in images:  # as the browser fetches them: the answers are pictures
                _, picture, _ = await self._fetch(urllib.request.Request(self.url + url if url.startswith("/") else url))
                self.outcome.images += bool(picture)
            if self.outcome.images < answers:
                raise RuntimeError(f"{self.outcome.images} pictures of {answers} arrived")
            self.outcome.seconds = time.perf_counter() - start
        except Exception as err:  # noqa: BLE001 - a failed session is counted, with its reason
            self.outcome.error = f"{type(err).__name__}: {err}"[:300]
        return self.outcome

    async def _put(self, path: str, photo: Path) -> None:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{photo.name}\"\r\n"
                "Content-Type: image/jpeg\r\n\r\n").encode() + photo.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        request = urllib.request.Request(self.url + path if path.startswith("/") else path, data=body, method="PUT",
                                         headers={"Content-Type": f"multipart/form-data; boundary={boundary}",
                                                  "X-Xsrftoken": self.xsrf, "Cookie": f"_streamlit_xsrf={self.xsrf}"})
        status, _, _ = await self._fetch(request)
        if status not in (200, 204):
            raise RuntimeError(f"upload refused: HTTP {status}")


# --------------------------------------------------------------------------- a class at once

@dataclass
class Round:
    sessions: int
    outcomes: list[Outcome]
    page_load_cpu_s: float
    upload_cpu_s: float
    rss_start_mb: float  # the server before any session (no model loaded)
    rss_before_mb: float  # after the warm-up upload, before the N sessions
    rss_after_mb: float  # after the N uploads, the sessions still open
    client_cpu_s: float  # this script's CPU during the uploads
    upload_wall_s: float
    load_average: tuple[float, float]
    rss_settled_mb: float = 0.0  # SETTLE_S after the sessions closed: what the class leaves behind
    class_number: int = 1  # the how-many-th class this server saw (--classes)

    @property
    def answered(self) -> list[float]:
        return [o.seconds for o in self.outcomes if o.seconds is not None]

    @property
    def cpu_per_upload_s(self) -> float:
        return self.upload_cpu_s / self.sessions

    @property
    def client_share(self) -> float:
        """This client's CPU during the uploads, as a share of every core of the machine."""
        return self.client_cpu_s / (self.upload_wall_s * (os.cpu_count() or 1))


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def lecture(server: load.Server, experiment: str | None, photos: list[Path], warmup: Path, answers: int,
                  timeout: float) -> Round:
    """The warm-up upload, then N sessions opened, then N uploads at the same moment."""
    load_start = os.getloadavg()[0]
    with ThreadPoolExecutor(max_workers=max(8, 2 * len(photos))) as http:
        _, rss_start = load.process_stats(server.pid)
        first = Session(server.url, experiment, http, timeout)
        await first.open()
        await first.upload(warmup, answers)  # a failure here shows again in every session
        await first.close()
        cpu0, rss_before = load.process_stats(server.pid)
        sessions = [Session(server.url, experiment, http, timeout) for _ in photos]
        await asyncio.gather(*(s.open() for s in sessions))
        cpu1, _ = load.process_stats(server.pid)
        client0, start = own_cpu_seconds(), time.perf_counter()
        outcomes = await asyncio.gather(*(s.upload(p, answers) for s, p in zip(sessions, photos)))
        wall, client = time.perf_counter() - start, own_cpu_seconds() - client0
        cpu2, rss_after = load.process_stats(server.pid)
        await asyncio.gather(*(s.close() for s in sessions))
        await asyncio.sleep(SETTLE_S)
        _, rss_settled = load.process_stats(server.pid)
    return Round(len(photos), list(outcomes), cpu1 - cpu0, cpu2 - cpu1, rss_start, rss_before, rss_after, client,
                 wall, (load_start, os.getloadavg()[0]), rss_settled)


def row(r: Round, forward_s: float | None) -> dict[str, str]:
    """One round's figures, as the printed table shows them."""
    done = r.answered
    errors = [o.error for o in r.outcomes if o.error]
    queued = [o.queued_max for o in r.outcomes if o.queued_max]
    return {
        "sessions": str(r.sessions) + (f" (class {r.class_number})" if r.class_number > 1 else ""),
        "answered": f"{len(done)}/{r.sessions}",
        "errors": str(len(errors)),
        "median s": f"{statistics.median(done):.2f}" if done else "-",
        "p95 s": f"{load.percentile(done, 95):.2f}" if done else "-",
        "max s": f"{max(done):.2f}" if done else "-",
        "CPU-s / page load": f"{r.page_load_cpu_s / r.sessions:.3f}",
        "CPU-s / upload": f"{r.cpu_per_upload_s:.3f}",
        "/ forwards": f"{r.cpu_per_upload_s / forward_s:.2f}x" if forward_s else "-",
        "RSS MB before -> after": f"{r.rss_before_mb:.0f} -> {r.rss_after_mb:.0f} (+{r.rss_after_mb - r.rss_before_mb:.0f})",
        "settled": f"+{r.rss_settled_mb - r.rss_before_mb:.0f}",
        "told queued (most ahead)": f"{len(queued)} ({max(queued, default=0)})",
        "client share of cores": f"{r.client_share:.0%}",
        "load avg": f"{r.load_average[0]:.1f} -> {r.load_average[1]:.1f}",
    }


def report(rounds: list[Round], forward: tuple[float, int, list[int]] | None, experiment: str) -> str:
    forward_s = forward[0] if forward else None
    rows = [row(r, forward_s) for r in rounds]
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    lines = [f"experiment {experiment}; server RSS before any session: {rounds[0].rss_start_mb:.0f} MB"]
    if forward:
        lines.append(f"the {forward[1]} models' batch-of-one compiled forward passes on these photos "
                     f"({'/'.join(map(str, forward[2]))} px, this process): {forward[0]:.3f} CPU-s per photo")
    lines.append("  ".join(c.ljust(widths[c]) for c in columns))
    lines.append("  ".join("-" * widths[c] for c in columns))
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
    for r in rounds:
        for o in r.outcomes:
            if o.error:
                lines.append(f"  {r.sessions} sessions, failed: {o.error}")
                break
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load.add_server_arguments(parser)
    parser.add_argument("--sessions", type=int, nargs="+", default=[30], help="sessions uploading at once, per round")
    parser.add_argument("--classes", type=int, default=1,
                        help="classes served one after another by the same server, each with photos of its "
                             "own: whether the memory a class leaves behind is a ceiling or grows with each")
    parser.add_argument("--app-root", type=Path, default=load.ROOT,
                        help="the checkout whose app.py is served (e.g. an older one, for before figures)")
    args = parser.parse_args(argv)
    if args.classes < 1:
        parser.error("--classes must be at least 1")
    experiment, runs = load.experiment_runs(args.runs_dir, args.experiment)
    env = dict(item.split("=", 1) for item in args.env)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        photos = load.make_photos(max(args.sessions) * args.classes + 1, Path(tmp))
        warmup, photos = photos[-1], photos[:-1]
        for count in args.sessions:
            with load.serve(args.runs_dir, env, app_root=args.app_root) as server:
                for number in range(1, args.classes + 1):
                    own = photos[(number - 1) * count:number * count]
                    got = asyncio.run(lecture(server, experiment, own, warmup, len(runs), args.timeout))
                    rounds.append(replace(got, class_number=number))
                    print(f"[lecture] {count} sessions, class {number}: {len(got.answered)} answered",
                          file=sys.stderr, flush=True)
        forward = None if args.no_forward else load.forward_cpu_seconds(runs, photos[:10])
    print(report(rounds, forward, experiment))
    if args.json:
        args.json.write_text(json.dumps({"experiment": experiment, "models": len(runs), "app_root": str(args.app_root),
                                         "forward_cpu_s": forward and forward[0], "cores": os.cpu_count(),
                                         "rounds": [{**asdict(r), "cpu_per_upload_s": r.cpu_per_upload_s,
                                                     "client_share": r.client_share} for r in rounds]}, indent=2))
    return 0 if all(len(r.answered) == r.sessions for r in rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
