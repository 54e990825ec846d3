"""App factory for `uvicorn --factory bench.reports.server:app` (settings from TOCSIN_* variables)."""


def app():
    from tocsin.app import create_app
    from tocsin.settings import Settings

    return create_app(Settings())
