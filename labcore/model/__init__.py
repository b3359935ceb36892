"""The models: the six architectures, the recipe they are compiled and trained with (losses, metrics,
callbacks' settings), and the offline pretext that stands in for ImageNet. Imports data and the
root."""
