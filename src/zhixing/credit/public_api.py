"""Anonymous JSON API of the published dishonest-debtor list (see :mod:`zhixing.credit.public`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from zhixing.cases.service import today
from zhixing.core import ratelimit
from zhixing.credit import public
from zhixing.web.deps import DbSession, client_ip
from zhixing.web.errors import ERROR_RESPONSES

public_router = APIRouter(prefix="/api/v1/public", responses=ERROR_RESPONSES,
                          tags=["public"])


def count_search(db: Session, request: Request) -> None:
    """One search against the client's allowance (429 with Retry-After once it is spent).
    Committed at once: a search that then fails validation or finds nothing still counts."""
    ratelimit.consume(db, f"dishonest:{client_ip(request)}", public.SEARCH_LIMIT,
                      public.SEARCH_WINDOW, "too many searches; try again later")
    db.commit()


@public_router.get("/dishonest", response_model=public.PublicPage)
def search_dishonest(
    request: Request,
    db: DbSession,
    # Checked in public.parse_search, not here, so every refusal carries its own code.
    name: Annotated[str | None, Query(
        description=f"the exact name of the listed person or organisation "
                    f"({public.NAME_MIN}-{public.NAME_MAX} characters)")] = None,
    id_number: Annotated[str | None, Query(
        description="optional: the full 18-character resident ID number or credit code")
    ] = None,
    province: Annotated[str | None, Query(
        description="optional: 2-digit province code (Guangxi: 45), of the court or of the "
                    "debtor's ID")] = None,
    page: Annotated[int | None, Query(description=f"1 to {public.MAX_PAGE}, "
                                                  f"{public.PAGE_SIZE} entries each")] = None,
) -> public.PublicPage:
    """Search the published dishonest-debtor list (失信被执行人名单) by exact name.

    Only listings in force whose grace period is over are found. Results are newest first,
    `total` is counted up to 1000. Rate-limited per client address (429 `rate_limited` with
    Retry-After). Refusals: 422 `name_required`, `invalid_name`, `invalid_id_number`,
    `invalid_province`, `invalid_page`."""
    count_search(db, request)
    query = public.parse_search(name, id_number, province, page)
    return public.search(db, query, today())
