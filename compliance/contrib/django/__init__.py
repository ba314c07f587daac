"""Django: a middleware, a template tag, system checks.

::

    # settings.py
    INSTALLED_APPS = [..., "compliance.contrib.django"]      # template tag and checks
    MIDDLEWARE = [..., "compliance.contrib.django.ComplianceMiddleware"]
    COMPLIANCE = {
        "packs": ["russia"],                                # bundled packs (default: russia)
        "rules": [BASE_DIR / "rules"],                      # and/or your own rule files
        "geoip_db": "/var/lib/GeoIP/GeoLite2-City.mmdb",    # default: embedded lookup
        "trusted_proxies": ["10.0.0.0/8"],
    }

``COMPLIANCE`` keys: ``rules``, ``packs``, ``geoip_db``, ``variables``, ``watch`` or a ready
``engine``, and every option of :class:`compliance.wsgi.ComplianceMiddleware`
(``trusted_proxies``, ``forwarded_header``, ``geo_header``, ``fail_mode``,
``cache_policy``, ``csp_nonce``, ``css``, ``decision_path``, ``simulate_from``, ...). An
unknown key is an error. The middleware is sync and async capable and sets
``request.compliance`` to the reader's decision; ``{% load compliance %}`` then
``{% compliance_notices %}`` renders the notices where a template wants them, and
``manage.py check`` reports rule-file problems as ``FILE:LINE:COL`` and a database that is
missing. :func:`metrics` adds up the counters of the process's middlewares (for
``compliance.contrib.prometheus.ComplianceCollector(compliance.contrib.django.metrics)``).
"""

from __future__ import annotations

from compliance.contrib.django.conf import metrics
from compliance.contrib.django.middleware import ComplianceMiddleware

__all__ = ["ComplianceMiddleware", "metrics"]
