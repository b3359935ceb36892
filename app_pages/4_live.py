"""Live inference: a photo (upload, camera or example) through every model at once."""
import io

import numpy as np
import streamlit as st
from PIL import Image, ImageOps

import ui
from labcore.images import MAX_UPLOAD_MB, ImageError, load_image
from labcore.inference import Prediction
from labcore.plots import overlay
from labcore.runs import Run
from labcore.settings import breed_name
from labcore.sources import draw_pet

SHOW_WIDTH = 420
SYNTHETIC_EXAMPLES = (4, 17, 30, 36)  # drawn examples, one per coat pattern; the first not red like the mask overlay


@st.cache_data(show_spinner=False)
def example_files() -> dict[str, bytes]:
    """Example pictures by name: drawn pets, and real photos where the shared slice exists."""
    files = {}
    rng = np.random.default_rng(7)
    for label in SYNTHETIC_EXAMPLES:
        image, _, _ = draw_pet(label, rng, size=256)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        files[f"drawn {breed_name(label)}"] = buffer.getvalue()
    real = ui.shared_pets()
    if real:
        for path in sorted((real / "images").glob("*.jpg"))[::100][:4]:
            files[path.stem.replace("_", " ")] = path.read_bytes()
    return files


def photo_ui() -> tuple[bytes, str] | None:
    """The picture to run, as (bytes, name): camera, upload, or a clicked example."""
    nonce = st.session_state.setdefault("live_nonce", 0)
    left, right = st.columns([3, 2])
    upload = left.file_uploader(f"Upload a pet photo (up to {MAX_UPLOAD_MB} MB)", type=None,
                                max_upload_size=MAX_UPLOAD_MB, key=f"live_upload_{nonce}")
    photo = None
    if right.toggle("Take a photo with the camera", key="live_camera_on"):
        photo = right.camera_input("Camera", key="live_camera")
    if photo is not None:
        return photo.getvalue(), "the camera photo"
    if upload is not None:
        return upload.getvalue(), upload.name
    chosen = examples_ui()
    return (example_files()[chosen], chosen) if chosen else None


def examples_ui() -> str | None:
    """Clickable example thumbnails; returns the chosen example's name."""
    files = example_files()
    st.markdown("**No photo at hand? Click an example.**")
    for row_start in range(0, len(files), 4):
        names = list(files)[row_start:row_start + 4]
        for column, name in zip(st.columns(4), names):
            column.image(ImageOps.fit(load_image(files[name], name).image, (160, 160)))
            if column.button(name, key=f"live_example_{name}", width="stretch"):
                st.session_state["live_example"] = name
                st.session_state["live_nonce"] += 1  # clears the uploader so the example shows
                st.rerun()
    return st.session_state.get("live_example")


def draw_prediction(run: Run, pred: Prediction, image: Image.Image, opacity: float) -> None:
    """One model's answer: box and mask on the photo, top-5 breeds, time."""
    st.markdown(f"**{run.label}**")
    st.image(overlay(image, pred_mask=pred.mask, pred_box=pred.box, opacity=opacity, width=SHOW_WIDTH))
    if pred.top5:
        st.markdown("\n".join(f"{n}. {breed_name(k)} — {p:.0%}" for n, (k, p) in enumerate(pred.top5, 1)))
    outputs = [name for name, value in (("breed", pred.top5), ("head box", pred.box), ("mask", pred.mask))
               if value is not None]
    st.caption(f"{', '.join(outputs)} · {pred.seconds * 1000:.0f} ms")


st.title("Live inference")
runs = [r for r in ui.runs_or_stop() if r.has_model]
if not runs:
    st.info("No run in the store has a model.keras to predict with.")
    st.stop()
picked = photo_ui()
if picked is None:
    st.stop()
data, name = picked
try:
    loaded = load_image(data, name)
except ImageError as err:
    st.error(str(err))
    st.stop()
st.markdown(f"**{name}** · {loaded.image.width} × {loaded.image.height} px"
            + "".join(f" · {note}" for note in loaded.notes))
opacity = st.slider("Mask opacity", 0.0, 1.0, 0.45, 0.05, key="live_opacity")
st.caption("Red: predicted head box and mask. Every model sees the whole photo squeezed to its square input.")
for row_start in range(0, len(runs), 3):
    for column, run in zip(st.columns(3), runs[row_start:row_start + 3]):
        with column:
            predictor = ui.predictor(run)
            if predictor is not None:
                draw_prediction(run, predictor.predict(loaded.image), loaded.image, opacity)
