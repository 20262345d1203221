"""Every error is an RFC 9457 problem document: {"type", "title", "status", "detail", ...}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from app.engine import DeadlineExceeded, QueueFull
from app.latents import LatentError
from app.triton import TritonUnavailable

log = logging.getLogger("gan3d.errors")
PROBLEM = "application/problem+json"
# A 422 lists the first problems only: eight latents sent as strings were 1,608 problems, a
# 268 KB answer nobody reads; `error_count` says how many there were
MAX_REPORTED = 20
MAX_WHERE = 200  # characters of a problem's location (a deeply nested one keeps its end)


def _where(loc: tuple) -> str:
    where = ".".join(str(p) for p in loc)
    return where if len(where) <= MAX_WHERE else "…" + where[-(MAX_WHERE - 1) :]


def validation_problem(found: list, prefix: tuple = ()) -> tuple[str, dict]:
    """pydantic's errors -> (detail, {"errors", "error_count"}) of a 422 problem document;
    ``prefix``: where the validated value sits in the request (e.g. a form field's name)."""
    errors = [
        {"where": _where((*prefix, *err["loc"])), "problem": err["msg"]}
        for err in found[:MAX_REPORTED]
    ]
    detail = "; ".join(f"{x['where']}: {x['problem']}" for x in errors)
    if len(found) > MAX_REPORTED:
        detail += f"; and {len(found) - MAX_REPORTED} more"
    return detail, {"errors": errors, "error_count": len(found)}


class ApiError(Exception):
    """An error with a status and a message a person can act on."""

    def __init__(self, status: int, title: str, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem(
    status: int, title: str, detail: str, headers: dict | None = None, **extra
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, e: ApiError) -> JSONResponse:
        return problem(e.status, e.title, e.detail, **e.extra)

    @app.exception_handler(LatentError)
    async def _latent(_: Request, e: LatentError) -> JSONResponse:
        return problem(400, "Bad latent", str(e))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError) -> JSONResponse:
        detail, listed = validation_problem(e.errors())
        return problem(422, "Invalid request", detail, **listed)

    @app.exception_handler(QueueFull)
    async def _full(_: Request, e: QueueFull) -> JSONResponse:
        return problem(503, "Busy", f"{e}; retry shortly", headers={"Retry-After": "1"})

    @app.exception_handler(TritonUnavailable)
    async def _triton(_: Request, e: TritonUnavailable) -> JSONResponse:
        return problem(
            503, "Inference server unavailable", f"{e}; retry shortly", headers={"Retry-After": "5"}
        )

    @app.exception_handler(DeadlineExceeded)
    async def _deadline(_: Request, e: DeadlineExceeded) -> JSONResponse:
        return problem(504, "Deadline exceeded", str(e))

    @app.exception_handler(HTTPException)
    async def _http(_: Request, e: HTTPException) -> JSONResponse:
        return problem(e.status_code, "Error", str(e.detail), headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error")
        # close the connection: after a failure mid-request its state is not to be trusted
        return problem(
            500,
            "Internal error",
            "the server failed; the error was logged",
            headers={"Connection": "close"},
        )


class ProblemCORS(CORSMiddleware):
    """Starlette's CORS middleware, whose refused preflight is a plain-text 400: here it is a
    problem document like every other error, saying what was refused and where it is set."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        refused = bytes(response.body).decode() or "Disallowed CORS request"
        keep = {k: v for k, v in response.headers.items() if k.lower().startswith("vary")}
        return problem(
            response.status_code,
            "CORS preflight refused",
            f"{refused} (allowed origins: GAN3D_CORS_ORIGINS; methods: GET, POST)",
            headers=keep,
        )
