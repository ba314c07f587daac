"""Flask: ``Compliance(app)`` or ``compliance.init_app(app)``.

::

    from flask import Flask
    from compliance.contrib.flask import Compliance

    app = Flask(__name__)
    app.config["COMPLIANCE_PACKS"] = ["russia"]
    app.config["COMPLIANCE_TRUSTED_PROXIES"] = ["10.0.0.0/8"]
    Compliance(app)

Configuration comes from ``app.config`` keys ``COMPLIANCE_<KEY>``: the keys of Django's
``settings.COMPLIANCE`` dict upper-cased and prefixed (``COMPLIANCE_RULES``,
``COMPLIANCE_PACKS``, ``COMPLIANCE_GEOIP_DB``, ``COMPLIANCE_VARIABLES``,
``COMPLIANCE_WATCH``, ``COMPLIANCE_ENGINE``, and every middleware option:
``COMPLIANCE_TRUSTED_PROXIES``, ``COMPLIANCE_FAIL_MODE``, ``COMPLIANCE_DECISION_PATH``,
``COMPLIANCE_SIMULATE_FROM``, ...). An unknown ``COMPLIANCE_`` key is an error.

``app.wsgi_app`` is wrapped with :class:`compliance.wsgi.ComplianceMiddleware`, so every
response, Flask's own error pages included, gets the same treatment as in a plain WSGI
set-up. Views read the decision with :func:`decision`; templates call the Jinja global
``compliance_notices()`` to put the notices where they want them, and the middleware then
does not inject those notices again.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from compliance.contrib import ENGINE_KEYS, ComplianceSettings
from compliance.contrib.templates import render_shared
from compliance.errors import ConfigurationError
from compliance.wsgi import ComplianceMiddleware

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["Compliance", "compliance_notices", "decision"]

_EXTENSION = "compliance"


class Compliance:
    """The Flask extension. ``Compliance(app)`` sets up ``app`` at once; ``Compliance()``
    then ``init_app(app)`` for application factories. ``engine=`` overrides
    ``COMPLIANCE_ENGINE`` and the rule settings; keyword ``options`` override the
    middleware options from the config."""

    def __init__(self, app: Flask | None = None, *, engine: Any = None, **options: Any) -> None:
        self._engine = engine
        self._options = options
        self.engine: Any = None
        """The engine of the last app set up (``init_app`` builds one per app)."""
        self.middleware: ComplianceMiddleware | None = None
        """The middleware wrapping the last app's ``wsgi_app``."""
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build the engine from ``app.config``, wrap ``app.wsgi_app`` and register the
        template global. Raises :class:`~compliance.errors.ConfigurationError` on bad
        settings and :class:`~compliance.errors.RuleError` on bad rule files, at start-up."""
        if _EXTENSION in app.extensions:
            raise RuntimeError("compliance is already set up for this app")
        settings = ComplianceSettings.from_prefixed(app.config)
        try:
            engine = self._engine if self._engine is not None else settings.build_engine()
        except ConfigurationError as exc:  # the engine's keys (rules, packs, variables...)
            given = [k for k in sorted(ENGINE_KEYS) if f"COMPLIANCE_{k.upper()}" in app.config]
            message = _as_configured(str(exc), given)
            if message == str(exc) and given:
                names = ", ".join(f"COMPLIANCE_{k.upper()}" for k in given)
                message = f"{names}: {message}"
            raise ConfigurationError(f"app.config: {message}") from exc
        options = {**settings.options, **self._options}
        try:
            middleware = ComplianceMiddleware(app.wsgi_app, engine, **options)
        except ConfigurationError as exc:
            configured = set(options) - set(self._options)  # the others were given in Python
            raise ConfigurationError(f"app.config: {_as_configured(str(exc), configured)}") from exc
        app.wsgi_app = middleware  # type: ignore[method-assign]
        app.extensions[_EXTENSION] = self
        app.jinja_env.globals["compliance_notices"] = compliance_notices
        self.engine = engine
        self.middleware = middleware


_LEADING_NAME = re.compile(r"[a-z][a-z0-9_]*(?=[: ])")


def _as_configured(message: str, configured: Collection[str]) -> str:
    """The core's message about an option ("fail_mode must be ...", "debug_networks: ...")
    with the option's name as ``app.config`` spells it (``COMPLIANCE_FAIL_MODE``).

    >>> _as_configured("debug_networks: 'zzz' is not an IP address", {"debug_networks"})
    "COMPLIANCE_DEBUG_NETWORKS: 'zzz' is not an IP address"
    """
    match = _LEADING_NAME.match(message)
    if match is None or match.group() not in configured:
        return message
    return f"COMPLIANCE_{match.group().upper()}{message[match.end() :]}"


def decision() -> Any:
    """The current request's :class:`~compliance.decision.Decision` (None when the
    middleware made none, e.g. after a fault in fail-open mode). The response then depends
    on the reader's location: whatever its type (JSON too), it gets ``Vary`` and
    ``Cache-Control: private`` as a page does."""
    from flask import request

    from compliance.core import read_decision

    return read_decision(request.environ)


def compliance_notices(
    lang: str | None = None,
    placement: str | None = None,
    css: bool = False,
    nonce: str | None = None,
) -> Markup:
    """The Jinja global: the reader's notices as markup, here in the template.

    ``{{ compliance_notices() }}``, or ``{{ compliance_notices(lang="en") }}`` with the
    page's language; ``css=True`` (and the page's CSP ``nonce``) adds the default style
    sheet. Notices rendered here are not injected again by the middleware. Outside a
    request (an e-mail, a CLI command rendering the site's layout): nothing.
    """
    from flask import has_request_context, request

    if not has_request_context():
        return Markup("")
    html = render_shared(request.environ, lang=lang, placement=placement, css=css, nonce=nonce)
    return Markup(html)  # built escaped by the renderer
