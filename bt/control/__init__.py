"""The daemon's control API: HTTP + JSON on twisted.web, bearer token, Prometheus metrics.

:class:`~bt.control.service.ControlService` is what tap.py adds to the
application; :mod:`bt.control.files` is what the CLI reads to find it. The
API is documented in docs/api.rst and served as OpenAPI 3.1 at
``/api/v1/openapi.json``.
"""
