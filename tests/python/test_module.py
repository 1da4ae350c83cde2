"""The Python module (python/pan_offline.py) against the emulator. Run by tests/c_abi.rs with
PAN_OFFLINE_LIB and PAN_API_BASE_URL set."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import pan_offline  # noqa: E402

BASE = os.environ["PAN_API_BASE_URL"]


class ModuleTest(unittest.TestCase):
    def setUp(self):
        self.client = pan_offline.Client(baseUrl=BASE, pollIntervalMs=200,
                                         clientID="test-client", clientSecret="test-secret")

    def tearDown(self):
        self.client.close()

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

    def test_callback_parse_and_tokens(self):
        self.assertEqual(pan_offline.parse_callback('{"status":1,"fileReason":"gone","fileID":0}'),
                         (False, 0, "gone"))
        token, expires = self.client.access_token()
        self.assertTrue(token.startswith("tok-test-client-"))
        self.assertGreater(expires, 0)
        self.assertRegex(pan_offline.version(), r"^\d+\.\d+\.\d+$")


if __name__ == "__main__":
    unittest.main()
