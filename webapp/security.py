"""What every response carries and who may read the operational endpoints.

- Headers on every response: a Content-Security-Policy without inline script (the pages' scripts are
  files under /static), no framing (`frame-ancestors 'none'` and X-Frame-Options), nosniff, and a
  same-origin Referrer-Policy.
- Cookies are marked Secure with ONEWINDOW_SECURE_COOKIES=1, or when the request itself came over HTTPS.
- /metrics answers a bearer token (ONEWINDOW_METRICS_TOKEN) or a client address on the allow list
  (ONEWINDOW_METRICS_ALLOW, addresses or networks, comma separated; default: this machine only).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from urllib.parse import urlsplit

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


class _SessionInterface(SecureCookieSessionInterface):
    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def local_path(target: str | None) -> str | None:
    """`target` if it is a path on this site, else None (never an open redirect)."""
    if not target:
        return None
    cleaned = "".join(ch for ch in target if ch > " ")  # browsers drop tabs, newlines and control characters
    parts = urlsplit(cleaned)
    if parts.scheme or parts.netloc or not cleaned.startswith("/") or cleaned.startswith("//") \
            or "\\" in cleaned:
        return None
    return cleaned


def metrics_allowed() -> bool:
    token = os.environ.get("ONEWINDOW_METRICS_TOKEN", "")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip(), token):
        return True
    allowed = [a.strip() for a in os.environ.get("ONEWINDOW_METRICS_ALLOW", "127.0.0.1/8,::1").split(",")
               if a.strip()]
    try:
        client = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    for entry in allowed:
        try:
            if client in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def register(app: Flask) -> None:
    secure = os.environ.get("ONEWINDOW_SECURE_COOKIES", "") == "1"
    app.config["SESSION_COOKIE_SECURE"] = secure
    app.config["REMEMBER_COOKIE_SECURE"] = secure
    app.session_interface = _SessionInterface()

    @app.after_request
    def _headers(response):
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        if response.status_code == 405 and "Allow" not in response.headers:
            rule_methods = _allowed_methods()
            if rule_methods:
                response.headers["Allow"] = ", ".join(rule_methods)
        return response


def _allowed_methods() -> list[str]:
    from flask import current_app

    adapter = current_app.url_map.bind_to_environ(request.environ)
    return sorted(adapter.allowed_methods(request.path))
