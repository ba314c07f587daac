"""Jurisdiction-aware legal notices for Python web applications.

>>> from compliance import Engine
>>> engine = Engine.from_paths()
>>> engine.decide(ip="77.88.55.88").notices[0].rule_id
'ru-undesirable-organization'
"""

import importlib
import typing

from .__about__ import __version__

if typing.TYPE_CHECKING:
    from .client import ClientAddress, TrustedProxies, resolve_client
    from .decision import (
        BlockMatch,
        Decision,
        EngineProtocol,
        NoticeMatch,
        Request,
        TraceEntry,
        WithholdMatch,
    )
    from .engine import Engine
    from .errors import (
        ComplianceError,
        ComplianceFault,
        ConfigurationError,
        GeoDatabaseError,
        Problem,
        RuleError,
        VariableMissing,
    )
    from .geo import (
        UNKNOWN,
        ChainGeolocator,
        EmbeddedGeolocator,
        Geolocator,
        HeaderGeolocator,
        Location,
        MaxMindGeolocator,
        Provider,
        RequestLocation,
        get_provider,
        locate_request,
        open_geolocator,
        register_provider,
        registered_providers,
    )
    from .loader import RuleSet, bundled_packs, bundled_rules_path, lint, load_rules
    from .metrics import Metrics
    from .ruletests import TestOutcome, run_rule_tests

# Names are imported on first use, so that `import compliance.wsgi` (or
# `compliance.decision`) does not load the engine, the rule loader and pydantic.
_LAZY = {
    "BlockMatch": "decision",
    "ChainGeolocator": "geo",
    "ClientAddress": "client",
    "ComplianceError": "errors",
    "ComplianceFault": "errors",
    "ConfigurationError": "errors",
    "Decision": "decision",
    "EmbeddedGeolocator": "geo",
    "Engine": "engine",
    "EngineProtocol": "decision",
    "Metrics": "metrics",
    "Provider": "geo",
    "RequestLocation": "geo",
    "get_provider": "geo",
    "locate_request": "geo",
    "register_provider": "geo",
    "registered_providers": "geo",
    "GeoDatabaseError": "errors",
    "Geolocator": "geo",
    "HeaderGeolocator": "geo",
    "Location": "geo",
    "MaxMindGeolocator": "geo",
    "NoticeMatch": "decision",
    "Problem": "errors",
    "Request": "decision",
    "RuleError": "errors",
    "RuleSet": "loader",
    "TestOutcome": "ruletests",
    "TraceEntry": "decision",
    "TrustedProxies": "client",
    "UNKNOWN": "geo",
    "VariableMissing": "errors",
    "WithholdMatch": "decision",
    "__version__": "__about__",
    "bundled_packs": "loader",
    "bundled_rules_path": "loader",
    "lint": "loader",
    "load_rules": "loader",
    "open_geolocator": "geo",
    "resolve_client": "client",
    "run_rule_tests": "ruletests",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "UNKNOWN",
    "BlockMatch",
    "ChainGeolocator",
    "ClientAddress",
    "ComplianceError",
    "ComplianceFault",
    "ConfigurationError",
    "Decision",
    "EmbeddedGeolocator",
    "Engine",
    "EngineProtocol",
    "GeoDatabaseError",
    "Geolocator",
    "HeaderGeolocator",
    "Location",
    "MaxMindGeolocator",
    "Metrics",
    "NoticeMatch",
    "Problem",
    "Provider",
    "Request",
    "RequestLocation",
    "RuleError",
    "RuleSet",
    "TestOutcome",
    "TraceEntry",
    "TrustedProxies",
    "VariableMissing",
    "WithholdMatch",
    "__version__",
    "bundled_packs",
    "bundled_rules_path",
    "get_provider",
    "lint",
    "load_rules",
    "locate_request",
    "open_geolocator",
    "register_provider",
    "registered_providers",
    "resolve_client",
    "run_rule_tests",
]
