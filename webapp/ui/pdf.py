"""Printable pages as PDF (WeasyPrint): the notices a hall hands out, with their Chinese text in an embedded
CJK font. The page is the same HTML the browser prints; only the stylesheet and nothing from outside is read."""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from flask import Response, abort, make_response
from flask_babel import gettext as _

STATIC = Path(__file__).resolve().parent / "static"
# the fonts a Debian or Ubuntu machine gets from fonts-wqy-zenhei or fonts-noto-cjk; WeasyPrint embeds the
# glyphs used (subset), so the PDF reads the same on a machine without them
PDF_CSS = """@page { size: A4; margin: 18mm 16mm }
body { font-family: "WenQuanYi Zen Hei", "Noto Sans CJK SC", "Source Han Sans SC", sans-serif; background: #fff }
main { max-width: none; margin: 0; padding: 0 }"""


@lru_cache(maxsize=1)
def has_chinese_font() -> bool:
    if not shutil.which("fc-list"):
        return False
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True, timeout=10)
    return bool(listed.stdout.strip())


def _only_static():
    """WeasyPrint's fetcher: the app's own stylesheet from disk and inline data, nothing over the network (no
    requests back to this server, no address a page could smuggle in)."""
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class OnlyStatic(URLFetcher):
        def fetch(self, url, headers=None):
            marker = "/static/"
            if marker in url:
                name = url.split(marker, 1)[1].split("?", 1)[0]
                path = (STATIC / name).resolve()
                if path.parent == STATIC and path.suffix == ".css" and path.is_file():
                    return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": "text/css; charset=utf-8"})
            if url.startswith("data:"):
                return super().fetch(url, headers)
            raise ValueError(f"not fetched for a PDF: {url[:100]}")

    return OnlyStatic(allowed_protocols=("data", "http"))


def as_pdf(html: str, filename: str) -> Response:
    """The page as a PDF download; 503 with a plain reason when the machine has no Chinese font."""
    if not has_chinese_font():
        abort(503, _("本机未安装中文字体，暂不能生成 PDF（请安装 fonts-wqy-zenhei 或 fonts-noto-cjk），"
                     "可先用浏览器打印网页版。"))
    from weasyprint import CSS, HTML

    document = HTML(string=html, base_url="http://onewindow.invalid/", url_fetcher=_only_static())
    data = document.write_pdf(stylesheets=[CSS(string=PDF_CSS)])
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    return response
