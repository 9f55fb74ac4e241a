"""Drain on cordon: a worker in Kubernetes follows its own Node object.

`kubectl drain` cordons a node, evicts its pods and skips DaemonSet pods, and the node is then
shut down with the streams still on it. So every `poll_s` the worker reads its Node (one GET;
the chart's ClusterRole allows `get` on nodes and nothing else) and, once the node is cordoned
or tainted for removal by an autoscaler, drains itself as an operator's drain would: its
restreams move to other nodes while the machine is still up. Uncordoned, the node takes
restreams again, unless an operator drained it (see `nodes.follow_cordon`). An API that cannot
be read changes nothing: the node stays as it is, and the next poll tries again.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from common.kube import Kubernetes

log = logging.getLogger(__name__)

# Taints that announce a node's removal: cordon's own, the cluster autoscaler's, Karpenter's.
LEAVING_TAINTS = frozenset(
    {"node.kubernetes.io/unschedulable", "ToBeDeletedByClusterAutoscaler", "karpenter.sh/disrupted"}
)


def cordoned(node: dict[str, Any]) -> bool:
    spec = node.get("spec") or {}
    taints = {t.get("key") for t in spec.get("taints") or []}
    return bool(spec.get("unschedulable")) or bool(taints & LEAVING_TAINTS)


class CordonWatch:
    def __init__(
        self,
        kube: Kubernetes,
        node: str,
        follow: Callable[[bool], object],
        *,
        poll_s: float = 2.0,
    ) -> None:
        """`follow(cordoned)` is called when what the Node says differs from what was last
        followed (and at the first read); if it raises, the next poll calls it again."""
        self.kube = kube
        self.node = node
        self.follow = follow
        self.poll_s = poll_s
        self.followed: bool | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._complained = False

    def check(self) -> bool | None:
        """Read the Node once and follow it if it changed: whether it is cordoned, or None if
        the API did not say."""
        try:
            node = self.kube.call("GET", f"/api/v1/nodes/{quote(self.node, safe='')}", timeout_s=5)
        except (OSError, ValueError) as error:  # HTTPError and URLError are OSErrors
            self._complain(error)
            return None
        self._complained = False
        now = cordoned(node)
        if now != self.followed:
            log.warning(
                "Kubernetes node %s is %s: %s",
                self.node,
                "cordoned" if now else "schedulable",
                "draining this node" if now else "taking restreams again",
            )
            self.follow(now)
            self.followed = now
        return now

    def _complain(self, error: Exception) -> None:
        if self._complained:
            return
        self._complained = True
        hint = ""
        if isinstance(error, urllib.error.HTTPError) and error.code in (401, 403):
            hint = " (the worker's service account needs `get` on nodes)"
        log.warning("cannot read Kubernetes node %s: %s%s", self.node, error, hint)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cordon", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # the database away: followed again at the next poll
                log.exception("could not follow the cordon of node %s", self.node)
            self._stop.wait(self.poll_s)
