"""The loaders shared by every session: models (warmed in the background) and data sources.
Nothing here imports TensorFlow at import time, so a page that needs no model loads none."""
from __future__ import annotations

import gc
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from labcore.store.runs import Run
from ui.display import escape
from ui.experiments import current_experiment

if TYPE_CHECKING:
    from labcore.data.sources import Source
    from labcore.settings import Settings
    from labcore.show.inference import Predictor
    from labcore.store.showcase import ShownImages


# Models kept loaded: four experiments of six, so visitors on three or four experiments do not
# evict each other's (each eviction reloads and re-traces a model on someone's request).
MODELS_KEPT = 24
FREEZE_AFTER_SECONDS = 2.0  # a burst of model loads (an experiment's six) is frozen once, after it


def predictor(run: Run) -> "Predictor | None":
    """The run's compiled predictor, loaded once per model file; one error line if unusable."""
    from labcore.store.runs import ModelLoadError

    if not run.has_model:
        st.error(escape(f"{run.run_id}: no model.keras in {run.path}."))
        return None
    try:
        with st.spinner("Loading the model…"):  # drawn only if it takes half a second
            return shared_predictor(run)
    except ModelLoadError as err:
        st.error(escape(str(err)))
        return None

def shared_predictor(run: Run) -> "Predictor":
    """The run's predictor from the app's cache (loaded there if it is not yet), for code that
    reports errors its own way (raises ModelLoadError or OSError)."""
    return _predictor(str(run.path), run.model_path.stat().st_mtime_ns, run)

def warm_models() -> None:
    """Load and warm the chosen experiment's models in a background thread, once per set of
    model files, so the first upload is answered as fast as the later ones (it waited for six
    models to load and trace: 22.7 s against 7.6 s). A page that asks for a model meanwhile
    waits for that one only (the cache computes each key once)."""
    experiment = current_experiment()
    runs = [r for r in experiment.runs if r.has_model] if experiment else []
    if runs:
        # TensorFlow is imported here, on the script's thread, before the warming thread starts:
        # two threads importing it at once can deadlock in Python's import locks (seen as
        # `_DeadlockError ... tensorflow.python.trackable` and a Live page that never drew).
        # app.py calls this after the page has drawn, so the import delays no page.
        import labcore.show.inference  # noqa: F401

        _warming(tuple((str(r.path), r.model_path.stat().st_mtime_ns) for r in runs), runs)

@st.cache_resource(show_spinner=False, max_entries=4)
def _warming(models: tuple, _runs: list[Run]) -> threading.Thread:
    thread = threading.Thread(target=_warm, args=(_runs,), name="warm-models", daemon=True)
    thread.start()
    return thread

def _warm(runs: list[Run]) -> None:
    from labcore.store.runs import ModelLoadError

    for run in runs:
        try:
            _predictor(str(run.path), run.model_path.stat().st_mtime_ns, run)
        except (ModelLoadError, OSError):
            pass  # the page that shows this run says why, when it asks for it


# No spinner here: the warming thread has no page to draw one on (`predictor` draws it).

@st.cache_resource(show_spinner=False, max_entries=MODELS_KEPT)
def _predictor(path: str, mtime: int, _run: Run) -> "Predictor":
    from labcore.show.inference import Predictor

    _keep_kernels_warm()
    loaded = Predictor.from_run(_run)
    _freeze_soon()
    return loaded

_freezing: list[threading.Timer] = []  # the freeze scheduled after the latest model load
_freezing_lock = threading.Lock()

def _freeze_soon() -> None:
    """Freeze the long-lived objects FREEZE_AFTER_SECONDS after the last model load, in a thread
    of its own: the full collection it starts with never runs on a visitor's request, and the
    six loads of an experiment pay for one."""
    with _freezing_lock:
        for timer in _freezing:
            timer.cancel()
        _freezing[:] = [threading.Timer(FREEZE_AFTER_SECONDS, freeze_long_lived)]
        _freezing[0].name, _freezing[0].daemon = "freeze-long-lived", True
        _freezing[0].start()

def freeze_long_lived() -> None:
    """Streamlit runs a full garbage collection after every script run; with TensorFlow and
    the models in memory it walked ~500k objects, 0.24 CPU-s per run, more than three 224 px
    forward passes. Those objects live as long as the models: moved out of the collector's
    sight once models are loaded, so each run's collection walks only what came after.
    Unfrozen and collected first, so a model the cache has let go (Keras models hold reference
    cycles) is freed, not frozen forever."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()

def _keep_kernels_warm() -> None:
    """Streamlit calls keras.backend.clear_session() after every script run, and that clears
    TensorFlow's kernel cache: each cached model then re-optimises its graph on its next call
    (measured on the live page: 1.0 s instead of 30 ms for EfficientNetB3, on every new photo).
    This app keeps its models across reruns on purpose (st.cache_resource), so once one is
    loaded, that clean-up is switched off for the process."""
    import keras

    keras.backend.clear_session = _no_clear_session

def _no_clear_session(*args, **kwargs) -> None:
    """Stands in for keras.backend.clear_session in the app process (see _keep_kernels_warm)."""

def source_or_none(settings: "Settings") -> "Source | None":
    """The data source for these settings, or one error line saying why not."""
    from labcore.data.sources import DataUnavailable

    try:
        return _source(source_key(settings), settings)
    except DataUnavailable as err:
        st.error(escape(str(err)))
        return None

@st.cache_resource(show_spinner="Opening the dataset…", max_entries=4)
def _source(key: str, _settings: "Settings") -> "Source":
    from labcore.data.sources import open_source

    return open_source(_settings)

@st.cache_data(show_spinner="Reading images…", max_entries=16)
def examples(_source: "Source", source_key: str, split: str, indices: tuple[int, ...]) -> list[dict]:
    """Unbatched examples (numpy dicts, full size) of one split, in the order asked."""
    from labcore.data.pipeline import raw_examples

    return raw_examples(_source, split, list(indices))

def source_key(settings: "Settings") -> str:
    from labcore.data.sources import source_key as key

    return key(settings)

def experiment_images(experiment: Path, settings: "Settings") -> "ShownImages | None":
    """An experiment's test images: from its data where this machine has it, else from the
    showcase stored with it; or one sentence with the way out, and None."""
    from labcore.store.showcase import ShowcaseUnavailable, experiment_images as images

    try:
        return images(experiment, settings, opener=lambda s: _source(source_key(s), s))
    except ShowcaseUnavailable as err:
        st.info(escape(str(err)))
        st.code(err.command, language="bash")
        return None
