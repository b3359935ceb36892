"""The models: the six architectures, the recipe they are compiled and trained with (losses, metrics,
callbacks' settings), the offline pretext that stands in for ImageNet, and the .npz weights files
this project writes itself. Imports data and the root."""
