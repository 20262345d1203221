"""gan3d offline training package (torch): data, networks, training, export, evaluation."""
