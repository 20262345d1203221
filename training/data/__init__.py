"""Training data: procedural shapes, real models from Debian packages, photo-like renders."""
