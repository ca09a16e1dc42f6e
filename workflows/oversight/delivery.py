"""Alert delivery: e-mail (SMTP) and signed webhooks, retried with back-off until sent.

An alert is a row first; each delivery is a row of its own, so a failed send leaves the alert and a
pending delivery behind for the next run — nothing is lost. Webhook bodies are signed with
HMAC-SHA256 of the raw body in the `X-OneWindow-Signature: sha256=<hex>` header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from timers.clock import now, to_local

from ..models import Alert, AlertDelivery

MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class DeliveryConfig:
    emails: tuple[str, ...] = ()
    webhooks: tuple[str, ...] = ()
    webhook_secret: str = ""
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_sender: str = "onewindow@localhost"
    levels: tuple[str, ...] = field(default=("warning", "breach", "calendar_missing", "escalation", "incident"))

    @classmethod
    def from_env(cls) -> DeliveryConfig:
        def split(name: str) -> tuple[str, ...]:
            return tuple(x.strip() for x in os.environ.get(name, "").split(",") if x.strip())

        return cls(split("ONEWINDOW_ALERT_EMAILS"), split("ONEWINDOW_WEBHOOK_URLS"),
                   os.environ.get("ONEWINDOW_WEBHOOK_SECRET", ""), os.environ.get("ONEWINDOW_SMTP_HOST", "localhost"),
                   int(os.environ.get("ONEWINDOW_SMTP_PORT", "25")), os.environ.get("ONEWINDOW_SMTP_USER", ""),
                   os.environ.get("ONEWINDOW_SMTP_PASSWORD", ""),
                   os.environ.get("ONEWINDOW_SMTP_SENDER", "onewindow@localhost"))


def queue_deliveries_for(session: Session, alerts: list[tuple[int, str]], config: DeliveryConfig | None = None) -> None:
    """Deliveries for alerts inserted in bulk, given as (id, level) pairs."""
    config = config or DeliveryConfig.from_env()
    targets = [("email", t) for t in config.emails] + [("webhook", t) for t in config.webhooks]
    if not targets:
        return
    at = now()
    rows = [dict(alert_id=alert_id, channel=channel, target=target, state="pending", attempts=0, next_attempt_at=at)
            for alert_id, level in alerts if level in config.levels for channel, target in targets]
    if rows:
        session.execute(insert(AlertDelivery), rows)


def payload(alert: Alert) -> dict:
    return {"id": alert.id, "level": alert.level, "case_no": alert.case_no, "step": alert.step,
            "department": alert.department, "assignee": alert.assignee, "message": alert.message,
            "at": to_local(alert.at).isoformat(), "concerned": alert.concerned}


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _send_email(config: DeliveryConfig, target: str, alert: Alert) -> None:
    message = EmailMessage()
    message["From"] = config.smtp_sender
    message["To"] = target
    message["Subject"] = f"[OneWindow {alert.level}] {alert.case_no or ''} {alert.message}"[:200]
    message.set_content(json.dumps(payload(alert), ensure_ascii=False, indent=2))
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=10) as smtp:
        if config.smtp_user:
            smtp.starttls()
            smtp.login(config.smtp_user, config.smtp_password)
        smtp.send_message(message)


def _send_webhook(config: DeliveryConfig, target: str, alert: Alert) -> None:
    body = json.dumps(payload(alert), ensure_ascii=False).encode()
    request = urllib.request.Request(target, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-OneWindow-Signature": sign(config.webhook_secret, body),
        "X-OneWindow-Alert": str(alert.id)})
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status >= 300:
            raise OSError(f"webhook answered {response.status}")


LEASE = timedelta(minutes=2)  # a claimed delivery is left alone by other schedulers while it is sent


def claim_due(session: Session, batch: int = 200) -> list[tuple[AlertDelivery, Alert]]:
    """Claim the deliveries that are due (a short write: their next try moves a lease ahead), so the
    sending happens after the commit, with no lock held, and no other scheduler sends them meanwhile."""
    at = now()
    stmt = (select(AlertDelivery).where(AlertDelivery.state == "pending", AlertDelivery.next_attempt_at <= at)
            .order_by(AlertDelivery.id).limit(batch))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    claimed = []
    for delivery in session.scalars(stmt):
        delivery.next_attempt_at = at + LEASE
        claimed.append((delivery, session.get(Alert, delivery.alert_id)))
    session.flush()
    return claimed


def send(delivery: AlertDelivery, alert: Alert, config: DeliveryConfig) -> str | None:
    """Send one delivery (no database work here); the error text, or None when it went out."""
    try:
        (_send_email if delivery.channel == "email" else _send_webhook)(config, delivery.target, alert)
    except (OSError, smtplib.SMTPException, urllib.error.URLError) as exc:
        return str(exc)[:500] or exc.__class__.__name__
    except Exception as exc:  # noqa: BLE001 - one bad delivery must not stop the others
        return f"{exc.__class__.__name__}: {exc}"[:500]
    return None


def record_attempt(session: Session, delivery_id: int, error: str | None) -> None:
    delivery = session.get(AlertDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.state != "pending":
        return
    at = now()
    delivery.attempts += 1
    if error is None:
        delivery.state, delivery.sent_at, delivery.last_error = "sent", at, None
        return
    delivery.last_error = error
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.state = "failed"  # kept, with its error, for an admin to see and retry
    else:
        delivery.next_attempt_at = at + timedelta(seconds=30 * 2 ** (delivery.attempts - 1))


def deliver_due(db, config: DeliveryConfig | None = None, batch: int = 200) -> tuple[int, int]:
    """Send every pending delivery that is due; return (sent, failed attempts). Claimed in one short
    transaction, sent with no transaction open (a slow mail server holds up nobody), each outcome
    written in a short transaction of its own."""
    config = config or DeliveryConfig.from_env()
    claimed = db.transaction(lambda session: claim_due(session, batch))
    sent = failed = 0
    for delivery, alert in claimed:
        error = send(delivery, alert, config)
        db.transaction(lambda session, d=delivery.id, e=error: record_attempt(session, d, e))
        sent, failed = (sent + 1, failed) if error is None else (sent, failed + 1)
    return sent, failed
