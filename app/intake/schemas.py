"""Marshmallow schemas for what the CRM sends (CONTRACT.md section 2)."""

from __future__ import annotations

from datetime import UTC

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from app.models import HEALTH_STATUSES

EVENT_TYPES = ("account.health_changed", "account.updated")


def normalize_status(value) -> str:
    """A status of the scheme, case-insensitive in, lower-case out; ValueError names the allowed ones."""
    text = str(value or "").strip().lower()
    if text not in HEALTH_STATUSES:
        raise ValueError(f"unknown status {value!r}; allowed: {', '.join(HEALTH_STATUSES)}")
    return text


class HealthStatus(fields.String):
    """A status of the scheme, case-insensitive in, lower-case out."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return normalize_status(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class ContactSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(validate=validate.Length(max=300), allow_none=True)
    email = fields.Email(allow_none=True)
    role = fields.String(validate=validate.Length(max=100), allow_none=True)


class AccountSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    name = fields.String(validate=validate.Length(max=300), allow_none=True)
    segment = fields.String(validate=validate.Length(max=100), allow_none=True)
    lifecycle_stage = fields.String(validate=validate.Length(max=100), allow_none=True)
    plan = fields.String(validate=validate.Length(max=100), allow_none=True)
    arr = fields.Decimal(allow_none=True, places=2, validate=validate.Range(min=0))
    renewal_date = fields.Date(allow_none=True)
    customer_since = fields.Date(allow_none=True)
    csm = fields.Email(allow_none=True)
    manager = fields.Email(allow_none=True)
    contacts = fields.List(fields.Nested(ContactSchema), validate=validate.Length(max=500))


class HealthSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    from_ = HealthStatus(data_key="from", allow_none=True)
    to = HealthStatus(required=True)
    reason = fields.String(validate=validate.Length(max=5000), allow_none=True)
    changed_by = fields.String(validate=validate.Length(max=254), allow_none=True)


class UtcDateTime(fields.AwareDateTime):
    """An aware time, converted to UTC (how it is stored); one with no UTC equivalent
    (0001-01-01T00:00:00+01:00) is invalid input, not an overflow later."""

    def _deserialize(self, value, attr, data, **kwargs):
        parsed = super()._deserialize(value, attr, data, **kwargs)
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Out of range once converted to UTC.") from None


class CrmWebhookSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    occurred_at = UtcDateTime(required=True, default_timezone=None)
    account = fields.Nested(AccountSchema, required=True)
    health = fields.Nested(HealthSchema)

    @validates_schema
    def _health_needed(self, data, **kwargs):
        if data.get("type") == "account.health_changed" and "health" not in data:
            raise ValidationError({"health": ["required for account.health_changed"]})
