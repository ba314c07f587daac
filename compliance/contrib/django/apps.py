"""The Django app: ``INSTALLED_APPS = [..., "compliance.contrib.django"]`` gives the
``{% load compliance %}`` template tags and the system checks."""

from __future__ import annotations

from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance.contrib.django"
    label = "compliance"
    verbose_name = "Compliance notices"

    def ready(self) -> None:
        from compliance.contrib.django import checks  # noqa: F401  (registers the checks)
