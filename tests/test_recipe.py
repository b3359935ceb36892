import keras
import numpy as np

from labcore.model import metrics as lab_metrics
from labcore.train.estimate import fake_batch
from labcore.model.architectures import build_backbone, build_models
from labcore.model.recipe import compile_model, compile_pretext, early_stopping_settings, fine_tune_learning_rate, reduce_lr


def tiny_model(tiny_settings, task="detection"):
    keras.utils.set_random_seed(0)
    model, _ = build_models(task, tiny_settings, build_backbone("tiny", 32))
    return model


def count_train_step_traces(monkeypatch) -> list[int]:
    """A spy on Keras' train step: one count each time TensorFlow traces it."""
    traces = [0]
    keras_step = keras.Model.train_step

    def train_step(self, data):
        traces[0] += 1
        return keras_step(self, data)

    monkeypatch.setattr(keras.Model, "train_step", train_step)
    return traces


def test_the_first_train_step_is_traced_once_and_trains_as_keras_own(tiny_settings, monkeypatch):
    """With the optimizer and the per-head loss trackers made at compile time, TensorFlow
    traces the first train step once; Keras' own compile makes them inside it and traces it
    twice. The losses are the same to the bit."""
    traces = count_train_step_traces(monkeypatch)
    for task, heads in (("detection", ("label", "bbox")), ("multitask", ("label", "bbox", "mask"))):
        x, y = fake_batch(task, 16, 32)
        ours = tiny_model(tiny_settings, task)
        compile_model(ours, heads, 1e-3, jit_compile=False)
        assert ours.optimizer.built and len(ours.optimizer.variables) > 2
        keras_own = tiny_model(tiny_settings, task)
        losses, metric_objs = lab_metrics.compile_spec(heads)
        keras_own.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses, metrics=metric_objs)
        assert not keras_own.optimizer.built
        traces[0] = 0
        a = ours.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False).history
        assert traces[0] == 1, task
        traces[0] = 0
        b = keras_own.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False).history
        assert traces[0] == 2, task
        assert a == b and np.isfinite(a["loss"]).all()


def test_the_pretext_model_and_the_callbacks_follow_the_settings(tiny_settings):
    base = build_backbone("tiny", 32)
    pretext = keras.Model(base.input, keras.layers.Dense(48, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(base.output)))
    compile_pretext(pretext, 1e-3)
    assert pretext.optimizer.built
    settings = tiny_settings.with_overrides(lr_factor=0.25, lr_patience=7, early_stopping_patience=11,
                                            learning_rate=0.02)
    plateau = reduce_lr(settings)
    assert (plateau.monitor, plateau.factor, plateau.patience) == ("val_loss", 0.25, 7)
    assert early_stopping_settings(settings) == {"monitor": "val_loss", "patience": 11}
    assert fine_tune_learning_rate(settings) == 0.02 / 100
