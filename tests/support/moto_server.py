"""moto's server (the pinned moto[server] in .venv), with DynamoDB requests serialised.

moto evaluates a DynamoDB condition expression and then applies the write without holding a lock, so
two concurrent conditional PutItem calls can both succeed. Real DynamoDB never allows that, and the
ledger's idempotency and no-lost-update tests exercise exactly that case, so here DynamoDB calls run
one at a time. Every other service stays concurrent (an SQS long poll must not stall the Lambdas).

Usage: python tests/support/moto_server.py HOST PORT
"""

import os
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    # moto's own entry point sets this; some backends build URLs from it.
    os.environ.setdefault("MOTO_PORT", str(port))
    moto_app = DomainDispatcherApplication(create_backend_app)
    dynamodb_lock = threading.Lock()

    def app(environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with dynamodb_lock:
                # Materialise the body inside the lock: the write happens while it is produced.
                return list(moto_app(environ, start_response))
        return moto_app(environ, start_response)

    run_simple(host, port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
