"""Compare predictions: the same test images through two runs, side by side."""
import numpy as np
import streamlit as st
from PIL import Image

from ui import caches, display, experiments, pickers
from labcore.show.examples import (disagreement, most_different, of_breed, pick_random, predict_images, scores,
                              settings_from_config)
from labcore.show.gradcam import cam_caption, gradcam_overlay
from labcore.show.inference import Prediction
from labcore.show.plots import overlay
from labcore.store.runs import Run
from labcore.settings import breed_name
from labcore.store.showcase import ShownImages

POOL = 96  # test images scored per pair; "disagree most" searches these
SHOW_WIDTH = 360


def data_ui(run: Run) -> ShownImages | None:
    """The test images of the run's experiment: its data where this machine has it, else the
    showcase stored with it (never another source: the models learned this data)."""
    return caches.experiment_images(run.path.parent, settings_from_config(run.config))


def pick_ui(labels: np.ndarray, pool: list[int]) -> tuple[str, int, int | None, float]:
    """How to pick and show images: (mode, how many, breed or None, mask opacity)."""
    cols = st.columns([3, 2, 2, 1.5])
    mode = cols[0].radio("Pick images", ["at random", "by breed", "where the two runs disagree most"],
                         horizontal=True, key="cmp_mode")
    count = cols[1].slider("How many", 1, 8, 4, key="cmp_count")
    opacity = cols[2].slider("Mask opacity", 0.0, 1.0, 0.45, 0.05, key="cmp_opacity")
    breed = None
    if mode == "by breed":
        breeds = sorted({int(labels[i]) for i in pool})
        breed = st.selectbox("Breed", breeds, format_func=breed_name, key="cmp_breed")
    if mode != "where the two runs disagree most" and cols[3].button("New pick", icon=":material/casino:"):
        st.session_state["cmp_seed"] = st.session_state.get("cmp_seed", 0) + 1
    return mode, count, breed, opacity


@st.cache_data(show_spinner="Running the model on the test images…", max_entries=8)
def pool_predictions(run_path: str, mtime: int, source_key: str, indices: tuple[int, ...],
                     _run: Run, _images: list[np.ndarray]) -> list[Prediction] | None:
    predictor = caches.predictor(_run)
    return predict_images(predictor, _images) if predictor else None


def draw_prediction(run: Run, pred: Prediction, example: dict, opacity: float, name: str) -> None:
    """One run's view of one image: the overlay, then its top-5 and per-image scores beside it."""
    has_box = float(example["has_box"]) > 0.5
    picture = overlay(example["image"], pred_mask=pred.mask, pred_box=pred.box, opacity=opacity, width=SHOW_WIDTH,
                      true_mask=example["mask"] if pred.mask is not None else None,
                      true_box=example["bbox"] if has_box and pred.box is not None else None)
    left, right = st.columns([3, 2])
    left.image(picture)
    right.markdown(f"**{display.escape(name)}**")
    score = scores(pred, example)
    if "mask_iou" in score:
        right.markdown(f"mask IoU **{score['mask_iou']:.2f}**")
    if "box_iou" in score:
        right.markdown(f"box IoU **{score['box_iou']:.2f}**" if score["box_iou"] is not None
                       else "no head box in the test split")
    if pred.top5:
        truth = int(example["label"])
        tick = " :green[:material/check_circle:]"
        right.markdown("\n".join(f"{n}. {breed_name(k)} {p:.0%}" + (tick if k == truth else "")
                                  for n, (k, p) in enumerate(pred.top5, 1)))


def draw_gradcam(run: Run, example: dict) -> None:
    got = gradcam_overlay(caches.predictor(run), Image.fromarray(example["image"]), width=SHOW_WIDTH)
    if got:  # as wide as the prediction's picture above it
        st.columns([3, 2])[0].image(got.picture, caption=cam_caption(run.run_id, got.seconds, got.empty))


st.title("Compare predictions")
runs = [r for r in experiments.runs_or_stop() if r.has_model]
if not runs:
    st.info("No run in the store has a model.keras to predict with.")
    st.stop()
run_a, run_b = pickers.preset_pair_picker(runs, key="cmp")
pair = [r for r in (run_a, run_b) if r is not None]
experiments.other_provenance(pair)
images = data_ui(run_a)
if images is None:
    st.stop()
settings = settings_from_config(run_a.config)
source = images.source
across = run_b is not None and run_b.experiment != run_a.experiment
names = {r.key: (r.long_label if across else r.label) for r in pair}
if run_b is not None and caches.source_key(settings_from_config(run_b.config)) != caches.source_key(settings):
    st.caption(f"The two runs learned from different data; both predict on the test images of "
               f"{display.escape(names[run_a.key])}'s data, each at its own input size.")
pool = images.pool[:POOL]
pool_examples = caches.examples(source, images.key, "test", tuple(pool))
preds = {}
for run in pair:
    got = pool_predictions(str(run.path), run.model_path.stat().st_mtime_ns, images.key,
                           tuple(pool), run, [ex["image"] for ex in pool_examples])
    if got is None:
        st.stop()
    preds[run.key] = got

labels = source.labels["test"]
mode, count, breed, opacity = pick_ui(labels, pool)
breed_heads = any(p.top5 is not None for got in preds.values() for p in got[:1])
show_cam = breed_heads and st.toggle("Grad-CAM heat maps", key="cmp_gradcam",
                                     help="Where each breed head looked for its top breed (red = most)")
position = {index: k for k, index in enumerate(pool)}
if mode == "by breed":
    chosen = pick_random(of_breed(pool, labels, breed), count, st.session_state.get("cmp_seed", 0))
elif mode == "at random" or run_b is None:
    chosen = pick_random(pool, count, st.session_state.get("cmp_seed", 0))
else:
    diffs = [disagreement(a, b) for a, b in zip(preds[run_a.key], preds[run_b.key])]
    if all(d is None for d in diffs):
        st.caption("These two runs share no output to disagree on; showing a random pick.")
    chosen = most_different(pool, diffs, count)
st.caption(f"{display.escape(images.caption)} · {len(pool)} images scored. Green: truth (mask outline, "
           "head box); red: prediction.")
for index in chosen:
    example = pool_examples[position[index]]
    st.subheader(f"Test image {index}: {breed_name(int(example['label']))}")
    for column, run in zip(st.columns(len(pair), gap="large"), pair):
        with column:
            draw_prediction(run, preds[run.key][position[index]], example, opacity, names[run.key])
            if show_cam and preds[run.key][position[index]].top5 is not None:
                draw_gradcam(run, example)
