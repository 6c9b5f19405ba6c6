"""Request and response bodies of the monitoring endpoints."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Integer, List, Nested, String
from apiflask.validators import Length, Range, Regexp

from monitoring.service import MAX_PAGE_SIZE, MAX_ROSTER_SUBJECTS, MAX_SUBJECT_CHARS
from monitoring.webhooks import MAX_URL_CHARS

# Cursors: an event or delivery sequence number, or a monitoring id.
_SEQ_CURSOR = Regexp(r"^[0-9]{1,18}$")
_ID_CURSOR = Regexp(r"^mon_[0-9a-f]{24}$")


class WebhookIn(Schema):
    url = String(required=True, validate=Length(min=1, max=MAX_URL_CHARS))


class WebhookOut(Schema):
    url = String(required=True)
    updated_at = String(required=True, metadata={"format": "date-time"})


class PageQuery(Schema):
    limit = Integer(load_default=100, validate=Range(min=1, max=MAX_PAGE_SIZE))


class EventsQuery(PageQuery):
    after = String(load_default=None, validate=_SEQ_CURSOR)


class EventsOut(Schema):
    events = List(String(), required=True, metadata={"description": "SETs (secevent+jwt)"})
    next_cursor = String(required=True)


class Delivery(Schema):
    jti = String(required=True)
    attempt = Integer(required=True)
    at = String(required=True, metadata={"format": "date-time"})
    outcome = String(required=True)
    http_status = Integer(required=True, allow_none=True)


class DeliveriesQuery(PageQuery):
    after = String(load_default=None, validate=_SEQ_CURSOR)


class DeliveriesOut(Schema):
    deliveries = List(Nested(Delivery), required=True)
    next_cursor = String(required=True, allow_none=True)


class MonitoredStatus(Schema):
    subject = String(required=True)
    monitoring_id = String(required=True)
    profession = String(required=True)
    status = String(required=True)
    suspended_until = String(required=True, allow_none=True, metadata={"format": "date"})
    since = String(required=True, metadata={"format": "date-time"})


class SubjectsQuery(PageQuery):
    cursor = String(load_default=None, validate=_ID_CURSOR)


class SubjectsOut(Schema):
    subjects = List(Nested(MonitoredStatus), required=True)
    next_cursor = String(required=True, allow_none=True)


class RosterIn(Schema):
    # The count is checked by the service (a stable 400 that says to split the roster).
    subjects = List(
        String(validate=Length(min=1, max=MAX_SUBJECT_CHARS)),
        required=True,
        metadata={"maxItems": MAX_ROSTER_SUBJECTS},
    )


class RosterOut(Schema):
    statuses = List(Nested(MonitoredStatus), required=True)
    not_monitored = List(String(), required=True)


class HolderMonitoring(Schema):
    id = String(required=True)
    verifier = String(required=True)
    profession = String(required=True)
    started_at = String(required=True, metadata={"format": "date-time"})


class HolderMonitoringOut(Schema):
    monitoring = List(Nested(HolderMonitoring), required=True)
