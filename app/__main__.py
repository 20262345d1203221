"""`python -m app` / `gan3d-serve`: run uvicorn with settings from GAN3D_* env vars."""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic import ValidationError

USAGE = """Serve gan3d's REST API (settings come from GAN3D_* environment variables).

examples:
  gan3d-serve                                    # models/gan3d-cpu on 127.0.0.1:8000
  GAN3D_HOST=0.0.0.0 GAN3D_PORT=9000 gan3d-serve
  GAN3D_PROVIDERS=CPUExecutionProvider gan3d-serve

settings (environment variable, default):
"""


def _settings_help() -> str:
    from app.settings import Settings

    lines = []
    for name, field in Settings.model_fields.items():
        default = field.default if field.default is not None else "(unset)"
        lines.append(f"  GAN3D_{name.upper():<22} {default}")
    return "\n".join(lines)


def _env_errors(e: ValidationError) -> str:
    """One line per bad variable: its name, the value given and what is expected."""
    import os

    out = []
    for err in e.errors():
        field = str(err["loc"][0]) if err["loc"] else "?"
        var = f"GAN3D_{field.upper()}"
        value = os.environ.get(var, err.get("input"))
        out.append(f"gan3d-serve: {var}={value!r}: {err['msg']}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="gan3d-serve",
        description=USAGE + _settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args(sys.argv[1:] if argv is None else argv)

    import uvicorn

    from app.observability import JsonFormatter
    from app.settings import Settings

    try:
        settings = Settings()  # validate the environment once, loudly, before uvicorn starts
    except ValidationError as e:
        print(_env_errors(e), file=sys.stderr)
        sys.exit(2)
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
        access_log=False,  # gan3d.access logs each request once, with its request id
        timeout_keep_alive=int(settings.keep_alive_s),
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
    )


if __name__ == "__main__":
    main()
