"""The ``zhixing`` command."""

from __future__ import annotations

import getpass
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

app = typer.Typer(help="Zhixing (执行): judgment-enforcement command platform.",
                  no_args_is_help=True, add_completion=False)
audit_app = typer.Typer(help="Audit trail tools.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
analytics_app = typer.Typer(help="Indicator tools.", no_args_is_help=True)
app.add_typer(analytics_app, name="analytics")
linkage_app = typer.Typer(help="Linked units (banks and departments).", no_args_is_help=True)
app.add_typer(linkage_app, name="linkage")


def _migrate_and_seed(sync_courts: bool = False) -> None:
    from sqlalchemy import select

    from zhixing.core.db import transaction
    from zhixing.core.migrate import upgrade
    from zhixing.courts import service
    from zhixing.courts.models import Court

    upgrade()
    with transaction() as session:
        # The built-in court list seeds an empty database only: a court's own reference data
        # (`zhixing load-reference`) must not be reverted by the next upgrade's migrate.
        if not sync_courts and session.scalar(select(Court.id).limit(1)) is not None:
            return
        result = service.sync_courts(session)
    if result.created or result.updated:
        typer.echo(f"courts: {result.created} created, {result.updated} updated")


@app.command()
def migrate(
    sync_courts: Annotated[bool, typer.Option(
        "--sync-courts", help="apply the built-in Guangxi court list again (it is loaded by "
                              "itself only into an empty database)")] = False,
) -> None:
    """Bring the database schema to the newest migration; an empty database also gets the
    built-in court reference data."""
    _migrate_and_seed(sync_courts)
    typer.echo("database is at the newest migration")


def _serve(host: str, port: int, workers: int) -> None:
    import uvicorn

    uvicorn.run("zhixing.app:build", factory=True, host=host, port=port, workers=workers,
                proxy_headers=True, log_config=None, access_log=False)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (ZHIXING_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (ZHIXING_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="API processes")] = 1,
    migrate_first: Annotated[bool, typer.Option("--migrate/--no-migrate",
                                                help="run migrations at start-up")] = True,
) -> None:
    """Run the API, the web console and (unless ZHIXING_EMBEDDED_WORKER=false) a job worker."""
    from zhixing.core.settings import get_settings

    settings = get_settings()
    if migrate_first:
        _migrate_and_seed()
    _serve(host or settings.host, port or settings.port, workers)


@app.command()
def worker() -> None:
    """Run a standalone job worker until SIGTERM or Ctrl-C. Run as many as you like."""
    from zhixing.core import logging as zlogging
    from zhixing.core.jobs import Worker
    from zhixing.core.settings import get_settings
    from zhixing.worker import prepare

    zlogging.configure(get_settings().log_json)
    prepare()
    w = Worker()

    def _stop(_sig: int, _frame: FrameType | None) -> None:
        w.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    w.run_forever()


@app.command()
def demo(
    db_file: Annotated[Path, typer.Option(help="SQLite file for the demo")] = Path(
        "zhixing-demo.db"
    ),
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve",
                                              help="start the server after seeding")] = True,
    cases: Annotated[int, typer.Option(min=3, help="demo enforcement cases to create")] = 2000,
) -> None:
    """Create a fresh demo database with demo data, then serve it, printing the URL and logins."""
    from zhixing.analytics.aggregates import rebuild
    from zhixing.command import demo as command_demo
    from zhixing.core.db import reset_engine, session_factory, transaction
    from zhixing.core.settings import get_settings
    from zhixing.credit import onboarding as credit_onboarding
    from zhixing.demo import DEMO_PASSWORD, DEMO_USERS, seed_users
    from zhixing.demo_data.cases import seed_cases
    from zhixing.field import resources as field_resources
    from zhixing.linkage import onboarding

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)
    os.environ["ZHIXING_DATABASE_URL"] = f"sqlite:///{db_file.resolve()}"
    get_settings.cache_clear()
    reset_engine()
    _migrate_and_seed()
    with transaction() as session:
        seed_users(session)
    typer.echo(f"creating {cases} demo cases through the case services (about 20 s per 1,000 "
               "on SQLite) ...")
    with session_factory()() as session:
        report = seed_cases(session, count=cases)
        session.commit()
    with transaction() as session:
        rebuild(session)  # indicator days in one pass instead of one refresh per marked day
    with transaction() as session:
        command_demo.seed_command(session)  # duty rosters at all 126 centers, a few requests
        field_resources.seed_field(session)  # teams, 127 vehicles, 320 devices, 90 vehicle sets
    typer.echo(f"{report.cases} cases, {report.parties} parties in {report.seconds:.0f} s")
    typer.echo("")
    typer.echo(f"Zhixing demo: http://{host}:{port}/   (database {db_file})")
    typer.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for u in DEMO_USERS:
        typer.echo(f"  {u.username:<18} {u.court_code:<7} {','.join(u.roles):<26} {u.story}")
    typer.echo("The seed's stories:")
    for story, number in report.stories.items():
        typer.echo(f"  {story:<6} {number}")
    typer.echo("")
    config_file = db_file.resolve().parent / "zhixing-demo-units.json"
    ledgers = db_file.resolve().parent / "zhixing-demo-ledgers"
    with transaction() as session:
        config = onboarding.simulated_units(session, f"http://{host}:{port}")
    onboarding.write_secret_file(config_file, config)
    typer.echo(f"{len(config['units'])} linked units onboarded; their simulator: {config_file}")
    with transaction() as session:
        partner_demo = credit_onboarding.demo_partners(session)
    partners_file = db_file.resolve().parent / "zhixing-demo-partners.json"
    onboarding.write_secret_file(partners_file, partner_demo)
    typer.echo(f"partner agencies loaded; demo keys of {', '.join(partner_demo['keys'])}: "
               f"{partners_file}")
    if partner_demo["listed"]:
        person = partner_demo["listed"]
        typer.echo("Partner screening, live: the airline checks a listed debtor "
                   f"({person['name']}):")
        body = json.dumps({"activities": ["flight"], "people": [
            {"ref": "1", "id_number": person["id_number"]}]}, ensure_ascii=False)
        typer.echo(f"  curl -s -H 'Authorization: Bearer {partner_demo['keys']['caac']}' "
                   f"-H 'Content-Type: application/json' -d {shlex.quote(body)} "
                   f"http://{host}:{port}/api/v1/partner/screen")
    liu_id = _liu_id_number(report.stories.get("liu"))
    typer.echo("Liu story, live: log in as qingxiu.officer, open case "
               f"{report.stories.get('liu')}, start a network query (网络查控) and freeze the ICBC "
               "account it finds; then make money arrive and watch it frozen:")
    typer.echo(f"  .venv/bin/zhixing simulate-credit --ledger-dir {ledgers} --unit bank-icbc "
               f"--id-number {liu_id} --amount-fen 48000000")
    typer.echo("")
    if serve_after:
        shutil.rmtree(ledgers, ignore_errors=True)
        simulator = subprocess.Popen(  # noqa: S603 (our own command)
            [sys.executable, "-m", "zhixing.cli", "simulate-units", "--config",
             str(config_file), "--ledger-dir", str(ledgers), "--long-poll", "20",
             # 45 interpreters would take a laptop's memory; a few processes of threads do.
             "--processes", "4"])
        try:
            _serve(host, port, 1)
        finally:
            simulator.terminate()
            simulator.wait(timeout=30)


def _liu_id_number(case_number: str | None) -> str:
    from sqlalchemy import select

    from zhixing.cases.models import Case, CaseParty, Party
    from zhixing.core.db import transaction

    with transaction() as session:
        number = session.scalar(
            select(Party.id_number).join(CaseParty, CaseParty.party_id == Party.id)
            .join(Case, Case.id == CaseParty.case_id)
            .where(Case.case_number == case_number, CaseParty.role == "debtor"))
    return number or "?"


@app.command("create-user")
def create_user(
    username: Annotated[str, typer.Argument(help="login name")],
    court: Annotated[str, typer.Option(help="court code, e.g. 桂0103")],
    role: Annotated[list[str], typer.Option(help="role (repeat for several)")],
    display_name: Annotated[str | None, typer.Option(help="name shown in the console")] = None,
    password_env: Annotated[str | None, typer.Option(
        help="read the password from this environment variable instead of prompting")] = None,
) -> None:
    """Create a console user (the first administrator, or scripted provisioning)."""
    from zhixing.core.actor import SYSTEM
    from zhixing.core.db import transaction
    from zhixing.core.errors import DomainError
    from zhixing.courts.identity import create_user as do_create

    if password_env:
        password = os.environ.get(password_env, "")
    else:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Repeat: "):
            typer.echo("passwords differ", err=True)
            raise typer.Exit(2)
    try:
        with transaction() as session:
            user = do_create(session, SYSTEM, username=username,
                             display_name=display_name or username, court_code=court,
                             password=password, roles=role)
            typer.echo(f"created user {user.username} (id {user.id}) in {court}")
    except DomainError as exc:
        typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise typer.Exit(2) from None


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the audit hash chain; exit 1 naming the first record altered or removed."""
    from zhixing.core.audit import verify_chain
    from zhixing.core.db import session_factory

    with session_factory()() as session:
        result = verify_chain(session)
    if result.ok:
        typer.echo(f"audit chain intact: {result.checked} records, head {result.head_hash}")
        return
    typer.echo(f"audit chain BROKEN at record {result.first_bad_seq}: {result.problem} "
               f"({result.checked} records verified before it)", err=True)
    sys.exit(1)


@analytics_app.command("rebuild")
def analytics_rebuild() -> None:
    """Recompute the pre-aggregated indicator days from the case records (after a bulk load or
    an import; the platform otherwise keeps them up to date by itself)."""
    import time

    from zhixing.analytics.aggregates import rebuild
    from zhixing.core.db import transaction

    start = time.perf_counter()
    with transaction() as session:
        rows = rebuild(session)
    typer.echo(f"indicator days rebuilt: {rows} rows in {time.perf_counter() - start:.1f} s")


@app.command("simulate-units")
def simulate_units(
    config: Annotated[Path, typer.Option(exists=True, dir_okay=False,
                                         help="simulator configuration (JSON) the platform wrote")],
    ledger_dir: Annotated[Path, typer.Option(help="directory of the units' ledgers "
                                                  "(one SQLite file per unit)")],
    only: Annotated[list[str] | None, typer.Option(
        help="run only this unit code (repeat for several)")] = None,
    poll_interval: Annotated[float, typer.Option(min=0.01, help="seconds between polls when idle")
                             ] = 0.2,
    long_poll: Annotated[int, typer.Option(min=0, max=30, help=(
        "pull units wait this many seconds for tasks when idle (long poll; 0: poll)"))] = 0,
    latency_ms: Annotated[int, typer.Option(min=0, help="delay before a task is answered")] = 0,
    jitter_ms: Annotated[int | None, typer.Option(min=0, help="latency spread (default: half)")
                         ] = None,
    fail_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help=(
        "pull: answer a task failed/unit_error; push: answer a push 503"))] = 0.0,
    malformed_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help=(
        "post an invalid copy of an answer before the answer"))] = 0.0,
    duplicate_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help=(
        "post an answer or event a second time"))] = 0.0,
    timeout_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help=(
        "leave a task (pull) or a push unanswered for --hang-seconds"))] = 0.0,
    hang_seconds: Annotated[float, typer.Option(min=0.0, help="how long a timeout lasts")] = 5.0,
    seed: Annotated[int | None, typer.Option(help="seed of the fault dice")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="log every request")] = False,
    processes: Annotated[int | None, typer.Option(min=1, help=(
        "run the units in this many processes, one thread per unit (default: a process "
        "per unit)"))] = None,
) -> None:
    """Simulate the linked units (banks, registries) of a configuration against a running
    platform, one process per unit (or --processes N), until SIGTERM or Ctrl-C."""
    import logging

    from zhixing.linkage.simulator import SimulatorOptions, run_all
    from zhixing.linkage.simulator.runner import LOG_FORMAT

    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format=LOG_FORMAT)
    options = SimulatorOptions(
        poll_interval=poll_interval, long_poll=long_poll, latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        fail_rate=fail_rate, malformed_rate=malformed_rate, duplicate_rate=duplicate_rate,
        timeout_rate=timeout_rate, hang_seconds=hang_seconds, seed=seed)
    try:
        run_all(config, ledger_dir, options, only, log_level=level, processes=processes)
    except ValueError as exc:  # a bad configuration file or an unknown --only code
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command("simulate-credit")
def simulate_credit(
    ledger_dir: Annotated[Path, typer.Option(help="directory of the units' ledgers")],
    unit: Annotated[str, typer.Option(help="the bank's unit code")],
    amount_fen: Annotated[int, typer.Option(min=1, help="the amount that arrives, in fen")],
    account: Annotated[str | None, typer.Option(help="the account it arrives in")] = None,
    id_number: Annotated[str | None, typer.Option(
        help="or the account holder (an account a freeze waits on is preferred)")] = None,
) -> None:
    """Money arrives at a simulated bank: standing freezes catch it and the running unit
    reports funds_arrived events to the platform."""
    from zhixing.linkage.simulator import LedgerError, credit

    if (account is None) == (id_number is None):
        typer.echo("error: give --account or --id-number", err=True)
        raise typer.Exit(2)
    try:
        outcome = credit(ledger_dir, unit, account_number=account, id_number=id_number,
                         amount_fen=amount_fen)
    except (LedgerError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"credit {outcome.credit_id}: {outcome.amount_fen} fen into "
               f"{outcome.account_number} at {unit}; standing freezes caught "
               f"{outcome.auto_frozen_fen} fen")
    for event_id in outcome.event_ids:
        typer.echo(f"  funds_arrived event queued: {event_id}")


@linkage_app.command("load-units")
def load_units(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                         help="JSON list of units (see linkage/data)")],
) -> None:
    """Create or update the linked units from a court's reference file."""
    from zhixing.core.db import transaction
    from zhixing.linkage import onboarding

    try:
        with transaction() as session:
            created, updated = onboarding.load_units_file(session, file)
    except ValueError as exc:  # pydantic's ValidationError is one
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"units: {created} created, {updated} updated")


@linkage_app.command("issue-keys")
def issue_keys(code: Annotated[str, typer.Argument(help="the unit's code")]) -> None:
    """New keys for a unit (its old ones stop working). Hand them over on a separate channel."""
    from sqlalchemy import select

    from zhixing.core.actor import SYSTEM
    from zhixing.core.db import transaction
    from zhixing.linkage import keys
    from zhixing.linkage.models import LinkageUnit

    with transaction() as session:
        unit = session.scalar(select(LinkageUnit).where(LinkageUnit.code == code))
        if unit is None:
            typer.echo(f"error: no unit {code}", err=True)
            raise typer.Exit(2)
        issued = keys.issue(session, SYSTEM, unit)
    for name, value in issued.__dict__.items():
        typer.echo(f"{name}: {value}")


def _progress_printer() -> Callable[[str, int, int], None]:
    """Rows done per table on stderr: a line every 10,000 rows and one when a table is done
    (empty tables are passed over in silence)."""
    def show(table: str, done: int, total: int) -> None:
        if total and (done == total or done % 10_000 == 0):
            typer.echo(f"  {table}: {done:,}/{total:,} rows", err=True)
    return show


@app.command("export")
def export_data(
    directory: Annotated[Path, typer.Argument(file_okay=False,
                                              help="new or empty directory for the export")],
    documents: Annotated[bool, typer.Option(
        "--documents/--no-documents",
        help="copy the uploaded documents the rows name (from ZHIXING_DATA_DIR)")] = True,
) -> None:
    """Export every table of the database (ZHIXING_DATABASE_URL) to a directory: JSON Lines per
    table, the documents and a manifest with counts and hashes (docs/data-transfer.md). Stop
    the platform first, so the export is one consistent moment."""
    from zhixing.cases.documents import storage_root
    from zhixing.core.db import get_engine
    from zhixing.core.settings import get_settings
    from zhixing.transfer.archive import TransferRefused, export_database

    try:
        result = export_database(get_engine(), directory, secret_key=get_settings().secret_key,
                                 documents_root=storage_root() if documents else None,
                                 progress=_progress_printer())
    except TransferRefused as exc:
        typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"exported {result.rows:,} rows of {len(result.tables)} tables and "
               f"{result.documents} documents to {directory}")
    typer.echo(f"audit chain: {result.audit_records} records, head {result.audit_head}")
    if result.missing_documents:
        typer.echo(f"warning: {len(result.missing_documents)} documents named by rows are not in "
                   "the data directory (listed in the manifest)", err=True)


@app.command("import")
def import_data(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                              help="a directory written by `zhixing export`")],
    documents: Annotated[bool, typer.Option(
        "--documents/--no-documents",
        help="copy the export's documents into ZHIXING_DATA_DIR")] = True,
    new_secret_key: Annotated[bool, typer.Option(
        "--new-secret-key", help="import although ZHIXING_SECRET_KEY differs from the "
        "source's (every linked unit then needs new keys)")] = False,
) -> None:
    """Import an export into an empty database at the same schema revision (run `zhixing
    migrate` first) in one transaction: all of it, checked against the manifest, or nothing."""
    from zhixing.cases.documents import storage_root
    from zhixing.core.db import get_engine
    from zhixing.core.settings import get_settings
    from zhixing.transfer.archive import TransferRefused, import_database

    try:
        result = import_database(get_engine(), directory, secret_key=get_settings().secret_key,
                                 documents_root=storage_root() if documents else None,
                                 allow_new_secret_key=new_secret_key,
                                 progress=_progress_printer())
    except TransferRefused as exc:
        typer.echo(f"error [{exc.code}]: {exc.message}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"imported {result.rows:,} rows of {len(result.tables)} tables and "
               f"{result.documents} documents; counts match the manifest")
    typer.echo(f"audit chain intact: {result.audit_records} records, head {result.audit_head}")


@app.command("load-reference")
def load_reference(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False, help=(
        "directory with courts.json, users.json, units.json and/or partners.json"))],
) -> None:
    """Create or update a court's courts and command centers, users, linked units and partner
    agencies from its own files (docs/data-transfer.md). Idempotent; every change is audited;
    an invalid file is refused with its line and field, and nothing is written."""
    from zhixing.core.actor import Actor
    from zhixing.core.db import transaction
    from zhixing.transfer.reference import ReferenceInvalid
    from zhixing.transfer.reference import load_reference as load

    try:
        operator = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        operator = "unknown"
    actor = Actor(kind="system", id="load-reference", name=f"load-reference ({operator})")
    try:
        with transaction() as session:
            result = load(session, actor, directory)
    except ReferenceInvalid as exc:
        for problem in exc.problems:
            typer.echo(f"error: {problem}", err=True)
        typer.echo("nothing was loaded", err=True)
        raise typer.Exit(2) from None
    for label, counts in (("courts", result.courts), ("command centers", result.centers),
                          ("users", result.users), ("linked units", result.units),
                          ("partner agencies", result.partners)):
        if counts.created or counts.updated:
            typer.echo(f"{label}: {counts.created} created, {counts.updated} updated")
    if not result.changed:
        typer.echo("nothing to change: the database already matches the files")
    if result.new_passwords:
        typer.echo("One-time passwords of the new users (shown only now; hand each over on a "
                   "separate channel):")
        for username, password in result.new_passwords.items():
            typer.echo(f"  {username:<24} {password}")
    if result.units.created:
        typer.echo("New linked units have no keys yet: `zhixing linkage issue-keys CODE`.")


if __name__ == "__main__":
    app()
