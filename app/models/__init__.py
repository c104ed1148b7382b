"""Models, one module per domain noun. Import them from here."""

from app.models.account import HEALTH_STATUSES, Account, Contact, HealthChange
from app.models.api_token import ApiToken
from app.models.audit import AuditEntry
from app.models.erasure import ErasureRecord
from app.models.event import Event
from app.models.mail import MailLog
from app.models.rule_firing import RuleFiring
from app.models.run import PlaybookRun, RunStep
from app.models.task import PRIORITIES, Task
from app.models.user import ROLES, User


def _import_all_model_modules() -> None:
    # Every module in this package is imported, so a new model module needs no edit here
    # to be seen by Alembic and the app.
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


_import_all_model_modules()

__all__ = [
    "Account",
    "Contact",
    "HealthChange",
    "ErasureRecord",
    "Event",
    "MailLog",
    "RuleFiring",
    "PlaybookRun",
    "RunStep",
    "Task",
    "User",
    "ApiToken",
    "AuditEntry",
    "HEALTH_STATUSES",
    "PRIORITIES",
    "ROLES",
]
