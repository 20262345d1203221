"""`python -m app` / `gan3d-serve`: run uvicorn with settings from GAN3D_* env vars."""

from __future__ import annotations

import logging


def main() -> None:
    import uvicorn

    from app.observability import JsonFormatter
    from app.settings import Settings

    settings = Settings()  # validate the environment once, loudly, before uvicorn starts
    handler = logging.StreamHandler()
    if settings.json_logs:
        handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
    # A factory import string, so that each of `workers` processes builds its own app
    # (and its own ONNX Runtime sessions) from the same GAN3D_* environment.
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=None if settings.json_logs else uvicorn.config.LOGGING_CONFIG,
    )


if __name__ == "__main__":
    main()
