"""A minimal Chrome DevTools Protocol client over `--remote-debugging-pipe`.

No port is opened and no extra package is needed: Chromium reads NUL-terminated JSON
commands from file descriptor 3 and writes replies and events to descriptor 4.
"""
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe",
    "--window-size=1280,1000",
]


def find_chromium():
    env = os.environ.get("CHROMIUM", "")
    for name in (env, "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    raise SystemExit("no Chromium found (apt-get install chromium, or set CHROMIUM)")


class Browser:
    """One headless Chromium with a fresh profile; `call` sends a command and waits."""

    def __init__(self, timeout=60):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="check_site-profile-")
        pipe_in, self._w = os.pipe()
        self._r, pipe_out = os.pipe()
        # descriptors >= 10, so that moving them onto 3 and 4 cannot clobber one another
        cmd_r, out_w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
                        for fd in (pipe_in, pipe_out))
        args = [find_chromium(), *FLAGS, f"--user-data-dir={self.profile}",
                "about:blank"]
        # the shell puts Chromium's ends of the two pipes on descriptors 3 and 4
        wire = f'exec "$0" "$@" 3<&{cmd_r} 4>&{out_w} {cmd_r}<&- {out_w}>&-'
        self.proc = subprocess.Popen(
            ["bash", "-c", wire, *args], pass_fds=(cmd_r, out_w),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for fd in (pipe_in, pipe_out, cmd_r, out_w):
            os.close(fd)
        self._next_id = 0
        self._replies = {}
        self._events = queue.Queue()
        self._lock = threading.Condition()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        buf = b""
        while True:
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                break
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                msg = json.loads(raw)
                if "id" in msg:
                    with self._lock:
                        self._replies[msg["id"]] = msg
                        self._lock.notify_all()
                else:
                    self._events.put(msg)
        with self._lock:
            self._replies[None] = {"error": {"message": "Chromium closed the pipe"}}
            self._lock.notify_all()

    def call(self, method, session=None, **params):
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        with self._lock:
            while self._next_id not in self._replies and None not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{method}: no reply in {self.timeout} s")
                self._lock.wait(left)
            reply = self._replies.pop(self._next_id, None) or self._replies[None]
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error'].get('message')}")
        return reply["result"]

    def events(self, wait=0.0):
        """Events received so far (waiting up to `wait` seconds for the first one)."""
        out = []
        try:
            get = self._events.get
            first = get(timeout=wait) if wait else get(block=False)
            out.append(first)
            while True:
                out.append(self._events.get_nowait())
        except queue.Empty:
            return out

    def close(self):
        try:
            self.call("Browser.close")
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._w)
        shutil.rmtree(self.profile, ignore_errors=True)
