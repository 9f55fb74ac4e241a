"""The Celery app both sides build, the task names, and the control messages (DESIGN §3).

The API sends tasks by name and never imports `worker`. Messages are control only: short,
idempotent, acknowledged early, with an expiry, and sent after the database commit.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from typing import Any

from celery import Celery

from common import live
from common.config import Settings
from common.outbox import ControlMessage, Sender

log = logging.getLogger(__name__)

TASK_RESTREAM_START = "restream.start"
TASK_RESTREAM_STOP = "restream.stop"
TASK_NODE_SYNC = "node.sync"
CONTROL_QUEUE = "control"


def node_queue(node: str) -> str:
    """The queue only `node` consumes."""
    return f"node.{node}"


def create_celery(settings: Settings) -> Any:
    """A Celery app configured for control messages on Redis."""
    app = Celery("streamfleet", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        # Acknowledge on receipt: a restream is never a long task, and a redelivered start
        # an hour later (Redis' visibility timeout) would be worse than a lost one, which the
        # reconciler heals within one round.
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        task_default_queue=CONTROL_QUEUE,
        task_create_missing_queues=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"socket_timeout": 5, "socket_connect_timeout": 5},
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
    )
    return app


def celery_sender(app: Any, expiry_s: float) -> Sender:
    """Send outbox messages as Celery tasks, each expiring after `expiry_s`: the message
    Celery makes (`as_task_v2`: its headers and body, protocol 2), in the envelope of kombu's
    Redis transport, pushed onto the node's queue with one LPUSH on a connection kept open.

    `app.send_task` does the same through kombu's producer, which makes a Redis client on
    every message: 1.1 ms of an idle API's time a message against 0.6, and 2-3 ms on a
    start's or a stop's path when the machine is busy. A control message goes to a queue by
    name (the default exchange) at priority 0, whose list is the queue's own key. A test
    holds a real Celery worker to what this sends (tests/common/test_celery_app.py)."""
    client = live.connect(app.conf.broker_url)

    def send(message: ControlMessage) -> None:
        task_id = str(uuid.uuid4())
        task = app.amqp.as_task_v2(
            task_id, message.task, args=(), kwargs=message.kwargs, expires=expiry_s
        )
        properties = {
            **task.properties,
            "delivery_mode": 2,  # persistent
            "delivery_info": {"exchange": "", "routing_key": message.queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        }
        envelope = {
            "body": base64.b64encode(json.dumps(task.body).encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": task.headers,
            "properties": properties,
        }
        client.lpush(message.queue, json.dumps(envelope))

    return send


def open_broker(app: Any) -> None:
    """Load the broker's transport and connect a producer now: the first control message
    after a start would otherwise wait about 80 ms for both. A broker not there yet is
    connected to when the first message goes (the outbox logs a message it could not send,
    and the reconciler sends the desired state again)."""
    try:
        with app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=0)
    except Exception as error:
        log.warning("the broker cannot be reached yet: %s", error)


def start_message(node: str, restream_id: str, generation: int) -> ControlMessage:
    return ControlMessage(
        TASK_RESTREAM_START,
        node_queue(node),
        {"restream_id": restream_id, "generation": generation},
    )


def stop_message(node: str, restream_id: str, generation: int) -> ControlMessage:
    return ControlMessage(
        TASK_RESTREAM_STOP,
        node_queue(node),
        {"restream_id": restream_id, "generation": generation},
    )


def sync_message(node: str, desired: dict[str, int]) -> ControlMessage:
    """The full set a node should run (restream id -> generation)."""
    return ControlMessage(TASK_NODE_SYNC, node_queue(node), {"node": node, "desired": desired})
