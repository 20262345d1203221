"""gan3d service package. Importing it (or app.bundle) never imports torch or FastAPI."""

__version__ = "0.1.0"
