"""``openarts``: serve the API, manage users.

Every command reads ``OPENARTS_DATA_DIR`` and ``OPENARTS_DATABASE_URL`` (see ``config.py``), so the CLI
works on the same data while the server runs.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
from typing import Annotated

import typer
from rich.console import Console

from openarts.bootstrap import ensure_admin, prepare
from openarts.config import Settings
from openarts.core.clock import SystemClock
from openarts.core.identity import service as identity
from openarts.storage.cli import obs_app

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="OpenArts: ModelArts-compatible AI platform.",
)
user_app = typer.Typer(no_args_is_help=True, help="Manage users and their credentials.")
app.add_typer(user_app, name="user")
app.add_typer(obs_app, name="obs")
console = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Run the API server."""
    import uvicorn

    from openarts.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    settings = Settings.from_env()
    if settings.public_url is None:
        reachable = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - naming, not binding
        settings = dataclasses.replace(settings, public_url=f"http://{reachable}:{port}")
    db = prepare(settings)
    created = ensure_admin(settings, db)
    url = f"http://{host}:{port}"
    typer.echo(f"OpenArts {url}  (data: {settings.data_dir})")
    if created is not None:
        typer.echo("First start: created the admin user. Its credentials are shown once, and kept in")
        typer.echo(f"{settings.admin_credentials_file} (mode 0600):")
        typer.echo(json.dumps({k: created[k] for k in ("project_id", "access_key", "secret_key")}, indent=2))
    elif settings.admin_credentials_file.exists():
        typer.echo(f"Admin credentials: {settings.admin_credentials_file}")
    typer.echo(f"Python SDK: BasicCredentials(ak, sk, project_id), endpoint {url}")
    app = create_app(settings, db=db)
    # Everything built so far lives as long as the server: keep it out of the garbage collector's
    # scans, which otherwise grow with every module imported above.
    gc.freeze()
    uvicorn.run(app, host=host, port=port, log_level=log_level.lower())


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=1)


@user_app.command("create")
def user_create(
    name: str,
    project_id: Annotated[
        str | None, typer.Option(help="Join this project; an unknown id founds a new account with it.")
    ] = None,
    password: Annotated[str | None, typer.Option(help="Password for IAM tokens (none: AK/SK only).")] = None,
    admin: Annotated[bool, typer.Option(help="Make the user a main account of its domain.")] = False,
) -> None:
    """Create a user and print its credentials as one JSON object (the secret key only this once)."""
    settings = Settings.from_env()
    db = prepare(settings)
    try:
        with db.write() as session:
            created = identity.create_user(
                session, SystemClock(), settings.region, name, project_id=project_id, password=password, admin=admin
            )
    except identity.IdentityError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(created))


def _change_user(name: str, domain: str | None, *, password: str | None = None, enabled: bool | None = None) -> None:
    settings = Settings.from_env()
    db = prepare(settings)
    with db.write() as session:
        user = identity.find_user(session, name, domain)
        if user is None:
            _fail(f"no user {name!r}")
            return
        if password is not None:
            identity.set_password(session, user, password)
        if enabled is not None:
            identity.set_enabled(session, user, enabled)


DomainOption = Annotated[str | None, typer.Option(help="The user's domain (default: the built-in one).")]


@user_app.command("password")
def user_password(
    name: str, password: Annotated[str, typer.Option(prompt=True, hide_input=True)], domain: DomainOption = None
) -> None:
    """Set a user's password; every token issued before stops working."""
    _change_user(name, domain, password=password)


@user_app.command("disable")
def user_disable(name: str, domain: DomainOption = None) -> None:
    """Disable a user: its tokens and access keys stop working."""
    _change_user(name, domain, enabled=False)


@user_app.command("enable")
def user_enable(name: str, domain: DomainOption = None) -> None:
    """Enable a disabled user again (tokens issued before stay void)."""
    _change_user(name, domain, enabled=True)


def main() -> None:
    app()
