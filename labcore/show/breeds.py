"""Per-breed results drawn from a run's confusion counts (`labcore.store.confusion`): the
sorted per-breed accuracy bars and the confusion heat map."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from labcore.store.confusion import IS_CAT, Confusion

if TYPE_CHECKING:
    import plotly.graph_objects as go


# --------------------------------------------------------------------------- figures

def accuracy_figure(confusion: Confusion, title: str) -> "go.Figure":
    """Per-breed accuracy as bars, best first; cats and dogs in two colours, support on hover."""
    import plotly.graph_objects as go

    from labcore.show.plots import projector_layout

    accuracy, support = confusion.per_breed_accuracy(), confusion.support()
    order = [i for i in np.argsort(-np.nan_to_num(accuracy, nan=-1), kind="stable") if support[i] > 0]
    names = confusion.names
    fig = go.Figure()
    for species, colour in (("cat", "#E69F00"), ("dog", "#0072B2")):
        shown = [i for i in order if IS_CAT[i] == (species == "cat")]
        fig.add_trace(go.Bar(x=[names[i] for i in shown], y=[accuracy[i] for i in shown], name=species,
                             marker_color=colour, customdata=[int(support[i]) for i in shown],
                             hovertemplate="%{x}: %{y:.0%} of %{customdata} images<extra></extra>"))
    fig.update_layout(title=title, yaxis_title="accuracy", yaxis_range=[0, 1], yaxis_tickformat=".0%")
    fig.update_xaxes(categoryorder="array", categoryarray=[names[i] for i in order], tickangle=-60,
                     tickfont=dict(size=12))
    projector_layout(fig, height=560)
    return fig.update_layout(hovermode="closest", legend=dict(y=1.02, yanchor="bottom", x=1, xanchor="right"),
                             margin=dict(b=40))


OTHER = "other breeds"


def confusion_figure(confusion: Confusion, title: str) -> "go.Figure":
    """The counts as a heat map, rows the true breed, columns the predicted one, over the breeds
    the split holds only (a 3-breed slice gets a 3 x 3 map); predictions of any breed outside
    them add one column, "other breeds". Names on both axes, smaller as the breeds grow."""
    import plotly.graph_objects as go

    from labcore.show.plots import projector_layout

    present = confusion.present()
    names = confusion.names
    rows = confusion.counts[present]
    z = rows[:, present]
    columns = [names[i] for i in present]
    outside = rows.sum(axis=1) - z.sum(axis=1)
    if outside.any():
        z = np.column_stack([z, outside])
        columns.append(OTHER)
    font = 12 if len(present) <= 12 else 10 if len(present) <= 24 else 8
    fig = go.Figure(go.Heatmap(z=z, x=columns, y=[names[i] for i in present], colorscale="Blues",
                               hovertemplate="true %{y}<br>predicted %{x}<br>%{z} images<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="predicted breed", yaxis_title="true breed")
    fig.update_xaxes(tickfont=dict(size=font), tickangle=-45, automargin=True)
    fig.update_yaxes(tickfont=dict(size=font), autorange="reversed", automargin=True)
    projector_layout(fig, height=min(720, 320 + 12 * len(present)))
    return fig.update_layout(hovermode="closest", margin=dict(l=20, r=20, t=60, b=20))
