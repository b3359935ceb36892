"""The ui package's helpers that do not need a running page."""
import gc
import weakref

from ui import caches, display


class Node:
    """An object in a reference cycle, as Keras models are: only the cycle collector frees it."""

    def __init__(self):
        self.me = self


def test_escape_keeps_a_file_name_as_text():
    assert display.escape("![x](a.png)\n_b_") == r"\!\[x\]\(a\.png\) \_b\_"


def test_freezing_the_long_lived_objects_frees_what_was_let_go_first():
    kept = Node()
    try:
        caches.freeze_long_lived()
        assert gc.get_freeze_count() > 0  # the collector no longer walks them
        watch = weakref.ref(kept)
        del kept  # as the model cache lets a model go: in a cycle, frozen
        gc.collect()
        assert watch() is not None  # a full collection does not see frozen objects...
        caches.freeze_long_lived()
        assert watch() is None  # ...the next model load unfreezes and collects it
    finally:
        gc.unfreeze()
