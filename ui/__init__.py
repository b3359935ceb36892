"""The app's shared pieces, by what they do: display (escaping, the chart config), experiments
(the runs root and the chosen experiment), presenter (who may train here), status (the training
under way), pickers (run pickers) and caches (models and data). Pages import the module they need."""
