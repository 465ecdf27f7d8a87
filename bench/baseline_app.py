"""The ingest benchmark's baseline: a bare FastAPI endpoint that verifies the signature and answers 200, no Kafka.

Served exactly as ``python -m ingest`` serves the real service (uvicorn, uvloop, httptools, no access log, no server
header), with the same ``WebhookVerifier``, so the ratio ingest/baseline is the cost of everything ingest does beyond
verification: parsing, routing, CloudEvents headers, de-duplication, metrics, logging and the acknowledged Kafka write.

    RECALL_WEBHOOK_SECRET=whsec_... BASELINE_PORT=8081 python bench/baseline_app.py
"""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from pipeline_common.webhooks import WebhookVerificationFailed, WebhookVerifier


def create_app(secrets: list[str]) -> FastAPI:
    verifier = WebhookVerifier(secrets)
    app = FastAPI(title="baseline: verify and answer", docs_url=None, redoc_url=None)

    @app.post("/webhooks/recall")
    async def receive_webhook(request: Request) -> Response:
        body = await request.body()
        try:
            delivery = verifier.verify(body, request.headers)
        except WebhookVerificationFailed as failure:
            return JSONResponse({"error": failure.reason.value, "reason": str(failure)}, status_code=401)
        return JSONResponse({"status": "accepted", "webhook_id": delivery.webhook_id})

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


def main() -> None:
    secrets = [s.strip() for s in os.environ["RECALL_WEBHOOK_SECRET"].split(",") if s.strip()]
    uvicorn.run(
        create_app(secrets),
        host=os.environ.get("BASELINE_HOST", "127.0.0.1"),
        port=int(os.environ.get("BASELINE_PORT", "8081")),
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
        server_header=False,
    )


if __name__ == "__main__":
    main()
