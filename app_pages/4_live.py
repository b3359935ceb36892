"""Live inference: a photo (upload, camera or example) through every model at once.

A lecture hall may use it at once on one laptop, so each upload costs the server little beyond
the forward passes: the photo is decoded once, in one of a few decode slots, into what is shown
(display size) and what the models take (their input size), and the upload's bytes are let go
(`ui.uploads`); each model's queue runs the photos that arrive together as one batch
(`labcore.show.batcher`), and a page waiting behind others says "queued: n ahead"
(`ui.queueing`); predictions and Grad-CAM maps are cached per (model file, photo), so a rerun
that changes nothing, or the opacity slider, runs no model; overlays are drawn at display size
and sent as JPEG; the examples and their thumbnails are made once per process.
"""
import io
from concurrent.futures import Future

import streamlit as st
from PIL import Image, ImageOps

from ui import board, caches, display, experiments, presenter, queueing, uploads
from labcore.show.examples import one_per_breed
from labcore.store.experiments import Experiment, synthetic_warning
from labcore.show.gradcam import cam_caption, gradcam_on
from labcore.data.images import DECODES, MAX_UPLOAD_MB, UPLOAD_EXTENSIONS, ImageError, Photo, prepare_photo
from labcore.show.inference import Prediction, Predictor
from labcore.show.plots import overlay
from labcore.store.runs import Run
from labcore.settings import breed_name, settings_from_dict

SHOW_WIDTH = 420
THUMB_SIZE = (160, 160)
JPEG_QUALITY = 85
# Shared by all sessions: a lecture hall of 100, with room. Each holds a display-size picture
# and the model inputs (about 0.5 MB), and stands in for its upload's bytes once they are let go.
CACHED_PHOTOS = 128
EXAMPLES = 4


# --------------------------------------------------------------------------- cached work

def example_files(experiment: Experiment) -> tuple[dict[str, tuple[bytes, bytes]], str]:
    """Example pictures from the experiment's own test split (photos for real-data experiments,
    drawn pets for synthetic ones; the showcase stored with it where its data is not on this
    machine), by name: (the picture as PNG, its thumbnail as JPEG); and where they come from."""
    images = caches.experiment_images(experiment.path, settings_from_dict(experiment.settings))
    if images is None:
        return {}, ""
    labels = images.source.labels["test"]
    pool = images.pool
    indices = tuple(int(pool[k]) for k in one_per_breed(labels[pool], EXAMPLES))
    return _encoded(images.source, images.key, indices), images.caption


@st.cache_data(show_spinner=False, max_entries=8)
def _encoded(_source, source_key: str, indices: tuple[int, ...]) -> dict[str, tuple[bytes, bytes]]:
    """Made once per process and set of examples."""
    files = {}
    for index, example in zip(indices, caches.examples(_source, source_key, "test", indices)):
        picture = Image.fromarray(example["image"])
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        files[f"test {index}: {breed_name(int(example['label']))}"] = (
            buffer.getvalue(), jpeg(ImageOps.fit(picture, THUMB_SIZE)))
    return files


@st.cache_resource(show_spinner=False, max_entries=CACHED_PHOTOS)
def prepared_photo(digest: str, _data: bytes | None, name: str, sizes: tuple[int, ...]) -> Photo:
    """The photo decoded once, for every session that shows it (raises ImageError); without
    its bytes (let go after decoding), only the one still cached."""
    if _data is None:
        raise ImageError(f"{name} is no longer held by the server (it keeps the last {CACHED_PHOTOS} photos): "
                         "upload it again.")
    return prepare_photo(_data, name, SHOW_WIDTH, sizes)


@st.cache_resource(show_spinner=False, max_entries=CACHED_PHOTOS * 6)
def prediction(model_key: str, digest: str, _predictor: Predictor, _photo: Photo) -> "Future[Prediction]":
    """One model's answer on one photo, asked once per (model file, photo) of the model's queue."""
    return _predictor.submit(_photo.inputs[_predictor.image_size])


@st.cache_data(show_spinner=False, max_entries=CACHED_PHOTOS * 6)
def overlay_jpeg(model_key: str, digest: str, opacity: float, _pred: Prediction, _photo: Photo) -> bytes:
    """The prediction drawn on the display-size photo, as JPEG."""
    return jpeg(overlay(_photo.shown, pred_mask=_pred.mask, pred_box=_pred.box, opacity=opacity))


@st.cache_data(show_spinner=False, max_entries=CACHED_PHOTOS * 6)
def gradcam_jpeg(model_key: str, digest: str, _predictor: Predictor,
                 _photo: Photo) -> tuple[bytes, float, bool] | None:
    """The Grad-CAM of the model's top breed over the display-size photo, as JPEG, its seconds
    and whether the map is empty."""
    got = gradcam_on(_predictor, _photo.inputs[_predictor.image_size], _photo.shown)
    return (jpeg(got.picture), got.seconds, got.empty) if got else None


def jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def model_key(run: Run) -> str:
    """Names one model file as it is now: a retrained run is a new key."""
    return f"{run.model_path}:{run.model_path.stat().st_mtime_ns}"


# --------------------------------------------------------------------------- what the page draws

def photo_ui() -> uploads.Picked | None:
    """The picture to run: camera, upload, or a clicked example."""
    nonce = st.session_state.setdefault("live_nonce", 0)
    left, right = st.columns([3, 2])
    upload = left.file_uploader(f"Take a photo or choose one (up to {MAX_UPLOAD_MB} MB)", type=list(UPLOAD_EXTENSIONS),
                                max_upload_size=MAX_UPLOAD_MB, key=f"live_upload_{nonce}",
                                help="On a phone this opens its camera or its photos.")
    photo = camera_ui(right)
    picked = uploads.pick("camera", photo, "the camera photo") or uploads.pick("upload", upload, upload and upload.name)
    if picked is not None:
        return picked
    files, caption = example_files(experiments.current_experiment())
    chosen = examples_ui(files, caption)
    return uploads.Picked(chosen, uploads.digest_of(files[chosen][0]), files[chosen][0]) if chosen in files else None


def camera_ui(column):
    """The in-page camera, offered only where the browser lets a page use one (https or this
    machine: a phone on plain http gets none, and takes its photo through the uploader)."""
    if not presenter.camera_works_here():
        return None
    if column.toggle("Take a photo with the camera", key="live_camera_on"):
        return column.camera_input("Camera", key="live_camera")
    return None


def examples_ui(files: dict[str, tuple[bytes, bytes]], caption: str) -> str | None:
    """Clickable example thumbnails; returns the chosen example's name."""
    if not files:
        return None
    st.markdown("**No photo at hand? Click an example from this experiment's test split.**")
    st.caption(display.escape(caption))
    names = list(files)
    for row_start in range(0, len(names), 4):
        for column, name in zip(st.columns(4), names[row_start:row_start + 4]):
            column.image(files[name][1], output_format="JPEG")
            if column.button(name, key=f"live_example_{name}", width="stretch"):
                st.session_state["live_example"] = name
                st.session_state["live_nonce"] += 1  # clears the uploader so the example shows
                st.rerun()
    return st.session_state.get("live_example")


def photo_header(photo: Photo, name: str) -> None:
    """The photo's name (as text, whatever it looks like), size and what was done to it."""
    st.markdown(f"**{display.escape(name)}** · {photo.width} × {photo.height} px"
                + "".join(f" · {note}" for note in photo.notes))


def draw_prediction(run: Run, pred: Prediction, photo: Photo, digest: str, opacity: float) -> None:
    """One model's answer: box and mask on the photo, top-5 breeds, time."""
    st.markdown(f"**{display.escape(run.label)}**")
    if run.config.get("dataset", {}).get("source") == "synthetic":
        st.caption(":material/warning: learned drawn pets, not photos")
    st.image(overlay_jpeg(model_key(run), digest, opacity, pred, photo), output_format="JPEG")
    if pred.top5:
        st.markdown("\n".join(f"{n}. {breed_name(k)} — {p:.0%}" for n, (k, p) in enumerate(pred.top5, 1)))
    outputs = [name for name, value in (("breed", pred.top5), ("head box", pred.box), ("mask", pred.mask))
               if value is not None]
    st.caption(f"{', '.join(outputs)} · {pred.seconds * 1000:.0f} ms")


def draw_gradcam(run: Run, predictor: Predictor, photo: Photo, digest: str) -> None:
    got = gradcam_jpeg(model_key(run), digest, predictor, photo)
    if got:
        st.image(got[0], output_format="JPEG", caption=cam_caption(run.run_id, *got[1:]))


def predictions_grid(runs: list[Run], photo: Photo, digest: str, opacity: float,
                     show_cam: bool) -> dict[str, Prediction]:
    """Every model's answer, three to a row; under each breed head, its Grad-CAM when asked.
    Returns the answers by run id."""
    answers = {}
    for row_start in range(0, len(runs), 3):
        for column, run in zip(st.columns(3), runs[row_start:row_start + 3]):
            with column:
                predictor = caches.predictor(run)
                if predictor is None:
                    continue
                asked = prediction(model_key(run), digest, predictor, photo)
                try:
                    pred = queueing.answer(asked, lambda: predictor.queue.ahead(asked))
                except Exception as err:  # noqa: BLE001 - one line for this model; the others go on
                    prediction.clear(model_key(run), digest, predictor, photo)  # asked again next run
                    st.error(display.escape(f"{run.run_id} could not answer this photo ({type(err).__name__}); "
                                            "reload the page to ask it again."))
                    continue
                answers[run.run_id] = pred
                draw_prediction(run, pred, photo, digest, opacity)
                if show_cam and pred.top5 is not None:
                    draw_gradcam(run, predictor, photo, digest)
    return answers


def read_photo(picked: uploads.Picked, runs: list[Run]) -> Photo | None:
    """The prepared photo (its upload's bytes let go), or one error line (the name shown as
    text) and None."""
    try:
        with queueing.saying_queued(DECODES.ahead()):
            photo = prepared_photo(picked.digest, picked.data, picked.name, tuple(sorted({run.image_size for run in runs})))
    except ImageError as err:
        st.error(display.escape(str(err)))
        return None
    uploads.release(picked)
    return photo


# --------------------------------------------------------------------------- the page

st.title("Live inference")
runs = [r for r in experiments.runs_or_stop() if r.has_model]
if not runs:
    st.info("No run in the store has a model.keras to predict with.")
    st.stop()
picked = photo_ui()
if picked is None:
    st.stop()
name, digest, own_photo = picked.name, picked.digest, picked.source is not None
photo = read_photo(picked, runs)
del picked  # the upload's bytes: nothing on this page needs them any more
if photo is None:
    st.stop()
photo_header(photo, name)
if any(r.config.get("dataset", {}).get("source") == "synthetic" for r in runs):
    st.warning(synthetic_warning(display.escape(experiments.current_experiment().name)), icon=":material/warning:")
opacity = st.slider("Mask opacity", 0.0, 1.0, 0.45, 0.05, key="live_opacity")
# Only runs with a breed head have a top breed to explain; with none, the toggle is absent.
breed_heads = [r for r in runs if r.task != "segmentation"]
show_cam = bool(breed_heads) and st.toggle("Grad-CAM heat maps", key="live_gradcam",
                                           help="Where each breed head looked for its top breed (red = most)")
st.caption("Red: predicted head box and mask. Every model sees the whole photo squeezed to its square input.")
answers = predictions_grid(runs, photo, digest, opacity, show_cam)
if own_photo and answers:  # the class's own pets go on the board, not the test split's examples
    board.ask_breed_and_record(experiments.current_experiment(), digest, answers, photo.shown)
