"""Dataset: browse a source's images with their box and mask, and its class balance."""
import streamlit as st

from ui import caches, display, experiments
from labcore.data.sources import data_on_this_machine
from labcore.show.examples import pick_random
from labcore.store.experiments import Experiment
from labcore.show.plots import class_balance_figure, overlay
from labcore.settings import Settings, breed_name, settings_from_dict
from labcore.data.sources import Source

DRAWN = Settings(dataset="synthetic", limit=384)
TFDS = Settings(dataset="oxford_iiit_pet")

PER_ROW = 4


SHOWCASE = "showcase"  # the choice: the chosen experiment's stored test images


def known_sources(found_experiments: list[Experiment]) -> dict[str, Settings]:
    """The data a visitor may browse, by name: each experiment's own where this machine has
    it, the synthetic source, the shared real slice where this machine has it, and
    tensorflow-datasets' copy. No typed paths: a folder appears here once an experiment has
    been trained on it."""
    found: dict[str, Settings] = {}
    for experiment in found_experiments:
        if experiment.settings:
            settings = settings_from_dict(experiment.settings)
            if data_on_this_machine(settings):
                found.setdefault(caches.source_key(settings), settings)
    found.setdefault(caches.source_key(DRAWN), DRAWN)
    shared = experiments.shared_pets()
    if shared:
        slice_ = Settings(dataset="folder", data_dir=str(shared))
        found.setdefault(caches.source_key(slice_), slice_)
    found.setdefault(caches.source_key(TFDS), TFDS)
    return found


def describe(settings: Settings) -> str:
    if settings.dataset == "synthetic":
        return f"drawn pets (synthetic, {settings.limit or 384} trainval, seed {settings.seed})"
    if settings.dataset == "folder":
        return f"photos in {settings.data_dir}"
    return "Oxford-IIIT Pet photos (tensorflow-datasets)"


def source_ui(found_experiments: list[Experiment]) -> Settings | None:
    """The source the visitor picked (None: the showcase). The chosen
    experiment's own data comes first, or its stored test images where its data is not here."""
    sources = known_sources(found_experiments)
    current = experiments.current_experiment()
    keys = list(sources)
    labels = {k: describe(v) for k, v in sources.items()}
    if current is not None and current.settings:
        mine = caches.source_key(settings_from_dict(current.settings))
        if mine in keys:
            keys.remove(mine)
        else:
            mine = SHOWCASE
            labels[mine] = f"the test images stored with experiment {current.name} (its data is not on this machine)"
        keys.insert(0, mine)
    choice = st.selectbox("Data", keys, key="data_source", format_func=labels.get)
    return sources.get(choice)


def browse_ui(source: Source) -> tuple[str, int | None, int]:
    """(split, breed or None for all, how many) to show."""
    cols = st.columns([2, 3, 2, 1.5])
    split = cols[0].radio("Split", list(source.labels), horizontal=True, key="data_split")
    present = sorted({int(c) for c in source.labels[split]})
    breed = cols[1].selectbox("Breed", [None] + present, key="data_breed",
                              format_func=lambda c: "all breeds" if c is None else breed_name(c))
    count = cols[2].slider("Images", 4, 16, 8, 4, key="data_count")
    if cols[3].button("Shuffle", icon=":material/casino:"):
        st.session_state["data_seed"] = st.session_state.get("data_seed", 0) + 1
    return split, breed, count


def draw_examples(examples: list[dict]) -> None:
    for start in range(0, len(examples), PER_ROW):
        for column, ex in zip(st.columns(PER_ROW), examples[start:start + PER_ROW]):
            has_box = float(ex["has_box"]) > 0.5
            column.image(overlay(ex["image"], true_mask=ex["mask"], true_box=ex["bbox"] if has_box else None,
                                 width=320))
            column.caption(breed_name(int(ex["label"])) + ("" if has_box else " · no head box"))


def draw_balance(source: Source) -> None:
    counts = {split: {breed_name(c): int((labels == c).sum()) for c in sorted(set(int(c) for c in labels))}
              for split, labels in source.labels.items()}
    st.plotly_chart(class_balance_figure(counts), width="stretch", config=display.PLOTLY_CONFIG)


st.title("Dataset")
if not experiments.load_runs():
    experiments.empty_state()
settings = source_ui(experiments.experiments())
if settings is None:  # the showcase of the chosen experiment
    current = experiments.current_experiment()
    images = caches.experiment_images(current.path, settings_from_dict(current.settings))
    if images is None:
        st.stop()
    source, key, caption = images.source, images.key, images.caption
else:
    source = caches.source_or_none(settings)
    if source is None:
        st.stop()
    key, caption = caches.source_key(settings), source.description
st.caption(display.escape(caption) + " · green: the pet's mask outline and its head box.")
split, breed, count = browse_ui(source)
labels = source.labels[split]
candidates = [i for i in range(len(labels)) if breed is None or labels[i] == breed]
chosen = pick_random(candidates, count, st.session_state.get("data_seed", 0))
draw_examples(caches.examples(source, key, split, tuple(chosen)))
st.subheader("Class balance")
draw_balance(source)
