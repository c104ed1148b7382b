"""Models, one module per domain noun. Import them from here."""
from app.models.account import HEALTH_STATUSES, Account, Contact, HealthChange
from app.models.erasure import ErasureRecord
from app.models.event import Event, OutboxEntry
from app.models.mail import MailLog
from app.models.rule_firing import RuleFiring
from app.models.run import PlaybookRun, RunStep
from app.models.task import PRIORITIES, Task
from app.models.user import ROLES, User

__all__ = [
    "Account", "Contact", "HealthChange", "ErasureRecord", "Event", "OutboxEntry", "MailLog",
    "RuleFiring", "PlaybookRun", "RunStep", "Task", "User", "HEALTH_STATUSES", "PRIORITIES", "ROLES",
]
