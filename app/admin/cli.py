"""`flask users ...`: the people who sign in to the admin, and their personal API tokens."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from app import audit
from app.extensions import db
from app.models import ROLES, ApiToken, User
from app.models.api_token import new_token, token_hash
from app.models.types import utcnow

users = AppGroup("users", help="Create and list the people who sign in to the admin, and their API tokens.")
MIN_PASSWORD = 8


def _find(email: str) -> User | None:
    return db.session.scalars(select(User).where(func.lower(User.email) == email.lower())).first()


def _check_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise click.BadParameter(f"{email!r} is not an e-mail address")
    return email


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise click.BadParameter(f"at least {MIN_PASSWORD} characters", param_hint="--password")
    return password


def _password(password: str | None) -> str:
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return _check_password(password)


def create_user(
    email: str, password: str, role: str = "csm", name: str | None = None, manager_email: str | None = None
) -> User:
    """Create and commit a user (e-mails are stored lower-case)."""
    user = User(
        email=email.lower(), name=name, role=role, manager_email=manager_email.lower() if manager_email else None
    )
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    return user


@users.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default="csm", show_default=True)
@click.option("--name", help="Display name.")
@click.option("--password", help="Prompted for (hidden) when omitted.")
@click.option("--manager", "manager_email", help="The manager's e-mail: they see this person's tasks.")
def create_command(email, role, name, password, manager_email) -> None:
    """Create a user who signs in with EMAIL."""
    email = _check_email(email)
    if manager_email:
        manager_email = _check_email(manager_email)
    if _find(email) is not None:
        raise click.ClickException(f"{email} exists already; `flask users set-password {email}` changes the password")
    user = create_user(email, _password(password), role, name, manager_email)
    click.echo(f"created {user.email} ({user.role})")


@users.command("set-password")
@click.argument("email")
@click.option("--password", help="Prompted for (hidden) when omitted.")
def set_password_command(email, password) -> None:
    """Set a new password for EMAIL."""
    user = _find(email)
    if user is None:
        raise click.ClickException(f"no user {email}")
    user.set_password(_password(password))
    db.session.commit()
    click.echo(f"password changed for {user.email}")


@users.command("list")
def list_command() -> None:
    """Everyone who can sign in, with role and manager."""
    rows = db.session.scalars(select(User).order_by(User.role, User.email)).all()
    if not rows:
        click.echo("no users yet: flask users create EMAIL --role admin")
        return
    width = max(len(u.email) for u in rows)
    for u in rows:
        state = "" if u.active else "  (inactive)"
        manager = f"  manager: {u.manager_email}" if u.manager_email else ""
        click.echo(f"{u.email:<{width}}  {u.role:<8} {u.name or '':<20}{manager}{state}".rstrip())


def create_token(user: User, name: str) -> tuple[ApiToken, str]:
    """Make and commit a personal API token for `user`: (the row, the token). Only the token's
    SHA-256 is stored, so the token is returned once and cannot be recovered later."""
    token = new_token()
    row = ApiToken(user_id=user.id, name=name, token_hash=token_hash(token))
    db.session.add(row)
    db.session.flush()
    audit.record(
        "cli", "api_token.created", "api_token", row.id, f"{user.email}: {name}", {"user": user.email, "name": name}
    )
    db.session.commit()
    return row, token


@users.command("token")
@click.argument("email")
@click.option("--name", default="personal", show_default=True, help="What the token is for, to tell tokens apart.")
def token_command(email, name) -> None:
    """Make a personal API token for EMAIL: the API then sees what EMAIL sees in the admin."""
    user = _find(email)
    if user is None:
        raise click.ClickException(f"no user {email}")
    if not user.active:
        raise click.ClickException(f"{user.email} is inactive: an inactive user's tokens are refused")
    name = name.strip()
    if not name or len(name) > 100:
        raise click.BadParameter("1 to 100 characters", param_hint="--name")
    row, token = create_token(user, name)
    click.echo(f"token {row.id} ({row.name}) for {user.email} ({user.role}); shown once, store it now:")
    click.echo(token)


@users.command("tokens")
@click.argument("email")
def tokens_command(email) -> None:
    """List EMAIL's personal API tokens (never the tokens themselves)."""
    user = _find(email)
    if user is None:
        raise click.ClickException(f"no user {email}")
    rows = db.session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)).all()
    if not rows:
        click.echo(f"no tokens for {user.email}: flask users token {user.email}")
        return
    width = max(len(r.name) for r in rows)
    for r in rows:
        used = _when(r.last_used_at) if r.last_used_at else "never"
        state = f"  revoked {_when(r.revoked_at)}" if r.revoked_at else ""
        click.echo(f"{r.id:>5}  {r.name:<{width}}  created {_when(r.created_at)}  last used {used}{state}")


@users.command("revoke-token")
@click.argument("token_id", type=int)
def revoke_token_command(token_id) -> None:
    """Revoke the personal API token TOKEN_ID (from `flask users tokens EMAIL`): refused at once."""
    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise click.ClickException(f"no token {token_id}")
    if row.revoked_at is not None:
        click.echo(f"token {row.id} was revoked already ({_when(row.revoked_at)})")
        return
    row.revoked_at = utcnow()
    audit.record(
        "cli",
        "api_token.revoked",
        "api_token",
        row.id,
        f"{row.user.email}: {row.name}",
        {"user": row.user.email, "name": row.name},
    )
    db.session.commit()
    click.echo(f"revoked token {row.id} ({row.name}) of {row.user.email}")


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def init_app(app) -> None:
    app.cli.add_command(users)
