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

from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from compliance.contrib import ComplianceSettings
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
        engine = self._engine if self._engine is not None else settings.build_engine()
        options = {**settings.options, **self._options}
        try:
            middleware = ComplianceMiddleware(app.wsgi_app, engine, **options)
        except ConfigurationError as exc:
            # The core names the option ("fail_mode must be ..."); say it as configured.
            message = str(exc)
            name = message.split(" ", 1)[0]
            if name in options and name not in self._options:
                message = f"COMPLIANCE_{name.upper()}{message[len(name) :]}"
            raise ConfigurationError(f"app.config: {message}") from exc
        app.wsgi_app = middleware  # type: ignore[method-assign]
        app.extensions[_EXTENSION] = self
        app.jinja_env.globals["compliance_notices"] = compliance_notices
        self.engine = engine
        self.middleware = middleware


def decision() -> Any:
    """The current request's :class:`~compliance.decision.Decision` (None when the
    middleware made none, e.g. after a fault in fail-open mode)."""
    from flask import request

    return request.environ.get("compliance.decision")


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
