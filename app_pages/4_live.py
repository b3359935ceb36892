"""Live inference: a photo (upload, camera or example) through every model at once."""
import io

import streamlit as st
from PIL import Image, ImageOps

import ui
from labcore.data import test_indices
from labcore.examples import showcase
from labcore.experiments import Experiment, synthetic_warning
from labcore.images import MAX_UPLOAD_MB, ImageError, load_image
from labcore.inference import Prediction
from labcore.plots import overlay
from labcore.runs import Run
from labcore.settings import breed_name, settings_from_dict

SHOW_WIDTH = 420


EXAMPLES = 4


def example_files(experiment: Experiment) -> dict[str, bytes]:
    """Example pictures from the experiment's own test split (photos for real-data experiments,
    drawn pets for synthetic ones); none where its data is not on this machine."""
    settings = settings_from_dict(experiment.settings)
    source = ui.source_or_none(settings)
    if source is None:
        return {}
    labels = source.labels["test"]
    chosen = showcase(labels[test_indices(labels, settings)], EXAMPLES)
    indices = tuple(int(test_indices(labels, settings)[k]) for k in chosen)
    return _encoded(source, ui.source_key(settings), indices)


@st.cache_data(show_spinner=False, max_entries=8)
def _encoded(_source, source_key: str, indices: tuple[int, ...]) -> dict[str, bytes]:
    files = {}
    for index, example in zip(indices, ui.examples(_source, source_key, "test", indices)):
        buffer = io.BytesIO()
        Image.fromarray(example["image"]).save(buffer, format="PNG")
        files[f"test {index}: {breed_name(int(example['label']))}"] = buffer.getvalue()
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
    files = example_files(ui.current_experiment())
    chosen = examples_ui(files)
    return (files[chosen], chosen) if chosen in files else None


def examples_ui(files: dict[str, bytes]) -> str | None:
    """Clickable example thumbnails; returns the chosen example's name."""
    if not files:
        return None
    st.markdown("**No photo at hand? Click an example from this experiment's test split.**")
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
    if run.config.get("dataset", {}).get("source") == "synthetic":
        st.caption(":material/warning: learned drawn pets, not photos")
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
if any(r.config.get("dataset", {}).get("source") == "synthetic" for r in runs):
    st.warning(synthetic_warning(ui.current_experiment().name), icon=":material/warning:")
opacity = st.slider("Mask opacity", 0.0, 1.0, 0.45, 0.05, key="live_opacity")
st.caption("Red: predicted head box and mask. Every model sees the whole photo squeezed to its square input.")
for row_start in range(0, len(runs), 3):
    for column, run in zip(st.columns(3), runs[row_start:row_start + 3]):
        with column:
            predictor = ui.predictor(run)
            if predictor is not None:
                draw_prediction(run, predictor.predict(loaded.image), loaded.image, opacity)
