"""The trainer: one run (training), the plan around it (estimate, lanes, ETA, the lab, sweeps), the
runtime's threads and the cached frozen features. Imports store, model, data and the root."""
