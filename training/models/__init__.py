"""Networks: G, D, E, V (one config), the segmenter, the voxel judge, the prototype head."""
