"""What the app and the export show: inference, Grad-CAM, per-breed figures, the report's tables and
answers, data efficiency, examples, plots, the gallery, the HTML export, and store text made safe
to show (text). Imports store, model,
data and the root, never train."""
