"""Indicators benchmark: every indicator for the region and for single courts over a year, the
big screen's server time and (optionally) its first paint in Chromium.

    .venv/bin/python -m bench.indicators --url postgresql+psycopg://postgres@127.0.0.1/DB
    .venv/bin/python -m bench.indicators --url ... --browser   # also measure first paint

Run it on a database filled by ``bench.cases --keep`` (1,000,000 cases).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.stats import percentile  # noqa: E402

os.environ.setdefault("ZHIXING_LOG_JSON", "false")




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="database with benchmark cases")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--year", type=int, default=None, help="default: the busiest year")
    parser.add_argument("--browser", action="store_true", help="measure the screen's paint")
    args = parser.parse_args()
    os.environ["ZHIXING_DATABASE_URL"] = args.url

    from sqlalchemy import func, select

    from zhixing.analytics import indicators as ind
    from zhixing.analytics import service
    from zhixing.cases.models import Case
    from zhixing.cases.service import today
    from zhixing.core.db import make_engine, session_factory, set_engine
    from zhixing.courts.identity import actor_for
    from zhixing.courts.models import Court, User

    set_engine(make_engine(args.url))
    rows: list[tuple[str, str]] = []
    with session_factory()() as s:
        total = s.scalar(select(func.count()).select_from(Case)) or 0
        year = args.year or int(s.scalar(
            select(func.extract("year", Case.filed_on)).group_by(
                func.extract("year", Case.filed_on)).order_by(func.count().desc()).limit(1))
            or today().year)
        period = ind.Period(date(year, 1, 1), date(year, 12, 31))
        all_ids = list(s.scalars(select(Court.id)))
        busiest = s.execute(select(Case.court_id, func.count()).group_by(Case.court_id)
                            .order_by(func.count().desc()).limit(1)).one()[0]
        basic = s.scalar(select(Court).where(Court.id == busiest))
        assert basic is not None
        city = s.scalar(select(Court).where(Court.id == basic.parent_id))
        assert city is not None
        admin = s.scalar(select(User).where(User.username == "gx.duty"))
        assert admin is not None
        actor = actor_for(s, admin, "127.0.0.1")

        def timed(label: str, fn: object) -> None:
            samples = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                fn()  # type: ignore[operator]
                samples.append((time.perf_counter() - t0) * 1000)
            p50, p95 = statistics.median(samples), percentile(samples, 95)
            rows.append((label, f"{p50:.1f} / {p95:.1f} ms"))

        region_ids = all_ids
        city_ids = list(s.scalars(select(Court.id).where(Court.path.startswith(city.path))))
        timed(f"region ({len(region_ids)} courts), year {year}, all indicators",
              lambda: ind.figures(ind.rollup(ind.components_by_court(
                  s, region_ids, period, today()), region_ids)))
        timed(f"one city ({city.short_name_zh}, {len(city_ids)} courts), year",
              lambda: ind.figures(ind.rollup(ind.components_by_court(
                  s, city_ids, period, today()), city_ids)))
        timed(f"one basic court ({basic.short_name_zh}, the busiest), year",
              lambda: ind.figures(ind.rollup(ind.components_by_court(
                  s, [basic.id], period, today()), [basic.id])))
        timed("region report with 14 city rows (the /indicators page's query work)",
              lambda: service.report(s, actor, "桂", period))
        timed("big screen data (counters, map, trend, ticker, ranking)",
              lambda: (service.city_shading(service.report(s, actor, "桂",
                                                           service.parse_period(None, None)),
                                            "conclusion_rate"),
                       service.live_counters(s, region_ids),
                       service.monthly_trend(s, actor, "桂"),
                       service.ticker(s, region_ids, max(0, service.last_event_id(s) - 20))))
    if args.browser:
        rows.append(("big screen in Chromium (loopback): first contentful paint; figures",
                     _first_paint(args.url)))
    print(f"\n{total:,} cases; runs per figure: {args.runs}; p50 / p95\n")
    print("| figure | p50 / p95 |\n|---|---|")
    for label, value in rows:
        print(f"| {label} | {value} |")


def _first_paint(url: str) -> str:
    from tests.support.browser import chromium, console_page
    from tests.support.server import running_server

    from zhixing.demo import DEMO_PASSWORD

    samples = []
    loaded = []
    with running_server(url, ZHIXING_EMBEDDED_WORKER="false") as base, chromium() as browser:
        page, _errors = console_page(browser, base, "gx.duty", DEMO_PASSWORD, width=1920,
                                     height=1080)
        for _ in range(5):
            page.goto(f"{base}/screen")
            page.wait_for_selector("body[data-loaded='1']")
            fcp = page.evaluate(
                "() => performance.getEntriesByName('first-contentful-paint')[0].startTime")
            samples.append(float(fcp))
            loaded.append(float(page.evaluate("() => performance.now()")))
    return (f"first paint {statistics.median(samples):.0f} / {max(samples):.0f} ms; figures "
            f"drawn {statistics.median(loaded):.0f} / {max(loaded):.0f} ms (median / max of 5)")


if __name__ == "__main__":
    main()
