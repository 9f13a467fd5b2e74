"""The web console (共享门户): ``govbus web serve``, for departments, data stewards, approvers and
the platform operator, in Chinese, server-rendered (Starlette + Jinja2) with a little hand-written
JavaScript (no build step).

Every page calls the services the CLI calls — ``CatalogStore`` and ``SearchIndex`` (catalog,
article 17 search), ``ShareRequests`` (articles 16-17), ``DisputeClient`` (article 19),
``plan_for`` and ``load_status`` (the reconciler) — and holds no rule of its own beyond who may
press which button (``govbus.accounts``: roles and rights). Modules: ``app`` (the ASGI app and
its error pages), ``auth`` (sessions, CSRF, the login rate limit), ``forms`` (server-side form
validation naming the field), ``catalog``, ``share``, ``disputes``, ``operator`` (the pages),
``server`` (uvicorn).
"""
