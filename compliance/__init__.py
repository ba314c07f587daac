"""Jurisdiction-aware legal notices for Python web applications."""
