"""``settings.COMPLIANCE``: read once, checked, turned into an engine and core settings."""

from __future__ import annotations

from collections.abc import Mapping

from compliance.contrib import ComplianceSettings
from compliance.core import Middleware
from compliance.errors import ConfigurationError, RuleError
from compliance.metrics import Snapshot, Totals

__all__ = ["check_options", "compliance_settings", "metrics", "middleware_core", "relayed"]

# The counters of every core made for a middleware instance in this process, for
# metrics() (those of instances gone included).
_CORES = Totals()

WHERE = "settings.COMPLIANCE"


def compliance_settings() -> ComplianceSettings:
    """``settings.COMPLIANCE`` checked (an absent setting means every default)."""
    from django.conf import settings

    value = getattr(settings, "COMPLIANCE", None)
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{WHERE} must be a dict, not {type(value).__name__}")
    return ComplianceSettings.from_mapping(value, where=WHERE)


def check_options(settings: ComplianceSettings) -> None:
    """Check the middleware options' values as the middleware will (ConfigurationError)."""
    from compliance.core import Settings

    Settings.from_options(**settings.options)


def relayed(exc: ConfigurationError) -> str:
    """A configuration error's message as the settings' reader sees it."""
    message = str(exc)
    return message if message.startswith(WHERE) else f"{WHERE}: {message}"


def middleware_core() -> Middleware[None]:
    """The response core's settings and counters for one middleware instance, over the
    engine the settings describe. Raises ``ImproperlyConfigured`` on bad settings or rule
    files (``manage.py check`` reports the same problems one by one)."""
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings = compliance_settings()
        core: Middleware[None] = Middleware(None, settings.build_engine(), **settings.options)
    except RuleError as exc:
        problems = "\n".join(str(p) for p in exc.problems) or str(exc)
        raise ImproperlyConfigured(f"{WHERE}: rule files do not load:\n{problems}") from exc
    except ConfigurationError as exc:
        raise ImproperlyConfigured(relayed(exc)) from exc
    _CORES.add(core.counters, core.engine)
    return core


def metrics() -> Snapshot:
    """The counters of every Django compliance middleware this process made, added up (a
    server usually makes one per worker process; Django's test client one per client):
    those of middlewares gone stay in, so the sums never go down."""
    return _CORES.snapshot()
