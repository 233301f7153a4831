"""Chief and worker processes over Keras Tuner's gRPC oracle protocol.

The chief serves the oracle (`KERASTUNER_ORACLE_IP`/`KERASTUNER_ORACLE_PORT`)
and supervises local workers (`KERASTUNER_TUNER_ID=worker<i>`): a worker
that has run its share of trials is replaced, and a crashed one is restarted
with the same tuner id, so that the oracle hands it back its unfinished
trial. A trial that crashes its worker twice is recorded as failed (the
oracle counts the attempts in its saved records, so a restarted chief
keeps the count).
"""

import collections
import os
import subprocess
import sys
import threading
import time

from tuner import folder
from tuner import kt_adapter as kt
from tuner.oracle import MAX_ATTEMPTS
from tuner.errors import SearchStopped, WorkerRecycle
from tuner.stopping import raise_if_stopped

# Exit status of a worker that ran `--trials-per-worker` trials.
RECYCLE_EXIT = 3
# Crashes of one worker in a row, with no trial ending meanwhile, that stop the search.
MAX_CRASHES = 5
POLL_S = 0.5
CHIEF_PID_ENV = "REGNET_TUNER_CHIEF_PID"


def serve_oracle(oracle, address):
    """Serves `oracle` over gRPC on `HOST:PORT` (port 0: a free one).

    Returns:
        `(server, servicer, port)`.
    """
    from concurrent import futures

    import grpc

    # One thread: the oracle's methods run one at a time.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = kt.serve(oracle, server)
    port = server.add_insecure_port(address)
    if not port:
        raise RuntimeError(f"Cannot serve the oracle on {address}.")
    server.start()
    return server, servicer, port


class _Supervisor:
    def __init__(self, oracle, out, connect_ip, port):
        self.oracle = oracle
        self.out = out
        self.env = dict(os.environ, KERASTUNER_ORACLE_IP=connect_ip,
                        KERASTUNER_ORACLE_PORT=str(port),
                        **{CHIEF_PID_ENV: str(os.getpid())})
        self.procs = {}
        self.crashes = collections.Counter()
        self.ended_at_spawn = {}
        os.makedirs(os.path.join(out, folder.LOGS), exist_ok=True)

    def spawn(self, tuner_id):
        log = open(os.path.join(self.out, folder.LOGS, f"{tuner_id}.log"), "ab")
        env = dict(self.env, KERASTUNER_TUNER_ID=tuner_id)
        self.procs[tuner_id] = subprocess.Popen(
            [sys.executable, "-m", "tuner", "worker", "--out", self.out],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        self.ended_at_spawn[tuner_id] = len(self.oracle.end_order)
        print(f"[chief] {tuner_id} started, pid {self.procs[tuner_id].pid}", flush=True)

    def poll(self):
        """Handles exited workers; returns True when all have finished."""
        for tuner_id, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None:
                continue
            if code == 0:
                del self.procs[tuner_id]
            elif code == RECYCLE_EXIT:
                print(f"[chief] {tuner_id} replaced after its share of trials", flush=True)
                self.spawn(tuner_id)
            else:
                self._crashed(tuner_id, code)
        return not self.procs

    def _crashed(self, tuner_id, code):
        progressed = len(self.oracle.end_order) > self.ended_at_spawn[tuner_id]
        self.crashes[tuner_id] = 1 if progressed else self.crashes[tuner_id] + 1
        log = os.path.join(self.out, folder.LOGS, f"{tuner_id}.log")
        if self.crashes[tuner_id] > MAX_CRASHES:
            raise SearchStopped(f"Search stopped: {tuner_id} crashed {MAX_CRASHES + 1} "
                                f"times in a row (last exit code {code}); see {log}.")
        trial = self.oracle.worker_died(
            tuner_id, f"{tuner_id} crashed {MAX_ATTEMPTS} times running this "
            f"trial (last exit code {code}); see {log}")
        note = "" if trial is None else f" during trial {trial.trial_id}"
        print(f"[chief] {tuner_id} exited with code {code}{note}; restarting it "
              "with the same tuner id", flush=True)
        self.spawn(tuner_id)

    def stop(self):
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_chief(search, config, out):
    """Serves `search.oracle` and runs `config.workers` local workers until done."""
    oracle = search.oracle
    host, _, port = config.oracle_address.rpartition(":")
    server, servicer, port = serve_oracle(oracle, f"{host}:{port}")
    connect_ip = "127.0.0.1" if host in ("0.0.0.0", "[::]", "::") else host.strip("[]")
    print(f"[chief] oracle serving on {host}:{port}; workers log to "
          f"{os.path.join(out, folder.LOGS)}", flush=True)
    supervisor = _Supervisor(oracle, out, connect_ip, port)
    try:
        for i in range(1, config.workers + 1):
            supervisor.spawn(f"worker{i}")
        while True:
            time.sleep(POLL_S)
            raise_if_stopped()
            local_done = supervisor.poll()
            remote_done = (not oracle.ongoing_trials and
                           (config.workers or servicer.stop_triggered
                            and not oracle.tuner_ids))
            if local_done and remote_done:
                break
    finally:
        supervisor.stop()
        server.stop(grace=1)
    if oracle.stop_reason:
        raise SearchStopped(oracle.stop_reason)


def _exit_with_chief():
    """A local worker exits when its chief dies (even by SIGKILL)."""
    chief = os.environ.get(CHIEF_PID_ENV)
    if not chief:
        return

    def watch():
        while os.getppid() == int(chief):
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def worker_main(out):
    """Runs trials for the chief named by the `KERASTUNER_*` environment
    (`tuner.folder.WORKER_ENV`, checked by the command line)."""
    _exit_with_chief()
    config = folder.read_config(out)
    from tuner.data import describe_dataset, load_dataset

    info = describe_dataset(config.dataset, config.image_size)
    data = load_dataset(info, config.batch_size, config.seed)
    hypermodel = folder.make_hypermodel(config, info)
    search = folder.make_tuner(config, out, hypermodel,
                               max_trials_per_process=config.trials_per_worker)
    try:
        folder.fit(search, data, config)
    except WorkerRecycle:
        return RECYCLE_EXIT
    return 0
