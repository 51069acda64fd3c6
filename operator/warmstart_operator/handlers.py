"""Kopf wiring: an index of WarmStartJobs by lineage, and thin event handlers that only
enqueue keys; worker threads started here run the controller (controller.py).

No timers, daemons or on.create/update handlers: nothing holds a finalizer on the objects,
so deleting them (or uninstalling the operator) needs no manual step. "Look again later"
is the work queue's delayed add, nothing else.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import kopf
from prometheus_client import start_http_server

from warmstart.api.constants import GROUP, MODELLINEAGE_PLURAL, VERSION, WARMSTARTJOB_PLURAL
from warmstart_operator.builders import MANAGED_BY
from warmstart_operator.config import OperatorConfig
from warmstart_operator.controller import Controller
from warmstart_operator.jobindex import JobRef, ref_from_body
from warmstart_operator.kube import Kube
from warmstart_operator.metrics import Metrics
from warmstart_operator.trust import Claimant

log = logging.getLogger("warmstart")

WORKERS = 4


@kopf.index(GROUP, VERSION, WARMSTARTJOB_PLURAL)
def wsj_by_lineage(body: kopf.Body, namespace: str | None, **_: Any
                   ) -> dict[tuple[str, str], JobRef]:
    ref = ref_from_body(body)
    return {(namespace, ref.lineage): ref} if ref and namespace else {}


@kopf.index(GROUP, VERSION, MODELLINEAGE_PLURAL)
def lineages_by_namespace(body: kopf.Body, namespace: str | None, **_: Any
                          ) -> dict[str, Claimant]:
    # Who holds which storage prefix (trust.storage_claim), without a LIST per reconcile.
    claimant = Claimant.of(body)
    return {namespace: claimant} if claimant and namespace else {}


def _reader(index: Any) -> Any:
    def read(*key: str) -> list[Any]:
        # Kopf updates the index in its event loop while workers read it from threads: a
        # copy taken while it changes is simply taken again.
        index_key = key[0] if len(key) == 1 else key
        for _ in range(10):
            try:
                return list(index.get(index_key, []))
            except RuntimeError:
                continue
        return list(index.get(index_key, []))

    return read


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **kwargs: Any) -> None:
    # Kopf hands every index to every handler, start-up included (empty until filled).
    wsj_by_lineage: kopf.Index[tuple[str, str], JobRef] = kwargs["wsj_by_lineage"]
    lineages_by_namespace: kopf.Index[str, Claimant] = kwargs["lineages_by_namespace"]
    config = OperatorConfig.from_env()
    settings.peering.standalone = True
    # The controller posts its own Events, one per transition; Kopf's would be noise.
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    metrics = Metrics()
    kube = Kube.connect()
    kube.on_request = metrics.count_request
    memo.kube = kube
    memo.controller = Controller(kube, config, metrics, _reader(wsj_by_lineage),
                                 _reader(lineages_by_namespace))
    memo.stop = threading.Event()
    memo.workers = [threading.Thread(target=memo.controller.run_worker, args=(memo.stop,),
                                     name=f"reconcile-{i}", daemon=True)
                    for i in range(WORKERS)]
    for worker in memo.workers:
        worker.start()
    address = os.environ.get("WARMSTART_METRICS_ADDRESS", "0.0.0.0")  # noqa: S104
    start_http_server(config.metrics_port, addr=address, registry=metrics.registry)
    log.info("warmstart operator started; metrics on %s:%s", address, config.metrics_port)


@kopf.on.cleanup()
def stop_workers(memo: kopf.Memo, **_: Any) -> None:
    memo.stop.set()
    memo.controller.queue.shut_down()


@kopf.on.event(GROUP, VERSION, WARMSTARTJOB_PLURAL)
async def warmstartjob_event(type: str | None, body: kopf.Body, memo: kopf.Memo,
                             **_: Any) -> None:
    memo.controller.on_wsj_event(type, body)


@kopf.on.event("batch", "v1", "jobs", labels={"app.kubernetes.io/managed-by": MANAGED_BY})
async def training_job_event(type: str | None, body: kopf.Body, memo: kopf.Memo,
                             **_: Any) -> None:
    memo.controller.on_job_event(body, type)


@kopf.on.event(GROUP, VERSION, MODELLINEAGE_PLURAL)
async def lineage_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.on_lineage_event(type, body)


@kopf.on.probe(id="apiRequests")
def api_requests(memo: kopf.Memo, **_: Any) -> int:
    return int(memo.kube.requests)
