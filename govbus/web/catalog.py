"""The catalog pages: browse by department, category and share type; a resource in full; and
the article 17 search "who already holds this item?" (``SearchIndex``, as `govbus catalog
search`). Every logged-in account may read the whole catalog: it is the city's directory."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from govbus.vocabulary.spec import Resource
from govbus.web import labels
from govbus.web.console import Console, page
from govbus.web.forms import FormData

__all__ = ["ROUTES"]

PAGE_SIZE = 50


@page()
def _browse(request: Request, console: Console, _form: None) -> Response:
    query = FormData(request.query_params)
    spec = console.store.current()
    department = query.choice("department", [d.code for d in spec.departments], required=False)
    categories = sorted({r.category[0] for r in spec.resources if r.category})
    category = query.choice("category", categories, required=False)
    share_type = query.choice("share_type", list(labels.SHARE_TYPES), required=False)
    page_text = query.text("page", required=False, max_len=6) or "1"
    number = int(page_text) if page_text.isdigit() and int(page_text) > 0 else 1

    def chosen(r: Resource) -> bool:
        return (
            (department is None or r.provider == department)
            and (category is None or (r.category[:1] == (category,)))
            and (share_type is None or r.share_type == share_type)
        )

    found = [r for r in spec.resources if chosen(r)]
    pages = max(1, -(-len(found) // PAGE_SIZE))
    number = min(number, pages)
    shown = found[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
    return console.render(
        request,
        "catalog.html",
        {
            "departments": spec.departments,
            "names": {d.code: d.name for d in spec.departments},
            "categories": categories,
            "share_types": labels.SHARE_TYPES,
            "chosen": {"department": department, "category": category, "share_type": share_type},
            "resources": shown,
            "total": len(found),
            "page": number,
            "pages": pages,
        },
    )


@page()
def _resource(request: Request, console: Console, _form: None) -> Response:
    code = request.path_params["code"]
    spec = console.store.current()
    resource = spec.resource(code)
    if resource is None:
        return console.render(
            request,
            "error.html",
            {"title": "没有这个资源", "message": f"目录中没有资源 {code}；请用目录检索查找"},
            status=404,
        )
    names = {d.code: d.name for d in spec.departments}
    version = console.store.latest_number()
    return console.render(
        request, "resource.html", {"r": resource, "names": names, "version": version}
    )


@page()
def _search(request: Request, console: Console, _form: None) -> Response:
    query = FormData(request.query_params)
    text = query.text("q", required=False, max_len=100)
    hits = console.search_index().search(text, limit=30) if text else []
    return console.render(request, "search.html", {"q": text, "hits": hits})


ROUTES: list[BaseRoute] = [
    Route("/catalog", _browse),
    Route("/catalog/search", _search),
    Route("/catalog/r/{code:path}", _resource),
]
