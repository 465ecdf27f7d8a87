"""``make chaos``: a ledger run. N recordings through the real processes while a fault schedule runs, then a full
reconciliation from Kafka and from the simulator's records (Recall's side of the ledger), then a fuzzing pass on
the ingest endpoint. Exit 0 only when every check holds; the ledger is written to ``var/chaos/ledger-<time>.json``.

Faults (each on by default, each switchable):

- ``--no-kill``             SIGKILL of ingest, transcriber and fetcher at random moments (``--kills`` each), each
                            restarted by the harness and waited for until ready;
- ``--no-broker-restart``   one restart of the Kafka broker (stop, start);
- ``--no-api-faults``       the simulator answers Create/Retrieve/download with 429s, 5xx, and drops responses
                            (processed, then the connection closed), in phases;
- ``--no-webhook-chaos``    duplicate and out-of-order webhook deliveries;
- ``--no-provider-outage``  the primary provider fails every transcript for a window (the chain falls back);
- ``--no-worker-exceptions`` both workers' fault hook (``*_FAULT_PROBABILITY`` 0.05): unforeseen exceptions in
                            their handlers, parked and handled again (the ledger counts them from their logs);
- ``--no-store-outage``     the fetcher's file store unwritable for 4 s (its directory replaced by a plain file, so
                            writes fail with ``NotADirectoryError``: works as root, needs no mount);
- ``--no-lost-webhooks``    Recall never delivers ``transcript.done``/``failed`` for ~5 % of the recordings (the
                            transcriber's deadline sweep ends them; ``TRANSCRIBER_DEADLINE_SECONDS`` 25, sweep 5 s)
                            nor ``recording.done`` for ~3 % (``recall-pipeline reconcile`` runs every 10 s during
                            the drain and publishes them, ``ce_id`` ``reconciler-...``);
- ``--no-slow-transcripts`` ~2 % of the transcripts stay processing at Recall 1.6 times the deadline (the sweep must
                            wait, not fail them);
- ``--no-fuzz``             skip the "bad input at scale" pass on ingest (hypothesis on raw bytes and headers).

Distributed mode, ``--brokers 3 --replicas 2``: a local KRaft cluster (``scripts/kafka-local``'s
``KAFKA_LOCAL_BROKERS``; replication factor 3, ``min.insync.replicas=2``) and that many processes of each service,
ingest's behind a round-robin balancer (:mod:`devkit.balancer`); Tables get a standby replica. Its faults, each on
by default when the topology allows it:

- ``--no-leader-kill``      SIGKILL of the Kafka node that leads the most partitions, down for a while, restarted;
- ``--no-rolling-restart``  each service restarted replica by replica: SIGTERM, exit within the Deployment's
                            ``terminationGracePeriodSeconds`` (else the run fails), start, ready;
- ``--no-scale-fetcher``    the fetcher scaled out to 3 replicas and back in mid-run (SIGTERM of the extra ones);
- ``--no-freeze``           a transcriber replica SIGSTOPped for twice the session timeout, then SIGCONTed;
- ``--no-failover``         SIGKILL of a transcriber replica, timed until its group rebalanced and a recording ended.

The ledger's ``measurements`` section holds the failover times, the broker kill's and every graceful stop's.

What the ledger checks:

- every recording ended exactly once (one ``transcripts.ready`` or one ``transcripts.failed``), as planned;
- every ``transcripts.ready`` points at stored objects whose sha256 and size match, and the raw transcript is the
  bytes Recall serves;
- creates per recording (transcripts at Recall) never exceed the chain length nor 10, and no attempt was paid twice
  (one transcript per (recording, Idempotency-Key));
- every webhook Recall delivered with a 2xx is on its topic (``ce_id`` = webhook id, same bytes); none with a
  non-2xx final state was lost (Recall's retries brought it in), except those lost on purpose;
- each fault above was really there (exceptions injected in both workers, deliveries recorded ``lost``, ...) and the
  recordings it touched ended exactly once;
- nothing in the dead-letter queues; the consumers caught up;
- the time to drain after the last fault.

    python scripts/chaos.py [--recordings 500] [--seed N] [--no-kill ...] [--fuzz-examples 2000]
    python -m devkit.chaos ...   (the same)

The package: ``options`` (the command line), ``harness`` (the run: plan, feed, collect, drain), ``faults/`` (one
module a fault; ``faults.DISCRETE`` lists the scheduled ones), ``checks/`` (the reconciliation, one module a
side of the ledger), ``ledger`` (what is written and printed), ``fuzz`` (the ingest fuzzing pass),
``stack_control`` (the stack the run drives) and ``main``.
"""

from __future__ import annotations
