"""The Python package (python/pan_offline) against the emulator, with PAN_API_BASE_URL set.

Run two ways: by tests/c_abi.rs from the source tree (PYTHONPATH=python, PAN_OFFLINE_LIB set),
and by .ci/python.sh with the package installed by `pip install ./python` in a fresh virtual
environment and PAN_OFFLINE_EXPECT_INSTALLED=1: then the package and its library must both come
from site-packages, with no environment variable naming them."""

import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import pan_offline

BASE = os.environ["PAN_API_BASE_URL"]
INSTALLED = os.environ.get("PAN_OFFLINE_EXPECT_INSTALLED") == "1"


class InstalledTest(unittest.TestCase):
    @unittest.skipUnless(INSTALLED, "run from the source tree")
    def test_the_installed_package_carries_its_library(self):
        self.assertNotIn("PAN_OFFLINE_LIB", os.environ)
        pkg = os.path.dirname(pan_offline.__file__)
        self.assertIn("site-packages", pkg)
        self.assertEqual(os.path.dirname(pan_offline._lib._name), pkg)
        self.assertTrue(os.path.exists(os.path.join(pkg, "py.typed")))

BASE = os.environ["PAN_API_BASE_URL"]


def emu(path, obj=None):
    """A control route of the emulator: GET, or POST of `obj` as JSON; returns its answer."""
    import json
    import urllib.request
    req = urllib.request.Request(BASE + path, method="GET" if obj is None else "POST",
                                 data=None if obj is None else json.dumps(obj).encode())
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10) as r:
        return json.loads(r.read())


def token_fetches():
    return sum(1 for r in emu("/__emu/requests")
               if (r["method"], r["path"]) == ("POST", "/api/v1/access_token"))


class TokenSourceTest(unittest.TestCase):
    """Client.set_token_source: clients without credentials whose token comes from Python."""

    def test_one_answer_serves_every_thread(self):
        calls = []
        lock = threading.Lock()

        def source(reason):
            with lock:
                calls.append(reason)
            time.sleep(0.2)  # the other threads arrive while it runs, and wait for it
            return "test-token", 0
        with pan_offline.Client(baseUrl=BASE) as client:
            client.set_token_source(source)
            start = threading.Barrier(4)
            tasks, errors = [], []

            def creates(n):
                start.wait()
                try:
                    for i in range(3):
                        tasks.append(client.offline_download(
                            BASE + f"/files/src{n}-{i}.bin?size=1000"))
                except BaseException as e:  # reported below
                    errors.append(e)
            threads = [threading.Thread(target=creates, args=(n,)) for n in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual(errors, [])
            self.assertEqual(len(set(tasks)), 12)
            self.assertEqual(calls, [pan_offline.TOKEN_NEEDED])
            # An explicit token still wins, and the source is not asked for it.
            self.assertGreater(client.offline_download(BASE + "/files/own.bin?size=1000",
                                                       token="test-token"), 0)
            self.assertEqual(len(calls), 1)
            client.set_token_source(None)  # back to the credentials, of which it has none
            with self.assertRaises(pan_offline.InvalidArgument):
                client.offline_download(BASE + "/files/none.bin?size=1000")
            with self.assertRaises(TypeError):
                client.set_token_source("test-token")  # type: ignore[arg-type]

    def test_a_source_that_fails_fails_the_call(self):
        def sealed(reason):
            raise RuntimeError("the vault is sealed")
        answers = [sealed, lambda r: 42, lambda r: ("test-token", -1), lambda r: "bad\x00token",
                   lambda r: b"test-token"]
        for answer in answers:
            with pan_offline.Client(baseUrl=BASE) as client:
                client.set_token_source(answer)
                with self.assertRaises(pan_offline.Unauthorized) as cm:
                    client.offline_download(BASE + "/files/sealed.bin?size=1000")
                self.assertEqual(cm.exception.status, pan_offline.ERR_UNAUTHORIZED)
                self.assertIn("the token source gave no token", cm.exception.message)
        with pan_offline.Client(baseUrl=BASE) as client:
            client.set_token_source(sealed)
            with self.assertRaises(pan_offline.Unauthorized) as cm:
                client.offline_download(BASE + "/files/sealed.bin?size=1000")
            self.assertIn("the token source gave no token: the vault is sealed",
                          cm.exception.message)

    def test_a_refused_token_is_renewed_by_the_source(self):
        emu("/__emu/config", {"tokens": ["src-token-1"]})
        calls = []

        def source(reason):
            calls.append(reason)
            return ("src-token-1" if len(calls) == 1 else "src-token-2"), int(time.time()) + 3600
        with pan_offline.Client(baseUrl=BASE) as client:
            client.set_token_source(source)
            self.assertGreater(client.offline_download(BASE + "/files/r1.bin?size=1000"), 0)
            self.assertEqual(calls, [pan_offline.TOKEN_NEEDED])
            emu("/__emu/config", {"revoke": ["src-token-1"], "tokens": ["src-token-2"]})
            self.assertGreater(client.offline_download(BASE + "/files/r2.bin?size=1000"), 0)
            self.assertEqual(calls, [pan_offline.TOKEN_NEEDED, pan_offline.TOKEN_REFUSED])
            self.assertGreater(client.offline_download(BASE + "/files/r3.bin?size=1000"), 0)
            self.assertEqual(len(calls), 2)

    def test_replacing_a_source_while_it_runs(self):
        import gc
        inside, release = threading.Event(), threading.Event()

        def slow(reason):
            inside.set()
            release.wait(10)
            return "test-token"
        with pan_offline.Client(baseUrl=BASE) as client:
            client.set_token_source(slow)
            out = []
            call = threading.Thread(target=lambda: out.append(
                client.offline_download(BASE + "/files/slow.bin?size=1000")))
            call.start()
            self.assertTrue(inside.wait(10))
            # Replaced (on another thread: the library waits for the running source) and
            # collected while the old one still runs: it must stay alive until it returns.
            swap = threading.Thread(target=client.set_token_source, args=(lambda r: "test-token",))
            swap.start()
            del slow
            gc.collect()
            time.sleep(0.2)
            release.set()
            call.join(20)
            swap.join(20)
            self.assertEqual(len(out), 1)
            self.assertGreater(out[0], 0)
            self.assertGreater(client.offline_download(BASE + "/files/new.bin?size=1000"), 0)

    def test_setting_the_source_from_inside_it_is_refused(self):
        with pan_offline.Client(baseUrl=BASE) as client:
            def source(reason):
                client.set_token_source(None)  # would wait for this very call
                return "test-token"
            client.set_token_source(source)
            with self.assertRaises(pan_offline.Unauthorized) as cm:
                client.offline_download(BASE + "/files/inside.bin?size=1000")
            self.assertIn("from inside the client's own token source", cm.exception.message)
            self.assertNotIn("[status", cm.exception.message)


class OwnershipTest(unittest.TestCase):
    """The wrapper's ownership of C handles and callbacks, raced (issue 19)."""

    def test_a_client_cannot_be_copied_or_pickled(self):
        import copy
        import pickle
        with pan_offline.Client(baseUrl=BASE) as c:
            for make in (copy.copy, copy.deepcopy, pickle.dumps):
                with self.assertRaises(TypeError):
                    make(c)

    def test_set_log_from_two_threads_never_frees_the_installed_callback(self):
        # In a child process: a crash (SIGSEGV) is a result, not the end of the suite.
        code = """
import threading, pan_offline, sys
c = pan_offline.Client(baseUrl=sys.argv[1])
def flip(n):
    for i in range(300):
        c.set_log(lambda lvl, m: None)
        c.offline_download(sys.argv[1] + "/files/x", token="test-token") if i % 50 == 0 else None
ts = [threading.Thread(target=flip, args=(n,)) for n in range(2)]
[t.start() for t in ts]; [t.join() for t in ts]
c.offline_download(sys.argv[1] + "/files/x", token="test-token")
print("ok")
"""
        r = subprocess.run([sys.executable, "-c", code, BASE], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "ok"), r.stderr)

    def test_the_command_line_survives_an_ascii_terminal(self):
        env = dict(os.environ, PAN_API_BASE_URL=BASE, PYTHONIOENCODING="ascii",
                   XDG_STATE_HOME=tempfile.mkdtemp())
        env["PAN_TOKEN"] = "test-token"
        # A trace ID the terminal cannot show, printed on stdout with the new task.
        import json as _json
        import urllib.request
        fault = {"path": "/api/v1/offline/download", "status": 200,
                 "body": {"code": 0, "message": "ok", "data": {"taskID": 5},
                          "x-traceID": "\u8ffd\u8e2a-1"}}
        urllib.request.urlopen(urllib.request.Request(
            BASE + "/__emu/faults", data=_json.dumps(fault).encode(), method="POST"), timeout=10)
        r = subprocess.run([sys.executable, "-m", "pan_offline", BASE + "/files/x"],
                           env=env, capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("Traceback", r.stderr)
        self.assertIn("\\u8ffd", r.stdout)  # escaped, not dropped


class ModuleTest(unittest.TestCase):
    # One client with credentials for the class: each client fetches its own token, and the
    # service (and the emulator) refuses a fourth live token of one clientID.
    client: pan_offline.Client

    @classmethod
    def setUpClass(cls):
        cls.client = pan_offline.Client(baseUrl=BASE, pollIntervalMs=200,
                                        clientID="test-client", clientSecret="test-secret")

    @classmethod
    def tearDownClass(cls):
        cls.client.close()

    def test_create_and_wait_with_progress(self):
        task = self.client.offline_download(BASE + "/files/m.bin?size=200000", fileName="m.bin")
        seen = []
        status = self.client.wait(task, timeout=20, on_progress=lambda t, p, s: seen.append((t, p, s)))
        self.assertEqual(status, pan_offline.TASK_SUCCEEDED)
        self.assertEqual(seen[-1], (task, 100.0, pan_offline.TASK_SUCCEEDED))
        pct, st = self.client.progress(task)
        self.assertEqual((pct, st), (100.0, pan_offline.TASK_SUCCEEDED))

    def test_errors_carry_status_code_and_trace_id(self):
        with self.assertRaises(pan_offline.InvalidArgument) as cm:
            self.client.offline_download("ftp://x/y")
        self.assertEqual(cm.exception.status, pan_offline.ERR_INVALID_ARGUMENT)
        self.assertIn("url", cm.exception.message)
        with self.assertRaises(pan_offline.Unauthorized) as cm:
            self.client.offline_download(BASE + "/files/x", token="not-a-valid-token")
        self.assertEqual(cm.exception.api_code, 401)
        self.assertTrue(cm.exception.trace_id.endswith("_emulator"))
        with self.assertRaises(pan_offline.InvalidArgument) as cm:
            pan_offline.Client(timeoutMS=5)
        self.assertEqual(cm.exception.status, pan_offline.ERR_INVALID_ARGUMENT)
        # A client is made with the system's CA store read for https; a missing
        # $SSL_CERT_FILE is the TLS error it reports (the code comes from the library).
        os.environ["SSL_CERT_FILE"] = "/nonexistent/bundle.pem"
        try:
            with self.assertRaises(pan_offline.NetworkError) as cm:
                pan_offline.Client(baseUrl="https://127.0.0.1:9")
            self.assertEqual(cm.exception.status, pan_offline.ERR_TLS)
            self.assertIn("SSL_CERT_FILE", str(cm.exception))
        finally:
            del os.environ["SSL_CERT_FILE"]

    def test_a_lost_answer_is_an_unknown_outcome(self):
        import json
        import urllib.request
        req = urllib.request.Request(BASE + "/__emu/faults", data=json.dumps({"drop": "after", "path": "/api/v1/offline/download"}).encode(),
                                     method="POST")
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req).read()
        with self.assertRaises(pan_offline.OutcomeUnknown) as cm:
            self.client.offline_download("https://example.com/lost.mp4", token="test-token")
        self.assertEqual(cm.exception.status, pan_offline.ERR_OUTCOME_UNKNOWN)
        self.assertIn("may have been created", cm.exception.message)

    def test_batch_and_wait_many(self):
        import tempfile
        journal = os.path.join(tempfile.mkdtemp(), "batch.journal")
        client = pan_offline.Client(baseUrl=BASE, pollIntervalMs=200, token="test-token")
        try:
            seen = []
            items = [BASE + "/files/p1.bin?size=1000", {"url": BASE + "/files/p2.bin?size=1000",
                                                        "dirID": 10023},
                     "ftp://nope", BASE + "/files/p1.bin?size=1000"]
            results = client.batch(items, journal=journal,
                                   on_item=lambda i, s, t: seen.append(i))
            self.assertEqual(seen, [0, 1, 2, 3])
            self.assertEqual([r.ok for r in results], [True, True, False, True])
            self.assertEqual(results[2].status, pan_offline.ERR_INVALID_ARGUMENT)
            self.assertEqual(results[3].duplicate_of, 0)
            again = client.batch(items, journal=journal)
            self.assertTrue(again[0].from_journal and again[0].task_id == results[0].task_id)
            statuses = client.wait_many([results[0].task_id, results[1].task_id], timeout=20)
            self.assertEqual(statuses, [pan_offline.TASK_SUCCEEDED] * 2)
            with self.assertRaises(ZeroDivisionError):
                client.batch(["https://example.com/z.mp4"], on_item=lambda i, s, t: 1 / 0)
            with self.assertRaises(pan_offline.InvalidArgument):
                client.batch(items, journal=__file__)  # not a journal
            with self.assertRaises(TypeError):
                client.batch(BASE + "/files/one")  # a URL is not a list of URLs
            with self.assertRaises(pan_offline.InvalidArgument):
                client.wait_many([2 ** 64 + 394756])
        finally:
            client.close()

    def test_log_goes_to_the_logging_module_without_secrets(self):
        import logging
        client = pan_offline.Client(baseUrl=BASE, token="test-token")
        try:
            with self.assertLogs("pan_offline", level="DEBUG") as logs:
                client.set_log()
                client.offline_download(BASE + "/files/log.bin?size=1000")
            text = "\n".join(logs.output)
            self.assertIn("POST /api/v1/offline/download", text)
            self.assertIn("HTTP 200", text)
            self.assertNotIn("test-token", text)
            seen = []
            client.set_log(lambda lvl, msg: seen.append(lvl), level=pan_offline.LOG_INFO)
            client.offline_download(BASE + "/files/log2.bin?size=1000")
            self.assertTrue(seen and all(lvl <= pan_offline.LOG_INFO for lvl in seen))
            client.set_log(level=0)
            seen.clear()
            client.offline_download(BASE + "/files/log3.bin?size=1000")
            self.assertEqual(seen, [])
        finally:
            client.close()

    def test_cancel_and_callback_exceptions(self):
        task = self.client.offline_download(BASE + "/files/big.bin?size=50000000")
        with self.assertRaises(pan_offline.Cancelled):
            self.client.wait(task, on_progress=lambda t, p, s: True)

        def boom(t, p, s):
            raise KeyError("from the callback")
        with self.assertRaises(KeyError):
            self.client.wait(task, on_progress=boom)
        with self.assertRaises(pan_offline.TimeoutError):
            self.client.wait(task, timeout=0.5)

    def test_blocking_calls_release_the_gil(self):
        # While the main thread is inside wait() (one C call), another Python thread runs.
        task = self.client.offline_download(BASE + "/files/gil.bin?size=400000")
        ticks = []
        stop = threading.Event()

        def ticker():
            while not stop.is_set():
                ticks.append(time.monotonic())
                time.sleep(0.01)
        polls = []
        t = threading.Thread(target=ticker)
        t.start()
        try:
            status = self.client.wait(task, timeout=20, on_progress=lambda *a: polls.append(
                time.monotonic()))
        finally:
            stop.set()
            t.join()
        self.assertEqual(status, pan_offline.TASK_SUCCEEDED)
        self.assertGreaterEqual(len(polls), 2)
        between = [x for x in ticks if polls[0] < x < polls[1]]
        self.assertGreater(len(between), 3, "the other thread ran between two polls of one wait")

    def test_context_manager_and_closed_client(self):
        with pan_offline.Client(baseUrl=BASE, token="test-token") as client:
            self.assertGreater(client.offline_download(BASE + "/files/ctx.bin?size=1000"), 0)
        with self.assertRaises(pan_offline.InvalidArgument):
            client.offline_download(BASE + "/files/ctx.bin?size=1000")  # never the global client
        client.close()  # twice is fine

    def test_errors_are_one_family(self):
        for kind in (pan_offline.RateLimited, pan_offline.Unauthorized, pan_offline.TaskLimit,
                     pan_offline.OutcomeUnknown, pan_offline.NetworkError,
                     pan_offline.TimeoutError, pan_offline.InvalidArgument,
                     pan_offline.Cancelled):
            self.assertTrue(issubclass(kind, pan_offline.Error))
        with self.assertRaises(pan_offline.Error) as cm:
            self.client.offline_download(BASE + "/files/x", token="not-a-valid-token")
        self.assertEqual((cm.exception.status, cm.exception.api_code),
                         (pan_offline.ERR_UNAUTHORIZED, 401))
        self.assertTrue(cm.exception.trace_id)

    def test_command_line_tool(self):
        state_home = tempfile.mkdtemp()  # the runs' shared state, not the user's

        def run(*args, token="test-token", **env_extra):
            env = dict(os.environ, PAN_API_BASE_URL=BASE, XDG_STATE_HOME=state_home, **env_extra)
            env.pop("PAN_TOKEN", None)
            if token is not None:
                env["PAN_TOKEN"] = token
            return subprocess.run([sys.executable, "-m", "pan_offline", *args], env=env,
                                  capture_output=True, text=True, timeout=60)
        r = run(BASE + "/files/cli.bin?size=100000", "--wait", "--name", "cli.bin")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"task \d+ created \(trace ID \S+\)")
        self.assertRegex(r.stdout, r"task \d+ succeeded")
        r = run(BASE + "/files/missing?status=404", "--wait")  # the download fails
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        r = run(BASE + "/files/x", token="not-a-valid-token")
        self.assertEqual(r.returncode, 1)
        self.assertIn("error 11", r.stderr)
        self.assertIn("server code: 401", r.stderr)
        self.assertIn("trace ID: ", r.stderr)
        self.assertNotIn("not-a-valid-token", r.stdout + r.stderr)
        self.assertEqual(run().returncode, 2)  # no URL
        self.assertEqual(run("u", "--batch", "f").returncode, 2)  # both
        self.assertEqual(run("u", "--dir", "x1").returncode, 2)
        self.assertEqual(run("u", "--dir", "\u0661\u0660").returncode, 2)  # not ASCII digits
        self.assertEqual(run("u", "--dir", " +1_0").returncode, 2)
        self.assertEqual(run("--parse-callback", "{}", "--wait").returncode, 2)
        self.assertEqual(run("u", token=None).returncode, 2)  # no credentials
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(f"# two files\n{BASE}/files/b1.bin?size=1000\n\n{BASE}/files/b2.bin?size=1000\n")
        journal = f.name + ".journal"
        r = run("--batch", f.name, "--journal", journal, "--wait")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("2 items: 2 with a task, 0 failed, 0 unknown", r.stdout)
        self.assertIn("2 tasks: 2 succeeded, 0 failed", r.stdout)
        r = run("--batch", "/nonexistent/list.txt")
        self.assertEqual(r.returncode, 1)
        r = run("--parse-callback", '{"status":0,"fileReason":"","fileID":77}')
        self.assertEqual((r.returncode, r.stdout.strip()),
                         (0, "callback: download succeeded, file ID 77"))
        r = run("--verbose", BASE + "/files/v.bin?size=1000")
        self.assertEqual(r.returncode, 0)
        self.assertIn("[pan debug]", r.stderr)
        self.assertNotIn("test-token", r.stderr)

    def test_command_line_runs_share_one_token(self):
        # The default shared state, $XDG_STATE_HOME/pan-offline: two runs, one token fetch.
        state_home = tempfile.mkdtemp()

        def run(*args, **env_extra):
            env = dict(os.environ, PAN_API_BASE_URL=BASE, XDG_STATE_HOME=state_home,
                       PAN_CLIENT_ID="test-client", PAN_CLIENT_SECRET="test-secret")
            for name in ("PAN_TOKEN", "PAN_SHARED_STATE"):
                env.pop(name, None)
            env.update(env_extra)
            return subprocess.run([sys.executable, "-m", "pan_offline", *args], env=env,
                                  capture_output=True, text=True, timeout=60)
        before = token_fetches()
        for i in range(2):
            r = run(BASE + f"/files/shared{i}.bin?size=1000")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertRegex(r.stdout, r"task \d+ created")
        self.assertEqual(token_fetches() - before, 1)
        state = os.path.join(state_home, "pan-offline")
        self.assertTrue(os.path.isdir(state))
        self.assertEqual(os.stat(state).st_mode & 0o777, 0o700)
        # --state DIR, $PAN_SHARED_STATE and --no-state choose another place, or none (with a
        # token of their own: no fetch, and the class's client holds a live token too).
        other = tempfile.mkdtemp()
        r = run(BASE + "/files/s1.bin?size=1000", "--state", os.path.join(other, "mine"),
                XDG_STATE_HOME=os.path.join(other, "xdg"), PAN_TOKEN="test-token")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(BASE + "/files/s2.bin?size=1000", XDG_STATE_HOME=os.path.join(other, "xdg"),
                PAN_SHARED_STATE=os.path.join(other, "env"), PAN_TOKEN="test-token")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run(BASE + "/files/s3.bin?size=1000", "--no-state",
                XDG_STATE_HOME=os.path.join(other, "xdg"), PAN_TOKEN="test-token")
        self.assertEqual(r.returncode, 0, r.stderr)
        home = os.path.join(other, "home")  # a relative XDG_STATE_HOME is ignored (XDG spec)
        r = run(BASE + "/files/s4.bin?size=1000", HOME=home, XDG_STATE_HOME="relative/dir",
                PAN_TOKEN="test-token")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(os.listdir(other)), ["env", "home", "mine"])
        self.assertTrue(os.path.isdir(os.path.join(home, ".local", "state", "pan-offline")))
        # A place the user chose and the library refuses is an error; the default, a warning.
        os.chmod(os.path.join(other, "mine"), 0o777)
        r = run("u", "--state", os.path.join(other, "mine"), PAN_TOKEN="test-token")
        self.assertEqual(r.returncode, 1)
        self.assertIn("sharedState", r.stderr)
        os.chmod(state, 0o777)
        r = run(BASE + "/files/s5.bin?size=1000", PAN_TOKEN="test-token")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("warning: no shared state", r.stderr)
        self.assertEqual(run("u", "--state", other, "--no-state").returncode, 2)
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--no-state", r.stdout)
        self.assertIn("XDG_STATE_HOME", r.stdout)

    def test_careless_inputs_are_errors_of_the_family(self):
        import copy
        import math
        import pickle
        with self.assertRaises(pan_offline.Unauthorized) as cm:
            self.client.offline_download(BASE + "/files/x", token="not-a-valid-token")
        for clone in (pickle.loads(pickle.dumps(cm.exception)), copy.copy(cm.exception)):
            self.assertIsInstance(clone, pan_offline.Unauthorized)
            self.assertEqual((clone.status, clone.api_code, clone.trace_id, clone.message),
                             (cm.exception.status, cm.exception.api_code,
                              cm.exception.trace_id, cm.exception.message))
        with self.assertRaises(pan_offline.InvalidArgument):  # NUL would cut the token short
            self.client.offline_download(BASE + "/files/x", token="test-token\x00xyz")
        with self.assertRaises(pan_offline.InvalidArgument) as cm:  # not UTF-8
            self.client.offline_download(BASE + "/files/x", token="test\udcfftoken")
        self.assertEqual(cm.exception.status, pan_offline.ERR_INVALID_UTF8)
        with self.assertRaises(pan_offline.InvalidArgument):
            pan_offline.parse_callback('{"status":0}\x00junk')
        for bad in (2 ** 63, 0, -1, True, "5"):
            with self.assertRaises(pan_offline.InvalidArgument):
                self.client.progress(bad)  # type: ignore[arg-type]
        for bad in (math.nan, -1, "1"):
            with self.assertRaises(pan_offline.InvalidArgument):
                self.client.wait(394756, timeout=bad)  # type: ignore[arg-type]
        self.assertEqual(pan_offline.strerror(2 ** 40), "unknown status code")
        task = self.client.offline_download(BASE + "/files/inf.bin?size=1000")
        self.assertEqual(self.client.wait(task, timeout=math.inf), pan_offline.TASK_SUCCEEDED)
        self.assertEqual(self.client.wait(task, timeout=1e300), pan_offline.TASK_SUCCEEDED)

    def test_close_while_a_call_runs_waits_for_it(self):
        client = pan_offline.Client(baseUrl=BASE, token="test-token", pollIntervalMs=200)
        task = client.offline_download(BASE + "/files/close.bin?size=300000")
        threading.Timer(0.3, client.close).start()
        self.assertEqual(client.wait(task, timeout=20), pan_offline.TASK_SUCCEEDED)
        with self.assertRaises(pan_offline.InvalidArgument):
            client.progress(task)
        # Closed from inside its own callback: the wait ends normally, then the client goes.
        client = pan_offline.Client(baseUrl=BASE, token="test-token", pollIntervalMs=200)
        task = client.offline_download(BASE + "/files/close2.bin?size=100000")
        self.assertEqual(client.wait(task, timeout=20, on_progress=lambda *a: client.close()),
                         pan_offline.TASK_SUCCEEDED)
        with self.assertRaises(pan_offline.InvalidArgument):
            client.progress(task)

    def test_ctrl_c_during_a_wait_is_a_keyboard_interrupt(self):
        import signal
        task = self.client.offline_download(BASE + "/files/sigint.bin?size=50000000")
        threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        t0 = time.monotonic()
        with self.assertRaises(KeyboardInterrupt):
            self.client.wait(task, timeout=20)
        self.assertLess(time.monotonic() - t0, 5)

    def test_callback_parse_and_tokens(self):
        self.assertEqual(pan_offline.parse_callback('{"status":1,"fileReason":"gone","fileID":0}'),
                         (False, 0, "gone"))
        token, expires = self.client.access_token()
        self.assertTrue(token.startswith("tok-test-client-"))
        self.assertGreater(expires, 0)
        self.assertRegex(pan_offline.version(), r"^\d+\.\d+\.\d+$")


if __name__ == "__main__":
    unittest.main()
