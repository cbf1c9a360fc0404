"""The processes of a chaos run: private Redis + Postgres (deploy/local/servers.sh), Cairn's
roles each in its own process on its own loopback port, and the SDK app.

Every child is started from the main thread in its own session (a terminal's Ctrl-C reaches
only the harness, which then stops everything in order) and with PR_SET_PDEATHSIG, so even a
harness killed with -9 leaves no role or app behind; servers.sh's --owner-pid watchdog covers
the servers. Each process's output is appended to one log file across its restarts.
"""

import ctypes
import os
import signal
import socket
import subprocess
import threading
import time

import httpx

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVERS = os.path.join(ROOT, "deploy", "local", "servers.sh")

_libc = ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> None:
    _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return False


class Process:
    """A child process that can be killed with SIGKILL and started again, same port, same log."""

    def __init__(self, name: str, argv: list[str], env: dict, log_path: str, port: int, ready_path: str):
        self.name, self.argv, self.env, self.log_path, self.port, self.ready_path = name, argv, env, log_path, port, ready_path
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.planned_kills = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert threading.current_thread() is threading.main_thread(), "PDEATHSIG is tied to the spawning thread"
        with open(self.log_path, "ab") as log:
            log.write(f"==== chaos harness: starting {self.name} at {time.strftime('%H:%M:%S')} ====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent)
        self.starts += 1

    def ready(self, seconds: float = 30) -> bool:
        return wait_http(self.url + self.ready_path, seconds)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s: used only at teardown."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()


class Servers:
    """Private Redis + Postgres under `directory`, stopped by `stop()` or by the watchdog."""

    def __init__(self, directory: str):
        self.dir = directory
        self.env: dict[str, str] = {}

    def start(self) -> None:
        out = subprocess.run([SERVERS, "start", self.dir, "--owner-pid", str(os.getpid())],
                             check=True, capture_output=True, text=True, timeout=180).stdout
        self.env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    @property
    def postgres_url(self) -> str:
        return self.env["CAIRN_POSTGRES_URL"]

    @property
    def redis_url(self) -> str:
        return self.env["CAIRN_REDIS_URL"]

    @property
    def redis_port(self) -> str:
        return self.redis_url.rsplit(":", 1)[1].split("/")[0]

    def flushall(self) -> None:
        subprocess.run(["redis-cli", "-p", self.redis_port, "FLUSHALL"], check=True, capture_output=True, timeout=30)

    def stop_postgres(self) -> None:
        # Immediate: a crash, not a clean shutdown; fsync is on, so committed data must survive.
        subprocess.run([SERVERS, "postgres-stop", self.dir, "immediate"], check=True, capture_output=True, timeout=60)

    def start_postgres(self) -> None:
        subprocess.run([SERVERS, "postgres-start", self.dir], check=True, capture_output=True, timeout=90)

    def stop(self) -> None:
        if os.path.isdir(self.dir):  # also after a start that failed half way
            subprocess.run([SERVERS, "stop", self.dir], capture_output=True, timeout=90)


class Cluster:
    """1 event API, 1 API, 2 schedulers, 2 executors, and the app; see `roles`."""

    ROLE_COUNTS = [("event-api", 1), ("api", 1), ("scheduler", 2), ("executor", 2)]

    def __init__(self, bin_dir: str, servers: Servers, run_dir: str, lease_seconds: int, python: str):
        self.bin_dir, self.servers, self.run_dir = bin_dir, servers, run_dir
        self.logs = os.path.join(run_dir, "logs")
        os.makedirs(self.logs, exist_ok=True)
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("CAIRN_", "INNGEST_"))}  # nothing of the caller's Cairn/SDK settings leaks in
        self.role_env = base | {
            "CAIRN_POSTGRES_URL": servers.postgres_url, "CAIRN_REDIS_URL": servers.redis_url,
            "CAIRN_HOST": "127.0.0.1", "CAIRN_DEV": "1", "CAIRN_LOG_LEVEL": "info",
            "CAIRN_EXECUTOR_LEASE_SECONDS": str(lease_seconds),
            # Backoffs of 15 s, 30 s … become 0.15 s, 0.3 s …: retries happen within the run.
            "CAIRN_RETRY_BACKOFF_SCALE": "0.01",
            "CAIRN_SHUTDOWN_GRACE_SECONDS": "2",
        }
        self.roles: list[Process] = []
        for kind, count in self.ROLE_COUNTS:
            for index in range(1, count + 1):
                name = kind if count == 1 else f"{kind}-{index}"
                port = free_port()
                self.roles.append(Process(
                    name, [os.path.join(bin_dir, f"cairn-{kind}")], self.role_env | {"CAIRN_PORT": str(port)},
                    os.path.join(self.logs, f"{name}.log"), port, "/readyz"))
        app_port = free_port()
        self.app = Process(
            "app", [python, os.path.join(os.path.dirname(__file__), "app.py")],
            base | {"APP_PORT": str(app_port), "INNGEST_API_BASE_URL": self.role("api").url,
                    "INNGEST_EVENT_API_BASE_URL": self.role("event-api").url, "PYTHONUNBUFFERED": "1"},
            # Ready when /counts answers: /signals long-polls for 1 s, as long as the probe's
            # own timeout, so probing it was a race a loaded machine could lose every time.
            os.path.join(self.logs, "app.log"), app_port, "/counts")

    def role(self, name: str) -> Process:
        return next(p for p in self.roles if p.name == name)

    def of_kind(self, kind: str) -> list[Process]:
        return [p for p in self.roles if p.name == kind or p.name.startswith(kind + "-")]

    def migrate(self) -> None:
        with open(os.path.join(self.logs, "migrate.log"), "ab") as log:
            subprocess.run([os.path.join(self.bin_dir, "cairn"), "migrate"], env=self.role_env, check=True,
                           stdout=log, stderr=subprocess.STDOUT, timeout=120)

    def start(self) -> None:
        for p in self.roles + [self.app]:
            p.start()
        for p in self.roles + [self.app]:
            if not p.ready(60):
                raise RuntimeError(f"{p.name} did not become ready; see {p.log_path}")

    def sync_app(self) -> int:
        """Syncs the app through the API; returns how many functions Cairn lists for it."""
        reply = httpx.post(self.role("api").url + "/v1/apps/sync", json={"url": self.app.url + "/api/inngest"}, timeout=30)
        reply.raise_for_status()
        functions = httpx.get(self.role("api").url + "/v1/apps/cairn-chaos/functions", timeout=10).json()["data"]
        return len(functions)

    def stop(self) -> None:
        for p in self.roles + [self.app]:
            try:
                p.stop()
            except Exception:
                p.kill()
