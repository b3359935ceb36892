"""Dataset: browse a source's images with their box and mask, and its class balance."""
import streamlit as st

import ui
from labcore.examples import pick_random, settings_from_config
from labcore.plots import class_balance_figure, overlay
from labcore.runs import Run
from labcore.settings import Settings, breed_name
from labcore.sources import SPLITS, Source

SOURCES = ("synthetic", "folder", "oxford_iiit_pet")
PER_ROW = 4


def source_ui(runs: list[Run]) -> Settings:
    """The source the user picked; defaults follow the runs' config.json."""
    trained = settings_from_config(runs[0].config) if runs else Settings(dataset="synthetic", limit=384)
    dataset = st.radio("Source", SOURCES, index=SOURCES.index(trained.dataset), horizontal=True, key="data_source",
                            format_func={"synthetic": "synthetic (drawn pets)", "folder": "folder",
                                         "oxford_iiit_pet": "oxford_iiit_pet (tensorflow-datasets)"}.get)
    data_dir = trained.data_dir
    if dataset == "folder":
        shared = ui.shared_pets()
        default = trained.data_dir if trained.dataset == "folder" else str(shared) if shared else ""
        data_dir = st.text_input("Folder with images/ and annotations/", value=default or "",
                                 key="data_folder").strip()
    limit = trained.limit if trained.dataset == "synthetic" else None
    return Settings(dataset=dataset, data_dir=data_dir or None, limit=limit or 384, seed=trained.seed)


def browse_ui(source: Source) -> tuple[str, int | None, int]:
    """(split, breed or None for all, how many) to show."""
    cols = st.columns([2, 3, 2, 1.5])
    split = cols[0].radio("Split", SPLITS, horizontal=True, key="data_split")
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
    counts = {split: {breed_name(c): int((source.labels[split] == c).sum())
                      for c in sorted(set(int(c) for c in source.labels[split]))} for split in SPLITS}
    st.plotly_chart(class_balance_figure(counts), width="stretch", config=ui.PLOTLY_CONFIG)


st.title("Dataset")
runs = ui.load_runs()
if not runs:
    ui.empty_state()
settings = source_ui(runs)
if settings.dataset == "folder" and not settings.data_dir:
    st.info("Type the path of an Oxford-IIIT Pet folder (the original archives, unpacked).")
    st.stop()
source = ui.source_or_none(settings)
if source is None:
    st.stop()
st.caption(source.description + " · green: the pet's mask outline and its head box.")
split, breed, count = browse_ui(source)
labels = source.labels[split]
candidates = [i for i in range(len(labels)) if breed is None or labels[i] == breed]
chosen = pick_random(candidates, count, st.session_state.get("data_seed", 0))
draw_examples(ui.examples(source, ui.source_key(settings), split, tuple(chosen)))
st.subheader("Class balance")
draw_balance(source)
