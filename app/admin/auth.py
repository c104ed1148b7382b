"""Signing in and out of the admin: session cookies, e-mail and password."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from app import ratelimit
from app.errors import ApiError, error_response, is_machine_request
from app.extensions import db, login_manager
from app.models import User

bp = Blueprint("auth", __name__, template_folder="templates")

# Checked when the e-mail is unknown, so that a wrong e-mail costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-password")


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    try:
        return db.session.get(User, int(user_id))
    except ValueError:
        return None


def _safe_next(target: str | None) -> str:
    """Only same-site paths: `next` must never send a signed-in user elsewhere."""
    if target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and target.startswith("/")
            and not target.startswith("//")
            and "\\" not in target
        ):
            return target
    return url_for("admin.index")


@bp.route("/")
def root() -> Response:
    return redirect(url_for("admin.index"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        try:  # password guessing: a few attempts per address and e-mail a minute
            ratelimit.check("login", f"{ratelimit.client_address()}:{email}", current_app.config["RATE_LIMIT_LOGIN"])
        except ApiError as exc:
            flash("Too many sign-in attempts. Wait a minute, then try again.", "error")
            return render_template("triage_admin/login.html", form=form), 429, exc.headers
        user = db.session.scalars(select(User).where(func.lower(User.email) == email)).first()
        if user is None:
            check_password_hash(_DUMMY_HASH, form.password.data)
        elif user.is_active and user.check_password(form.password.data):
            session.clear()  # no state carried over from before sign-in
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong e-mail or password.", "error")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("triage_admin/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout() -> Response:
    logout_user()
    session.clear()
    flash("Signed out.", "info")
    return redirect(url_for("auth.login"))


def _csrf_refused(exc: CSRFError) -> ResponseReturnValue:
    """Still a 400, but one a person can act on (machine clients get the JSON error shape)."""
    if is_machine_request():
        return error_response(400, exc.description)
    return render_template("triage_admin/csrf_error.html", reason=exc.description), 400


def init_app(app) -> None:
    # The token lives as long as the sign-in: a task page left open all day still submits.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.register_error_handler(CSRFError, _csrf_refused)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in."
    login_manager.login_message_category = "info"
    app.register_blueprint(bp)
