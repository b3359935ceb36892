"""The store on disk: runs, experiments, the showcase stored with an experiment, confusion counts, and
a training in flight (lock, plan, progress), and who may act on it from the app (access: the
presenter). Imports model, data and the root."""
