"""`flask users ...`: the people who sign in to the admin."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from app.extensions import db
from app.models import ROLES, User

users = AppGroup("users", help="Create and list the people who sign in to the admin.")
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


def create_user(email: str, password: str, role: str = "csm", name: str | None = None,
                manager_email: str | None = None) -> User:
    """Create and commit a user (e-mails are stored lower-case)."""
    user = User(email=email.lower(), name=name, role=role,
                manager_email=manager_email.lower() if manager_email else None)
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
def create_command(email, role, name, password, manager_email):
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
def set_password_command(email, password):
    """Set a new password for EMAIL."""
    user = _find(email)
    if user is None:
        raise click.ClickException(f"no user {email}")
    user.set_password(_password(password))
    db.session.commit()
    click.echo(f"password changed for {user.email}")


@users.command("list")
def list_command():
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


def init_app(app) -> None:
    app.cli.add_command(users)
