"""The public page of the dishonest-debtor list: no login, a GET form, result cards."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from zhixing.cases.service import today
from zhixing.core.errors import DomainError, RateLimited
from zhixing.credit import public
from zhixing.credit.public_api import count_search
from zhixing.web.deps import DbSession
from zhixing.web.templating import render
from zhixing.web.terms import N_

router = APIRouter(include_in_schema=False)

TEMPLATE = "credit/public_search.html"
# The page shows a sentence per refusal code; any other code shows the service's message.
ERROR_TEXT = {
    "name_required": N_("Enter the name of the person or organisation."),
    "invalid_name": N_("A name has 2 to 64 characters."),
    "invalid_id_number": N_(
        "Enter the full 18-character ID number or unified social credit code."),
    "invalid_province": N_("Choose a province from the list."),
    "invalid_page": N_("There is no such page; narrow the search to see more."),
    "rate_limited": N_("Too many searches. Please wait a minute and try again."),
}


@router.get("/dishonest")
def dishonest_search(
    request: Request,
    db: DbSession,
    # Unbounded here: public.parse_search refuses bad values with a code the page can show.
    name: Annotated[str | None, Query()] = None,
    id_number: Annotated[str | None, Query()] = None,
    province: Annotated[str | None, Query()] = None,
    page: Annotated[str | None, Query()] = None,
) -> Response:
    form = {"name": name or "", "id_number": id_number or "", "province": province or ""}
    context: dict[str, Any] = {"form": form, "provinces": PROVINCE_NAMES}
    if name is None and id_number is None:
        return render(request, TEMPLATE, context)  # the empty form is not a search
    try:
        count_search(db, request)
        # A page that is not a number is as wrong as page 0: the same refusal.
        at = None if not page else (
            int(page) if page.isascii() and page.isdigit() and len(page) <= 4 else 0)
        query = public.parse_search(name, id_number, province, at)
        result = public.search(db, query, today())
    except DomainError as exc:
        status = 429 if isinstance(exc, RateLimited) else exc.status_code
        context["error"] = {"code": exc.code, "message": ERROR_TEXT.get(exc.code),
                            "raw": exc.message}
        response = render(request, TEMPLATE, context, status_code=status)
        if isinstance(exc, RateLimited):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    context["result"] = result
    context["grounds"] = public.GROUNDS
    context["performance_labels"] = public.PERFORMANCE_LABELS
    context["page_url"] = lambda n: "/dishonest?" + urlencode(
        {k: v for k, v in (("name", query.name), ("id_number", query.id_number or ""),
                           ("province", query.province or ""), ("page", str(n))) if v})
    return render(request, TEMPLATE, context)


# Province names for the filter (GB/T 2260), in the language of the page via the catalog.
PROVINCE_NAMES: tuple[tuple[str, str], ...] = (
    ("45", N_("Guangxi")),
    ("11", N_("Beijing")), ("12", N_("Tianjin")), ("13", N_("Hebei")),
    ("14", N_("Shanxi")), ("15", N_("Inner Mongolia")),
    ("21", N_("Liaoning")), ("22", N_("Jilin")),
    ("23", N_("Heilongjiang")), ("31", N_("Shanghai")),
    ("32", N_("Jiangsu")), ("33", N_("Zhejiang")), ("34", N_("Anhui")),
    ("35", N_("Fujian")), ("36", N_("Jiangxi")), ("37", N_("Shandong")),
    ("41", N_("Henan")), ("42", N_("Hubei")), ("43", N_("Hunan")),
    ("44", N_("Guangdong")), ("46", N_("Hainan")),
    ("50", N_("Chongqing")), ("51", N_("Sichuan")),
    ("52", N_("Guizhou")), ("53", N_("Yunnan")), ("54", N_("Tibet")),
    ("61", N_("Shaanxi")), ("62", N_("Gansu")), ("63", N_("Qinghai")),
    ("64", N_("Ningxia")), ("65", N_("Xinjiang")), ("71", N_("Taiwan")),
    ("81", N_("Hong Kong")), ("82", N_("Macao")),
)
