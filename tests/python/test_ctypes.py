"""The library through Python's ctypes, as a Python user would load it. Run by tests/c_abi.rs
with PAN_OFFLINE_LIB (the .so) and PAN_API_BASE_URL (the emulator) set."""

import ctypes
import json
import os
import threading
import unittest
import urllib.request

LIB = ctypes.CDLL(os.environ["PAN_OFFLINE_LIB"])
BASE = os.environ["PAN_API_BASE_URL"]

LIB.pan_offline_download.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int64)]
LIB.pan_offline_download.restype = ctypes.c_int32
LIB.pan_last_error_message.restype = ctypes.c_char_p
LIB.pan_last_error_copy.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
LIB.pan_last_error_copy.restype = ctypes.c_size_t
LIB.pan_last_api_code.restype = ctypes.c_int64
LIB.pan_last_trace_id.restype = ctypes.c_char_p
LIB.pan_strerror.argtypes = [ctypes.c_int32]
LIB.pan_strerror.restype = ctypes.c_char_p
LIB.pan_version.restype = ctypes.c_char_p

PAN_OK, PAN_ERR_NULL_ARGUMENT, PAN_ERR_INVALID_UTF8, PAN_ERR_INVALID_JSON = 0, 1, 2, 3
PAN_ERR_INVALID_ARGUMENT, PAN_ERR_UNAUTHORIZED = 4, 11


def create(token, opts):
    out = ctypes.c_int64(-1)
    rc = LIB.pan_offline_download(token, opts, ctypes.byref(out))
    return rc, out.value


def emulator(path):
    with urllib.request.urlopen(BASE + path, timeout=10) as r:
        return json.loads(r.read())


class CtypesTest(unittest.TestCase):
    def test_version(self):
        with open(os.path.join(os.path.dirname(__file__), "..", "..", "Cargo.toml")) as f:
            line = next(l for l in f if l.startswith("version"))
        self.assertEqual(LIB.pan_version().decode(), line.split('"')[1])

    def test_create_and_trace_id(self):
        opts = json.dumps({"url": BASE + "/files/py.bin?size=100", "fileName": "蟒蛇.bin"}).encode()
        rc, task = create(b"test-token", opts)
        self.assertEqual(rc, PAN_OK, LIB.pan_last_error_message())
        self.assertGreater(task, 0)
        self.assertEqual(LIB.pan_last_error_message(), b"")
        self.assertTrue(LIB.pan_last_trace_id().endswith(b"_emulator"))
        tasks = {t["taskID"]: t for t in emulator("/__emu/tasks")["tasks"]}
        self.assertEqual(tasks[task]["request"]["fileName"], "蟒蛇.bin")

    def test_errors(self):
        self.assertEqual(create(None, b"{}")[0], PAN_ERR_NULL_ARGUMENT)
        self.assertIn(b"token", LIB.pan_last_error_message())
        self.assertEqual(create(b"test-token", b'{"url":"\xff"}')[0], PAN_ERR_INVALID_UTF8)
        self.assertEqual(create(b"test-token", b"{nope")[0], PAN_ERR_INVALID_JSON)
        rc, task = create(b"test-token", b'{"url":"http://x/","dirId":3}')
        self.assertEqual((rc, task), (PAN_ERR_INVALID_ARGUMENT, -1))
        self.assertIn(b"dirId", LIB.pan_last_error_message())
        n = LIB.pan_last_error_copy(None, 0)
        buf = ctypes.create_string_buffer(n + 1)
        self.assertEqual(LIB.pan_last_error_copy(buf, n + 1), n)
        self.assertEqual(buf.value, LIB.pan_last_error_message())
        rc, _ = create(b"wrong-token", json.dumps({"url": BASE + "/files/x"}).encode())
        self.assertEqual(rc, PAN_ERR_UNAUTHORIZED)
        self.assertEqual(LIB.pan_last_api_code(), 401)
        self.assertNotIn(b"wrong-token", LIB.pan_last_error_message())
        self.assertIn(b"access token", LIB.pan_strerror(PAN_ERR_UNAUTHORIZED))

    def test_threads_see_their_own_errors(self):
        bad = []

        def work(i):
            for _ in range(10):
                if i % 2:
                    rc, _ = create(b"test-token", b"{}")
                    if rc != PAN_ERR_INVALID_ARGUMENT or b"url" not in LIB.pan_last_error_message():
                        bad.append(i)
                else:
                    rc, _ = create(b"test-token", json.dumps({"url": BASE + "/files/t"}).encode())
                    if rc != PAN_OK or LIB.pan_last_error_message() != b"":
                        bad.append(i)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(bad, [])


if __name__ == "__main__":
    unittest.main()
