"""The API documentation pages in real headless Chromium, with every request off this server refused:
/docs (Swagger UI) and /redoc render the OpenAPI from vendored assets, as on a network with no internet."""

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.committing]


@pytest.fixture
def offline_page(browser, live_server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.outside = []  # type: ignore[attr-defined]

    def only_this_server(route):
        if route.request.url.startswith(live_server.url):
            return route.continue_()
        page.outside.append(route.request.url)  # type: ignore[attr-defined]
        return route.abort()

    page.route("**/*", only_this_server)
    yield page
    context.close()


def test_swagger_ui_renders_offline(offline_page, live_server):
    offline_page.goto(f"{live_server.url}/docs")
    # Swagger UI lists an operation of each tag once it has fetched and rendered /openapi.json.
    offline_page.wait_for_selector('.opblock-summary-path[data-path="/v1/reports"]', timeout=15_000)
    assert offline_page.locator(".opblock").count() > 20
    assert offline_page.outside == []  # type: ignore[attr-defined]


def test_redoc_renders_offline(offline_page, live_server):
    offline_page.goto(f"{live_server.url}/redoc")
    offline_page.wait_for_selector("text=Submit an outage or hazard report", timeout=15_000)
    # ReDoc's bundle asks for its own "API docs by Redocly" logo from its CDN, a decoration the page
    # renders without; nothing the documentation needs comes from outside.
    assert [u for u in offline_page.outside if not u.startswith("https://cdn.redoc.ly/redoc/logo")] == []
