"""The store on disk: runs, experiments, the showcase stored with an experiment, confusion counts, and
a training in flight (lock, plan, progress). Imports model, data and the root."""
