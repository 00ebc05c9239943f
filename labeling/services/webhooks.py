"""Webhooks: a project's subscriptions, the events Concord emits, and delivering them.

- `emit` is the one way an event leaves Concord. It costs one cache read when nobody listens:
  the project's subscriptions (event -> webhook ids) are cached and dropped whenever a webhook
  is created, changed or deleted. With subscribers, the event's body is serialized once and
  handed to the worker after the caller's transaction commits (batched per process, see
  `Outbox`): nothing is sent for a write that was rolled back, and labeling never waits on
  a receiver.
- `deliveries_attempt` (run by the task `labeling.webhook_deliver`) POSTs each event of a
  batch, signed (`X-Concord-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`),
  logs each attempt as a `WebhookDelivery`, and says which to try again after how long: 2xx
  is delivered; 408, 429, 5xx, timeouts and connection errors are retried after the delays
  of `CONCORD_WEBHOOK_RETRY_DELAYS`, then given up; any other answer (3xx: redirects are not
  followed; 4xx: the receiver refused this request and would refuse the same bytes again)
  fails at once.
- Server-side request forgery: a URL whose host resolves to a private, loopback, link-local
  or otherwise non-public address is refused when the webhook is saved and again before
  every batch of attempts (DNS may have changed), unless `CONCORD_WEBHOOKS_ALLOW_PRIVATE` is
  on. The attempts connect to the address that was checked (not to a second lookup's
  answer), sending the host name as `Host` and TLS server name.

Bulk imports emit nothing (a million-row import must not send a million POSTs); README,
"Webhooks", lists every event and its `data`.
"""

import atexit
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from config.celery import JobQueueUnavailable, enqueue
from labeling.models import Project, Webhook, WebhookDelivery

logger = logging.getLogger(__name__)

# Defined in labeling/tasks.py.
DELIVER_TASK = "labeling.webhook_deliver"

EVENTS = {
    "annotation.created": "an annotation is made in Concord (page or API; not by imports)",
    "item.completed": "an item reached its overlap (its last annotation of the round)",
    "run.finished": "an analysis run succeeded or failed",
    "dataset_version.created": "an export was recorded as a dataset version",
    "guideline.published": "a guideline version was published",
}
PING = "ping"  # the test event: sent to one webhook whatever its events
MAX_WEBHOOKS_PER_PROJECT = 20
MAX_SECRET_CHARS = 200
# Subscriptions are dropped from the cache on every webhook change; the expiry only bounds
# how long a cache that missed a drop (a lost Redis write) could be stale.
SUBSCRIPTIONS_TTL = 300
# Every submission asks for its project's subscriptions; reading them from the shared cache
# was 5% of a web worker's time under load (bench/labeling_load.py --open-loop). A process
# keeps what it read this long, so a change made in another process applies within it.
HELD_SECONDS = 1.0
_held: dict[int, tuple[float, dict[str, list[int]]]] = {}  # project id -> (read at, subscriptions)
ERROR_CHARS = 500
TEXT_CHARS = 1000  # longer texts (a changelog, a run's message) are cut in a payload
RESPONSE_PEEK_BYTES = 200
USER_AGENT = "Concord-Webhooks/1"
BATCH_SECONDS = 0.25
BATCH_EVENTS = 100


# ---- the address rule ------------------------------------------------------------------------


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class HostUnresolved(ValidationError):
    """The URL's host does not resolve (now): at delivery, worth another try later."""


def url_addresses(url: str, *, allow_private: bool | None = None) -> list[str]:
    """The addresses `url`'s host resolves to, all of them allowed; ValidationError (with the
    reason) for a URL that is not http(s), names no host, does not resolve, or resolves to
    any non-public address while `CONCORD_WEBHOOKS_ALLOW_PRIVATE` is off."""
    if allow_private is None:
        allow_private = settings.CONCORD_WEBHOOKS_ALLOW_PRIVATE
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValidationError({"url": f"Not a valid URL: {exc}."}) from None
    if parts.scheme not in ("http", "https"):
        raise ValidationError({"url": "The URL must start with http:// or https://."})
    host = parts.hostname
    if not host:
        raise ValidationError({"url": "The URL names no host."})
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise HostUnresolved({"url": f"The host {host!r} does not resolve."}) from None
    addresses = list(dict.fromkeys(info[4][0] for info in found))
    if not allow_private:
        private = [a for a in addresses if not _public(a)]
        if private:
            raise ValidationError(
                {
                    "url": f"{host} resolves to a private or loopback address ({private[0]}); "
                    "Concord refuses those unless CONCORD_WEBHOOKS_ALLOW_PRIVATE=1."
                }
            )
    return addresses


# ---- managing webhooks ------------------------------------------------------------------


def _events_clean(events) -> list[str]:
    if not isinstance(events, list | tuple) or not events:
        raise ValidationError({"events": f"Choose at least one event of: {', '.join(EVENTS)}."})
    unknown = [str(e) for e in events if e not in EVENTS]
    if unknown:
        raise ValidationError(
            {"events": f"Unknown event {unknown[0]!r}; the events are: {', '.join(EVENTS)}."}
        )
    return [e for e in EVENTS if e in events]  # the documented order, each once


def _secret_clean(secret: str | None) -> str:
    secret = (secret or "").strip()
    if len(secret) > MAX_SECRET_CHARS:
        raise ValidationError({"secret": f"At most {MAX_SECRET_CHARS} characters."})
    return secret or secrets.token_hex(24)


def _url_clean(url: str) -> str:
    url = (url or "").strip()
    if len(url) > Webhook._meta.get_field("url").max_length:
        raise ValidationError({"url": "The URL is too long."})
    url_addresses(url)
    return url


def subscriptions_changed(project_id: int) -> None:
    """Drop the project's cached subscriptions: after every webhook change, and when a
    database was replaced under a running cache (ids of the old one would name other rows)."""
    key = _subscriptions_key(project_id)

    def forget():
        _held.pop(project_id, None)
        cache.delete(key)

    forget()
    transaction.on_commit(forget)  # a read racing the write saw the old


@transaction.atomic
def webhook_create(
    *, project: Project, url: str, events, secret: str | None = None, active: bool = True, user
) -> Webhook:
    """Subscribe `url` to `events` of the project; a secret is generated when none is given."""
    Project.objects.select_for_update().filter(pk=project.pk).values_list("pk").first()
    if Webhook.objects.filter(project=project).count() >= MAX_WEBHOOKS_PER_PROJECT:
        raise ValidationError(
            {"detail": f"A project has at most {MAX_WEBHOOKS_PER_PROJECT} webhooks."}
        )
    webhook = Webhook.objects.create(
        project=project,
        url=_url_clean(url),
        events=_events_clean(events),
        secret=_secret_clean(secret),
        active=bool(active),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    subscriptions_changed(project.pk)
    return webhook


@transaction.atomic
def webhook_update(
    *,
    webhook: Webhook,
    url: str | None = None,
    events=None,
    secret: str | None = None,
    active: bool | None = None,
) -> Webhook:
    """Change what is given (None leaves a field as it is); a new secret replaces the old."""
    if url is not None:
        webhook.url = _url_clean(url)
    if events is not None:
        webhook.events = _events_clean(events)
    if secret is not None:
        webhook.secret = _secret_clean(secret)
    if active is not None:
        webhook.active = bool(active)
    webhook.save()
    subscriptions_changed(webhook.project_id)
    return webhook


@transaction.atomic
def webhook_delete(*, webhook: Webhook) -> None:
    """Remove the webhook and its delivery log; messages already queued for it are dropped."""
    project_id = webhook.project_id
    webhook.delete()
    subscriptions_changed(project_id)


def webhook_test(*, webhook: Webhook) -> str:
    """Queue a `ping` event to this webhook (even a paused one) through the same queue as
    real events; its event id. JobQueueUnavailable when the queue is down."""
    data = {"webhook": webhook.pk, "message": "A test event from Concord."}
    event_id, body = _body(webhook.project_id, PING, data)
    enqueue(DELIVER_TASK, webhook.pk, webhook.project_id, [[PING, event_id, body]], 1)
    return event_id


# ---- emitting ----------------------------------------------------------------------------


def _subscriptions_key(project_id: int) -> str:
    return f"webhook-subscriptions:{project_id}"


def _subscriptions(project_id: int) -> dict[str, list[int]]:
    """event -> ids of the project's active webhooks subscribed to it (cached: in the shared
    cache, and for HELD_SECONDS in this process)."""
    now = time.monotonic()
    held = _held.get(project_id)
    if held is not None and now - held[0] < HELD_SECONDS:
        return held[1]
    key = _subscriptions_key(project_id)
    found = cache.get(key)
    if found is None:
        found = {}
        active = Webhook.objects.filter(project_id=project_id, active=True).order_by("id")
        for pk, events in active.values_list("id", "events"):
            for event in events:
                found.setdefault(event, []).append(pk)
        cache.set(key, found, SUBSCRIPTIONS_TTL)
    _held[project_id] = (now, found)
    return found


def _body(project_id: int, event: str, data: dict) -> tuple[str, str]:
    event_id = str(uuid.uuid4())
    body = {
        "id": event_id,
        "event": event,
        "project": project_id,
        "created_at": timezone.now().isoformat(),
        "data": data,
    }
    return event_id, json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":"))


def emit(*, project_id: int, event: str, data: dict | Callable[[], dict]) -> None:
    """Send `event` with `data` to the project's webhooks subscribed to it, once the caller's
    transaction commits. `data` may be a function that makes it: it is called only when
    somebody listens."""
    webhook_ids = _subscriptions(project_id).get(event)
    if not webhook_ids:
        return
    event_id, body = _body(project_id, event, data() if callable(data) else data)
    transaction.on_commit(
        lambda: _outbox.add(webhook_ids, project_id, [event, event_id, body]), robust=True
    )


class Outbox:
    """Committed events of this process, handed to the queue together: at most one message
    per webhook every BATCH_SECONDS (of up to BATCH_EVENTS events) instead of one per event.
    Publishing a message costs the web process 0.4 ms of CPU, which at hundreds of
    submissions a second is most of what a webhook cost labeling (bench/labeling_load.py
    --webhook-delay-ms); an event waits BATCH_SECONDS at most. A process that ends hands
    what it holds over at exit."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        """Empty, with a fresh lock (also in a forked child: the parent's timer is not there)."""
        self.lock = threading.Lock()
        self.pending: dict[tuple[int, int], list] = {}
        self.timer: threading.Timer | None = None

    def add(self, webhook_ids: list[int], project_id: int, event: list) -> None:
        with self.lock:
            for webhook_id in webhook_ids:
                self.pending.setdefault((webhook_id, project_id), []).append(event)
            if self.timer is None:
                self.timer = threading.Timer(BATCH_SECONDS, self.flush)
                self.timer.daemon = True
                self.timer.start()

    def flush(self) -> None:
        with self.lock:
            pending, self.pending, self.timer = self.pending, {}, None
        for (webhook_id, project_id), events in pending.items():
            for start in range(0, len(events), BATCH_EVENTS):
                batch = events[start : start + BATCH_EVENTS]
                try:
                    enqueue(DELIVER_TASK, webhook_id, project_id, batch, 1)
                except JobQueueUnavailable:
                    # The writes that made the events stand; the events are lost.
                    logger.warning("webhook %s: %d events not queued: job queue down",
                                   webhook_id, len(batch))  # fmt: skip


_outbox = Outbox()
os.register_at_fork(after_in_child=_outbox.reset)
atexit.register(_outbox.flush)


# ---- delivering --------------------------------------------------------------------------


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of `<timestamp>.<body>` with the webhook's secret."""
    message = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def retry_delay(attempt: int) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None when `attempt` was the last."""
    delays = settings.CONCORD_WEBHOOK_RETRY_DELAYS
    return delays[attempt - 1] if attempt <= len(delays) else None


def _post(url: str, address: str, headers: dict, body: bytes) -> httpx.Response:
    """POST to `address` (checked) as if to `url`'s host; the answer's first bytes are read."""
    target = httpx.URL(url)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    headers = {**headers, "Host": target.netloc.decode("ascii")}
    with _client().stream(
        "POST",
        target.copy_with(host=address),
        content=body,
        headers=headers,
        extensions=extensions,
    ) as response:
        for chunk in response.iter_bytes(RESPONSE_PEEK_BYTES):
            response.peek = chunk
            break
        return response


_clients: dict[int, httpx.Client] = {}


def _client() -> httpx.Client:
    """This process's HTTP client. Made once: a client loads the CA certificates, 17 ms of
    CPU, which per delivery was most of the worker's work. No connection is kept alive (one
    would be reused for another host name at the same address, its certificate checked for
    the first); no proxies from the environment and no redirects, which would reach
    addresses not checked."""
    client = _clients.get(os.getpid())  # by process: a forked worker child makes its own
    if client is None:
        client = _clients[os.getpid()] = httpx.Client(
            timeout=settings.CONCORD_WEBHOOK_TIMEOUT_SECONDS,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
    return client


def _attempt(webhook: Webhook, address: str, event: str, event_id: str, body: bytes):
    """One POST to `address` (checked): (status code or None, error text ("" when delivered),
    worth retrying)."""
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Concord-Event": event,
        "X-Concord-Delivery": event_id,
        "X-Concord-Timestamp": timestamp,
        "X-Concord-Signature": signature(webhook.secret, timestamp, body),
    }
    try:
        response = _post(webhook.url, address, headers, body)
    except httpx.TimeoutException:
        return None, f"No answer within {settings.CONCORD_WEBHOOK_TIMEOUT_SECONDS:g} s.", True
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}".rstrip(": "), True
    code = response.status_code
    if 200 <= code < 300:
        return code, "", False
    reason = f"HTTP {code} {response.reason_phrase}".strip()
    if 300 <= code < 400:
        reason += " (redirects are not followed: give the final URL)"
    peek = getattr(response, "peek", b"").decode("utf-8", "replace").strip()
    return code, f"{reason}: {peek}" if peek else reason, code in (408, 429) or code >= 500


def deliveries_attempt(
    *, webhook_id: int, project_id: int, events: list, attempt: int
) -> tuple[list, float | None]:
    """Deliver `events` (`[event, event_id, body]` each) to one webhook, one attempt each, and
    log every attempt; the events worth another try and the delay before it (None when every
    event ended: delivered, given up, or the webhook is gone, paused or unsubscribed).

    The webhook is read, its host resolved and checked, and its log pruned once per batch
    rather than per event: those were half of the worker's CPU per event. Once an event gets
    no answer at all (a timeout, no connection), the rest of the batch is not sent in this
    attempt but logged as such and tried again with it: a receiver that is down holds the
    worker for one timeout, not one per event (the worker also runs the analysis jobs).
    """
    webhook = Webhook.objects.filter(pk=webhook_id, project_id=project_id).first()
    if webhook is None:
        return [], None
    wanted = [e for e in events if e[0] == PING or (webhook.active and e[0] in webhook.events)]
    if not wanted:
        return [], None  # paused or unsubscribed since the events were queued
    # Why the remaining events are not sent in this attempt (and whether that is worth
    # another try), or None while they are.
    try:
        address, unsent = url_addresses(webhook.url)[0], None
    except ValidationError as exc:  # refused now (DNS changed?): retrying would not help
        address, unsent = None, (" ".join(exc.messages), isinstance(exc, HostUnresolved))
    retry = retry_delay(attempt)
    again = []
    for event, event_id, body in wanted:
        started = time.perf_counter()
        if unsent:
            status_code, (error, retryable) = None, unsent
        else:
            status_code, error, retryable = _attempt(webhook, address, event, event_id,
                                                     body.encode())  # fmt: skip
            if status_code is None and retryable:
                unsent = (f"Not sent: an earlier event of this attempt got no answer ({error})",
                          True)  # fmt: skip
        if not error:
            status = WebhookDelivery.Status.DELIVERED
        elif retryable and retry is not None:
            status = WebhookDelivery.Status.RETRYING
            again.append([event, event_id, body])
        else:
            status = WebhookDelivery.Status.FAILED
        WebhookDelivery.objects.create(
            webhook=webhook,
            event=event,
            event_id=event_id,
            payload=json.loads(body),
            attempt=attempt,
            status=status,
            status_code=status_code,
            error=error[:ERROR_CHARS],
            duration_ms=round((time.perf_counter() - started) * 1000),
        )
    _log_prune(webhook.pk)
    return again, retry if again else None


def _log_prune(webhook_id: int) -> None:
    """Keep the newest CONCORD_WEBHOOK_LOG_KEEP attempts of the webhook: one DELETE."""
    keep = settings.CONCORD_WEBHOOK_LOG_KEEP
    log = WebhookDelivery.objects.filter(webhook_id=webhook_id)
    oldest_kept = log.order_by("-created_at", "-id").values_list("id", flat=True)[keep : keep + 1]
    if oldest_kept:
        log.filter(id__lte=oldest_kept[0]).delete()
