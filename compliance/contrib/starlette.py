"""Starlette and FastAPI: the decision as a dependency, the notices as a Jinja global.

The middleware is the pure-ASGI :class:`compliance.asgi.ComplianceMiddleware`, added as any
Starlette middleware::

    from fastapi import Depends, FastAPI, Request
    from fastapi.templating import Jinja2Templates
    from compliance import Engine
    from compliance.asgi import ComplianceMiddleware
    from compliance.contrib.starlette import compliance_decision, install_templates

    app = FastAPI()
    app.add_middleware(ComplianceMiddleware, engine=Engine.from_paths(),
                       trusted_proxies=["10.0.0.0/8"])
    templates = install_templates(Jinja2Templates(directory="templates"))

    @app.get("/api/notices")
    def notices(decision=Depends(compliance_decision)):
        return {"notices": [n.rule_id for n in decision.notices] if decision else []}

In a template rendered with ``templates.TemplateResponse(request, ...)``,
``{{ compliance_notices() }}`` puts the reader's notices there, and the middleware does not
inject them again (their rule ids go to ``scope["state"]["compliance.rendered"]``).

``add_middleware`` makes the middleware inside Starlette, out of the site's reach:
:func:`metrics` adds up the counters of the process's ASGI middlewares instead (for
``compliance.contrib.prometheus.ComplianceCollector(compliance.contrib.starlette.metrics)``).
"""

from __future__ import annotations

from typing import Any, TypeVar

# A runtime import: FastAPI reads the parameter's annotation to pass the request in.
from starlette.requests import HTTPConnection

from compliance.metrics import Snapshot

__all__ = ["compliance_decision", "install_templates", "metrics"]

T = TypeVar("T")


def compliance_decision(request: HTTPConnection) -> Any:
    """The reader's :class:`~compliance.decision.Decision` for this request, or None when
    the middleware made none (it is not installed, or it failed open).

    A FastAPI dependency (``Depends(compliance_decision)``) and a plain function for
    Starlette endpoints (``compliance_decision(request)``). The response then depends on
    the reader's location: whatever its type (JSON too), it gets ``Vary`` and
    ``Cache-Control: private`` as a page does.
    """
    from compliance.core import read_decision

    return read_decision(request.scope.get("state") or {})


def install_templates(templates: T) -> T:
    """Add the ``compliance_notices()`` global to a ``Jinja2Templates`` (Starlette's or
    FastAPI's) and return it."""
    from compliance.contrib._jinja import compliance_notices

    env = templates.env  # type: ignore[attr-defined]
    env.globals["compliance_notices"] = compliance_notices
    return templates


def metrics() -> Snapshot:
    """The counters of every :class:`compliance.asgi.ComplianceMiddleware` this process
    made, added up (``app.add_middleware`` makes them where the site cannot reach them; a
    server runs one app per worker process): those of middlewares gone stay in, so the
    sums never go down."""
    from compliance.asgi import ComplianceMiddleware

    return ComplianceMiddleware.process_metrics()
