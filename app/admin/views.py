"""Base classes every admin page derives from: sign-in required, CSRF-protected forms."""

from __future__ import annotations

from typing import Any

from flask import redirect, url_for
from flask_admin import AdminIndexView, BaseView, expose
from flask_admin.contrib.sqla import ModelView
from flask_wtf import FlaskForm
from sqlalchemy.orm import Query
from werkzeug.wrappers import Response

from app.admin import formatting, markdown
from app.admin.access import Protected


class _Render(BaseView):
    """Every page's templates get the formatting helpers. (A BaseView itself so that its
    `super().render` is Flask-Admin's; the views' method order is unchanged.)"""

    def render(self, template: str, **kwargs: Any) -> str:
        kwargs.setdefault("fmt", formatting)
        kwargs.setdefault("markdown", markdown.render)
        return super().render(template, **kwargs)


class AdminView(Protected, _Render, BaseView):
    """A custom page."""


class AdminModelView(Protected, _Render, ModelView):
    """A model list. Read-only unless a subclass says otherwise."""

    form_base_class = FlaskForm  # the global CSRFProtect rejects forms without its token
    can_create = False
    can_edit = False
    can_delete = False
    can_view_details = False
    named_filter_urls = True  # ?flt0_status_equals=done rather than ?flt0_3=done
    page_size = 50


class ScopedModelView(AdminModelView):
    """A list of what the signed-in user may see: `scope(query)` narrows the list and its count,
    `may_see(row)` guards a single row (the details and edit views, should they ever be enabled)."""

    @staticmethod
    def scope(query: Query[Any], /) -> Query[Any]:
        raise NotImplementedError

    @staticmethod
    def may_see(row: Any, /) -> bool:
        raise NotImplementedError

    def get_query(self) -> Query[Any]:
        return self.scope(super().get_query())

    def get_count_query(self) -> Query[Any]:
        return self.scope(super().get_count_query())

    def get_one(self, id: str) -> Any:
        row = super().get_one(id)
        return row if row is not None and self.may_see(row) else None


class HomeView(Protected, AdminIndexView):
    """`/admin/` itself: the task list is the landing page."""

    def is_visible(self) -> bool:
        return False

    @expose("/")
    def index(self) -> Response:
        return redirect(url_for("task.index_view"))
