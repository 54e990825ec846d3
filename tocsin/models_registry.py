"""Import every package's tables so cross-package foreign keys resolve; called by entry points."""


def load() -> None:
    import accounts.models  # noqa: F401
    import alerts.models  # noqa: F401
    import dispatch.models  # noqa: F401
    import geo.models  # noqa: F401
    import ingest.models  # noqa: F401
