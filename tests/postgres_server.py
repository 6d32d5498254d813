"""A throwaway PostgreSQL server for the tests: initdb + pg_ctl as an unprivileged user, on
127.0.0.1 on a free port, in a temporary folder; each test asks it for a database of its own.

Debian's `postgresql` package provides the binaries (/usr/lib/postgresql/<version>/bin); `make test`
installs it. The server refuses to run as root, so when the tests run as root the data folder is
given to the user ``nobody`` and the server commands run as that user.
"""
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid

USER = "grader"  # the database role the tests connect as (password authentication)


def binaries():
    """The folder with initdb and pg_ctl (the newest installed version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if found:
        return os.path.dirname(found[-1])
    pg_ctl = shutil.which("pg_ctl")
    return os.path.dirname(pg_ctl) if pg_ctl else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """``start()`` a server under ``folder``, ``create_database()`` per test, ``stop()`` at the end."""

    def __init__(self, folder=None):
        self.bin = binaries()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (Debian package `postgresql`; `make test` installs it)")
        # not under pytest's tmp folder: its parents are private to root, and the server runs as nobody
        self._own_folder = folder is None
        self.folder = tempfile.mkdtemp(prefix="course-grader-pg-") if folder is None else str(folder)
        self.data = os.path.join(self.folder, "data")
        self.password = uuid.uuid4().hex
        self.port = None
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chmod(self.folder, 0o755)
            self._uid_gid = (nobody.pw_uid, nobody.pw_gid)
        else:
            self._uid_gid = None

    def _run(self, *cmd, **kw):
        user = {}
        if self._uid_gid:
            user = {"user": self._uid_gid[0], "group": self._uid_gid[1], "extra_groups": []}
        return subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=self.folder,
                              env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}, **user, **kw)

    def start(self):
        pwfile = os.path.join(self.folder, "pwfile")
        with open(pwfile, "w") as f:
            f.write(self.password + "\n")
        if self._uid_gid:
            os.chown(pwfile, *self._uid_gid)
            os.makedirs(self.data)
            os.chown(self.data, *self._uid_gid)
        self._run(os.path.join(self.bin, "initdb"), "-D", self.data, "-U", USER, "--pwfile", pwfile,
                  "-A", "scram-sha-256", "-E", "UTF8", "--no-sync")
        os.remove(pwfile)
        last_error = None
        for _ in range(5):  # another process may take the free port before the server binds it
            self.port = free_port()
            try:
                self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-w", "-t", "60",
                          "-l", os.path.join(self.data, "server.log"), "start",
                          "-o", f"-h 127.0.0.1 -p {self.port} -k {self.data} -c fsync=off -c max_connections=200")
                return self
            except subprocess.CalledProcessError as exc:
                last_error = exc
        raise RuntimeError(f"PostgreSQL did not start: {last_error.stderr}")

    def stop(self):
        if self.port is not None:
            self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")
            self.port = None
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database="postgres", password=None):
        pw = self.password if password is None else password
        return f"postgresql+psycopg://{USER}:{pw}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix="gradebook"):
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=self.password,
                             dbname="postgres", autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
