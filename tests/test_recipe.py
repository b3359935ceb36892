import keras
import numpy as np

from labcore import metrics as lab_metrics
from labcore.estimate import fake_batch
from labcore.models import build_backbone, build_models
from labcore.recipe import compile_model, compile_pretext, early_stopping_settings, fine_tune_learning_rate, reduce_lr


def tiny_model(tiny_settings, task="detection"):
    keras.utils.set_random_seed(0)
    model, _ = build_models(task, tiny_settings, build_backbone("tiny", 32))
    return model


def test_the_optimizer_is_built_before_the_first_train_step_and_trains_the_same(tiny_settings):
    """Built at compile time (so the first train step is traced once, not twice), the
    optimizer trains exactly as Keras' own, built inside the first step."""
    x, y = fake_batch("detection", 16, 32)
    ours = tiny_model(tiny_settings)
    compile_model(ours, ("label", "bbox"), 1e-3, jit_compile=False)
    assert ours.optimizer.built and len(ours.optimizer.variables) > 2
    keras_own = tiny_model(tiny_settings)
    losses, metric_objs = lab_metrics.compile_spec(("label", "bbox"))
    keras_own.compile(optimizer=keras.optimizers.Adam(1e-3), loss=losses, metrics=metric_objs)
    assert not keras_own.optimizer.built
    a = ours.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False).history["loss"]
    b = keras_own.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False).history["loss"]
    assert a == b and np.isfinite(a).all()


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
