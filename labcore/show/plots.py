"""Figures and overlays the app shows: training curves, class balance, box and mask overlays.

Everything is sized for a projector: fonts of at least 16 px, thick lines, big markers.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFilter

from labcore.show.text import plotly_text

FONT_SIZE = 18
# One colour per run, in the six runs' order; colour-blind safe (Okabe-Ito).
RUN_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9")
TRUE_COLOUR = (0, 200, 80)  # ground truth: green
PRED_COLOUR = (230, 40, 40)  # prediction: red


# --------------------------------------------------------------------------- curves

def smooth(values: Sequence[float], strength: float) -> np.ndarray:
    """Exponential moving average with weight `strength` (0 = raw) on the past.

    Debiased like TensorBoard's, so the curve starts at the first value instead of at 0;
    NaNs are carried through without poisoning the rest of the curve."""
    values = np.asarray(values, dtype=np.float64)
    if strength <= 0 or len(values) == 0:
        return values.copy()
    out = np.empty_like(values)
    average, weight = 0.0, 0.0
    for i, v in enumerate(values):
        if np.isnan(v):
            out[i] = np.nan
            continue
        average = strength * average + (1 - strength) * v
        weight = strength * weight + (1 - strength)
        out[i] = average / weight
    return out


def best_epoch(val_loss: Sequence[float]) -> int | None:
    """1-based epoch of the lowest validation loss (what EarlyStopping keeps), or None."""
    values = np.asarray(val_loss, dtype=np.float64)
    if len(values) == 0 or np.all(np.isnan(values)):
        return None
    return int(np.nanargmin(values)) + 1


def lr_drops(lr: Sequence[float]) -> list[int]:
    """1-based epochs that ran at a lower learning rate than the epoch before."""
    lr = np.asarray(lr, dtype=np.float64)
    return [int(i) + 1 for i in np.flatnonzero(lr[1:] < lr[:-1] * (1 - 1e-6)) + 1]


def history_keys(histories: Sequence[Mapping[str, Sequence[float]]]) -> list[str]:
    """The training-side series (losses and metrics, no `val_`, `lr` or timing) present in
    any history, in a stable order: total loss first, then per head."""
    keys = {k for h in histories for k in h if not k.startswith("val_") and k not in ("lr", "epoch_seconds")}
    order = ["loss", "label_loss", "label_accuracy", "label_top5_accuracy", "bbox_loss", "bbox_mae",
             "mask_loss", "mask_accuracy"]
    return [k for k in order if k in keys] + sorted(keys - set(order))


def curve_figure(metric: str, runs: Sequence[tuple[str, Mapping[str, Sequence[float]]]],
                 smoothing: float = 0.0, title: str | None = None,
                 colours: Sequence[str] | None = None, legend: bool = True) -> go.Figure:
    """Train (solid) and validation (dashed) curves of one metric for several runs.

    `runs` is [(label, history)], drawn in `colours` (default: RUN_COLOURS in order). Each
    validation curve marks the best epoch (star, at the lowest val_loss) and the epochs where
    ReduceLROnPlateau lowered the learning rate (triangles). Markers sit on the smoothed curve.
    The legend names each run once; without it, the page shows one key for all its charts.
    Labels and the title are shown as text (`plotly_text`): they come from the store."""
    fig = go.Figure()
    colours = colours or [RUN_COLOURS[n % len(RUN_COLOURS)] for n in range(len(runs))]
    for (label, history), colour in zip(runs, colours):
        label = plotly_text(label)
        shown = False
        for split, key, dash in (("train", metric, "solid"), ("val", f"val_{metric}", "dash")):
            if key not in history:
                continue
            y = smooth(history[key], smoothing)
            epochs = np.arange(1, len(y) + 1)
            fig.add_trace(go.Scatter(x=epochs, y=y, mode="lines", name=label, legendgroup=label,
                                     showlegend=not shown, hovertemplate=f"{split} %{{y:.4g}}",
                                     line=dict(color=colour, dash=dash, width=3)))
            shown = True
            if split != "val":
                continue
            best = best_epoch(history.get("val_loss", []))
            if best is not None and best <= len(y):
                fig.add_trace(_markers([best], y, "star", 20, colour, label, f"best epoch {best}"))
            drops = [e for e in lr_drops(history.get("lr", [])) if e <= len(y)]
            if drops:
                fig.add_trace(_markers(drops, y, "triangle-down", 16, colour, label, "LR lowered"))
    fig.update_layout(title=plotly_text(title or metric), xaxis_title="epoch")
    fig.update_xaxes(dtick=max(1, _longest(runs) // 10))
    return projector_layout(fig).update_layout(showlegend=legend)


def _markers(epochs: list[int], y: np.ndarray, symbol: str, size: int, colour: str, label: str,
             what: str) -> go.Scatter:
    return go.Scatter(x=epochs, y=[y[e - 1] for e in epochs], mode="markers", name=f"{label}: {what}",
                      legendgroup=label, showlegend=False, hovertemplate=f"{what}<extra></extra>",
                      marker=dict(symbol=symbol, size=size, color=colour, line=dict(color="black", width=1.5)))


def _longest(runs: Sequence[tuple[str, Mapping[str, Sequence[float]]]]) -> int:
    return max((len(v) for _, h in runs for v in h.values()), default=1)


def projector_layout(fig: go.Figure, height: int = 480) -> go.Figure:
    """Large fonts and a legend below the plot, where long run names have room."""
    fig.update_layout(
        font=dict(size=FONT_SIZE), title_font=dict(size=FONT_SIZE + 4), height=height,
        legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0, font=dict(size=16)),
        margin=dict(l=70, r=20, t=60, b=40), hovermode="x unified")
    return fig


def class_balance_figure(counts: Mapping[str, Mapping[str, int]]) -> go.Figure:
    """Bars of examples per breed, one bar group per split: counts[split][breed]."""
    fig = go.Figure()
    for n, (split, per_breed) in enumerate(counts.items()):
        fig.add_trace(go.Bar(x=list(per_breed), y=list(per_breed.values()), name=split,
                             marker_color=RUN_COLOURS[n % len(RUN_COLOURS)]))
    breeds = max((len(c) for c in counts.values()), default=0)
    fig.update_layout(barmode="group", title="Images per breed", yaxis_title="images")
    fig.update_xaxes(tickangle=-45 if breeds > 6 else 0)
    projector_layout(fig, height=560 if breeds > 6 else 440)
    fig.update_layout(legend=dict(y=1.02, yanchor="bottom", x=1, xanchor="right"), hovermode="closest",
                      margin=dict(b=40))
    return fig


# --------------------------------------------------------------------------- overlays

def overlay(image: np.ndarray | Image.Image, *, pred_mask: np.ndarray | None = None,
            true_mask: np.ndarray | None = None, pred_box: Sequence[float] | None = None,
            true_box: Sequence[float] | None = None, opacity: float = 0.45,
            width: int | None = None) -> Image.Image:
    """The image with a predicted mask tinted in red, the true mask outlined in green and the
    boxes (normalised ymin, xmin, ymax, xmax) drawn: true green, predicted red.

    Masks of any size are scaled to the image (nearest neighbour). With `width`, the picture
    is resized first so the lines keep the same thickness whatever the photo's size."""
    picture = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, np.uint8))
    picture = picture.convert("RGB")
    if width and picture.width != width:
        picture = picture.resize((width, max(1, round(picture.height * width / picture.width))),
                                 Image.Resampling.BILINEAR)
    line = max(2, picture.width // 120)
    if pred_mask is not None and opacity > 0:
        tint = Image.new("RGB", picture.size, PRED_COLOUR)
        alpha = _mask_image(pred_mask, picture.size).point(lambda v: int(v * opacity))
        picture = Image.composite(tint, picture, alpha)
    if true_mask is not None:
        # A dark band under the coloured one keeps the outline visible on a pet of any colour.
        mask = _mask_image(true_mask, picture.size)
        for colour, width in (((0, 0, 0), 2 * line), (TRUE_COLOUR, line)):
            picture = Image.composite(Image.new("RGB", picture.size, colour), picture, _outline(mask, width))
    draw = ImageDraw.Draw(picture)
    w, h = picture.size
    for box, colour in ((true_box, TRUE_COLOUR), (pred_box, PRED_COLOUR)):
        if box is not None:
            y0, x0, y1, x1 = np.clip(np.asarray(box, np.float64), 0, 1)
            # An untrained box head can give ymax < ymin: draw the box its corners span.
            corners = [min(x0, x1) * (w - 1), min(y0, y1) * (h - 1), max(x0, x1) * (w - 1), max(y0, y1) * (h - 1)]
            draw.rectangle(corners, outline=(0, 0, 0), width=line + 2)
            draw.rectangle(corners, outline=colour, width=line)
    return picture


def _mask_image(mask: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """A 0/1 mask of any shape [H, W] or [H, W, 1] as an 'L' image of `size`, 255 = pet."""
    mask = np.asarray(mask).reshape(np.asarray(mask).shape[:2])
    return Image.fromarray((mask > 0).astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)


def _outline(mask: Image.Image, width: int) -> Image.Image:
    """The band of `width` pixels inside the mask's edge."""
    inner = mask.filter(ImageFilter.MinFilter(2 * width + 1))
    return Image.fromarray(((np.asarray(mask) > 0) & (np.asarray(inner) == 0)).astype(np.uint8) * 255)


# --------------------------------------------------------------------------- data efficiency

INIT_COLOURS = {"pretrained": RUN_COLOURS[0], "scratch": RUN_COLOURS[1]}


def efficiency_figure(title: str, lines: Mapping[str, Sequence[tuple[int, float, str]]],
                      report: Mapping[str, float], report_images: int, report_note: str = "") -> go.Figure:
    """A validation metric against the number of training images (log scale): one line per
    init from `lines` (init -> [(images, value, hover text)]), and the report's full-data value
    of each init (`report`, may be empty) as a star at `report_images`."""
    fig = go.Figure()
    for init, points in lines.items():
        if not points:
            continue
        x, y, hover = zip(*sorted(points))
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=init, text=hover,
                                 hovertemplate="%{text}<extra></extra>",
                                 line=dict(color=INIT_COLOURS.get(init, RUN_COLOURS[2]), width=3),
                                 marker=dict(size=12)))
    for init, value in report.items():
        fig.add_trace(go.Scatter(x=[report_images], y=[value], mode="markers", name=f"report, {init}",
                                 hovertemplate=f"the report's {init} run{report_note}: %{{y:.4g}}<br>"
                                               f"full data ({report_images:,} training images)<extra></extra>",
                                 marker=dict(symbol="star", size=20, color=INIT_COLOURS.get(init, RUN_COLOURS[2]),
                                             line=dict(color="black", width=1.5))))
    fig.update_layout(title=title, xaxis_title="training images (log scale)")
    # Ticks at the sizes drawn, not at log decades (a sweep's sizes fall between them).
    sizes = sorted({x for points in lines.values() for x, _, _ in points} | ({report_images} if report else set()))
    fig.update_xaxes(type="log", tickvals=sizes, ticktext=[f"{x:,}" for x in sizes])
    return projector_layout(fig, height=440).update_layout(hovermode="closest")
