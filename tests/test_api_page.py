"""The interactive API page: served by us with every file it loads (it works offline), public
like the API's description, and able to call the API with a token."""

from __future__ import annotations

import re

from flask import Flask

from tests.helpers import API


def test_the_page_and_every_file_it_loads_are_ours_and_need_no_sign_in(app: Flask) -> None:
    anonymous = app.test_client()
    page = anonymous.get(f"{API}/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    loaded = re.findall(r'(?:src|href|url): ?"([^"]+)"|(?:src|href)="([^"]+)"', html)
    urls = [a or b for a, b in loaded]
    assert f"{API}/openapi.json" in urls
    assert len(urls) >= 4  # the spec, two scripts, a style sheet
    for url in urls:
        assert url.startswith(f"{API}/"), url  # nothing from a CDN: the page works offline
        answer = anonymous.get(url)
        assert answer.status_code == 200 and len(answer.get_data()) > 1000, url
        if url.endswith(".js"):
            assert "javascript" in answer.mimetype
    assert anonymous.get(f"{API}/docs/assets/../../setup.cfg").status_code == 404
    assert anonymous.get(f"{API}/docs/assets/missing.js").status_code == 404


def test_the_page_can_call_the_api_with_a_token(app: Flask, admin_token: str) -> None:
    spec = app.test_client().get(f"{API}/openapi.json").get_json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer"}  # its Authorize dialog
    assert any(path == f"{API}/job" for path in spec["paths"])  # paths from the page's origin
    called = app.test_client().get(f"{API}/job", headers={"Authorization": f"Bearer {admin_token}"})
    assert called.status_code == 200 and called.get_json()["status"] == 0
