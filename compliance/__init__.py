"""Jurisdiction-aware legal notices for Python web applications.

>>> from compliance import Engine
>>> engine = Engine.from_paths()
>>> engine.decide(ip="77.88.55.88").notices[0].rule_id
'ru-undesirable-organization'
"""

from .__about__ import __version__
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
)
from .geo import (
    UNKNOWN,
    ChainGeolocator,
    EmbeddedGeolocator,
    Geolocator,
    HeaderGeolocator,
    Location,
    MaxMindGeolocator,
    open_geolocator,
)
from .loader import RuleSet, bundled_packs, bundled_rules_path, lint, load_rules
from .ruletests import TestOutcome, run_rule_tests

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
    "NoticeMatch",
    "Problem",
    "Request",
    "RuleError",
    "RuleSet",
    "TestOutcome",
    "TraceEntry",
    "TrustedProxies",
    "WithholdMatch",
    "__version__",
    "bundled_packs",
    "bundled_rules_path",
    "lint",
    "load_rules",
    "open_geolocator",
    "resolve_client",
    "run_rule_tests",
]
