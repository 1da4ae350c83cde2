"""pan_offline: 123pan offline downloads from Python, over the library's C ABI (ctypes).

No compilation step: the module loads libpan_offline.so from $PAN_OFFLINE_LIB, from beside
this file, or from the system's library path.

    import pan_offline
    client = pan_offline.Client(clientID="...", clientSecret="...")   # or token=... per call
    task = client.offline_download(url="https://example.com/a.mp4", dirID=10023)
    status = client.wait(task, timeout=3600, on_progress=lambda t, p, s: print(f"{p:.1f}%"))
    assert status == pan_offline.TASK_SUCCEEDED

Failures raise pan_offline.Error (or a subclass per kind) carrying `.status` (the PAN_ERR_*
code), `.api_code` (the service's `code`, 0 if none) and `.trace_id` (the request's x-traceID).
"""

import ctypes
import ctypes.util
import json
import os

__all__ = [
    "Client", "Error", "InvalidArgument", "NetworkError", "TimeoutError", "ApiError",
    "Unauthorized", "TokenLimit", "RateLimited", "Cancelled", "OutcomeUnknown", "TaskLimit", "BatchItem", "parse_callback",
    "version",
    "TASK_DOWNLOADING", "TASK_FAILED", "TASK_SUCCEEDED", "TASK_RETRYING",
    "LOG_ERROR", "LOG_WARN", "LOG_INFO", "LOG_DEBUG",
]

TASK_DOWNLOADING, TASK_FAILED, TASK_SUCCEEDED, TASK_RETRYING = 0, 1, 2, 3
(OK, ERR_NULL_ARGUMENT, ERR_INVALID_UTF8, ERR_INVALID_JSON, ERR_INVALID_ARGUMENT, ERR_NETWORK,
 ERR_TIMEOUT, ERR_TLS, ERR_HTTP_STATUS, ERR_BAD_RESPONSE, ERR_API, ERR_UNAUTHORIZED,
 ERR_TOKEN_LIMIT, ERR_RATE_LIMITED, ERR_PANIC, ERR_INTERNAL, ERR_CANCELLED,
 ERR_OUTCOME_UNKNOWN, ERR_TASK_LIMIT) = range(19)


def _load():
    candidates = [os.environ.get("PAN_OFFLINE_LIB"),
                  os.path.join(os.path.dirname(os.path.abspath(__file__)), "libpan_offline.so"),
                  ctypes.util.find_library("pan_offline")]
    for path in candidates:
        if path and (os.path.exists(path) or not os.path.dirname(path)):
            return ctypes.CDLL(path)
    raise OSError("libpan_offline.so not found: set PAN_OFFLINE_LIB")


_lib = _load()
_c = ctypes
_P = _c.c_void_p
_PROGRESS = _c.CFUNCTYPE(_c.c_int32, _c.c_void_p, _c.c_int64, _c.c_double, _c.c_int32)
_BATCH = _c.CFUNCTYPE(_c.c_int32, _c.c_void_p, _c.c_size_t, _c.c_int32, _c.c_int64)
_LOG = _c.CFUNCTYPE(None, _c.c_void_p, _c.c_int32, _c.c_char_p)
LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = 1, 2, 3, 4
for name, res, args in [
    ("pan_client_set_log", _c.c_int32, [_P, _c.c_int32, _LOG, _c.c_void_p]),
    ("pan_offline_download_batch", _c.c_int32,
     [_P, _c.c_char_p, _c.c_char_p, _c.c_char_p, _BATCH, _c.c_void_p, _c.POINTER(_c.c_void_p)]),
    ("pan_offline_download_wait_many", _c.c_int32,
     [_P, _c.c_char_p, _c.POINTER(_c.c_int64), _c.c_size_t, _c.c_int64, _PROGRESS, _c.c_void_p,
      _c.POINTER(_c.c_int32)]),
    ("pan_client_new", _P, [_c.c_char_p]),
    ("pan_client_free", None, [_P]),
    ("pan_client_offline_download", _c.c_int32, [_P, _c.c_char_p, _c.c_char_p, _c.POINTER(_c.c_int64)]),
    ("pan_oss_offline_download", _c.c_int32, [_P, _c.c_char_p, _c.c_char_p, _c.POINTER(_c.c_int64)]),
    ("pan_offline_download_progress", _c.c_int32,
     [_P, _c.c_char_p, _c.c_int64, _c.POINTER(_c.c_double), _c.POINTER(_c.c_int32)]),
    ("pan_oss_offline_download_progress", _c.c_int32,
     [_P, _c.c_char_p, _c.c_int64, _c.POINTER(_c.c_double), _c.POINTER(_c.c_int32)]),
    ("pan_offline_download_wait", _c.c_int32,
     [_P, _c.c_char_p, _c.c_int64, _c.c_int64, _PROGRESS, _c.c_void_p, _c.POINTER(_c.c_int32)]),
    ("pan_callback_parse", _c.c_int32,
     [_c.c_char_p, _c.POINTER(_c.c_int32), _c.POINTER(_c.c_int64), _c.c_char_p, _c.c_size_t]),
    ("pan_access_token", _c.c_int32,
     [_P, _c.c_char_p, _c.c_char_p, _c.POINTER(_c.c_void_p), _c.POINTER(_c.c_int64)]),
    ("pan_string_free", None, [_c.c_void_p]),
    ("pan_last_error_code", _c.c_int32, []),
    ("pan_last_error_message", _c.c_char_p, []),
    ("pan_last_api_code", _c.c_int64, []),
    ("pan_last_trace_id", _c.c_char_p, []),
    ("pan_strerror", _c.c_char_p, [_c.c_int32]),
    ("pan_version", _c.c_char_p, []),
]:
    fn = getattr(_lib, name)
    fn.restype, fn.argtypes = res, args


class Error(Exception):
    """A failed call: `status` (PAN_ERR_*), `api_code` (the service's code), `trace_id`."""

    def __init__(self, status, message, api_code=0, trace_id=""):
        super().__init__(message)
        self.status, self.message, self.api_code, self.trace_id = status, message, api_code, trace_id

    def __str__(self):
        return f"{self.message} [status {self.status}: {_lib.pan_strerror(self.status).decode()}]"


class InvalidArgument(Error):
    """NULL, UTF-8, JSON or validation errors: nothing was sent."""


class NetworkError(Error):
    """The connection failed, broke, or TLS failed."""


class TimeoutError(Error):  # noqa: A001 - the library's own kind, not the builtin
    """A time limit ran out."""


class ApiError(Error):
    """The service answered with an error, or an answer that could not be understood."""


class Unauthorized(ApiError):
    """The access token is invalid or expired."""


class TokenLimit(ApiError):
    """More than three tokens of the client are live."""


class RateLimited(ApiError):
    """The service asked to slow down."""


class Cancelled(Error):
    """The progress callback stopped the wait."""


class TaskLimit(ApiError):
    """Too many offline tasks of the account are running; the task was not created."""


class OutcomeUnknown(Error):
    """A create was sent but no complete answer came back: the task may exist. Check before
    creating it again (the library never retries it)."""


_KINDS = {ERR_NULL_ARGUMENT: InvalidArgument, ERR_INVALID_UTF8: InvalidArgument,
          ERR_INVALID_JSON: InvalidArgument, ERR_INVALID_ARGUMENT: InvalidArgument,
          ERR_NETWORK: NetworkError, ERR_TLS: NetworkError, ERR_TIMEOUT: TimeoutError,
          ERR_HTTP_STATUS: ApiError, ERR_BAD_RESPONSE: ApiError, ERR_API: ApiError,
          ERR_UNAUTHORIZED: Unauthorized, ERR_TOKEN_LIMIT: TokenLimit,
          ERR_RATE_LIMITED: RateLimited, ERR_CANCELLED: Cancelled,
          ERR_OUTCOME_UNKNOWN: OutcomeUnknown, ERR_TASK_LIMIT: TaskLimit}


def _check(rc):
    if rc != OK:
        raise _KINDS.get(rc, Error)(rc, _lib.pan_last_error_message().decode("utf-8", "replace"),
                                    _lib.pan_last_api_code(),
                                    _lib.pan_last_trace_id().decode("utf-8", "replace"))


def _guarded(fn, raised):
    """Wraps a Python callback for the library: returns 1 (stop) when `fn` returns a true value
    or raises; an exception is kept in `raised` to be raised again by the caller, since nothing
    may unwind through C."""
    def call(*args):
        if fn is None:
            return 0
        try:
            return 1 if fn(*args) else 0
        except BaseException as e:
            raised.append(e)
            return 1
    return call


def _bytes(s):
    return None if s is None else s.encode("utf-8")


def version():
    """The library's version."""
    return _lib.pan_version().decode()


def parse_callback(body):
    """Parses the body the service POSTs to callBackUrl: returns (succeeded, file_id, reason)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    status, file_id = _c.c_int32(), _c.c_int64()
    reason = _c.create_string_buffer(4096)
    _check(_lib.pan_callback_parse(body, _c.byref(status), _c.byref(file_id), reason, len(reason)))
    return status.value == 0, file_id.value, reason.value.decode("utf-8", "replace")


class BatchItem:
    """What became of one item of a batch: `index`, `status` (0 when the task exists, else an
    ERR_* code), `task_id` (or None), `error`, `api_code`, `trace_id`, `duplicate_of` (or
    None), `from_journal`; `ok` is True when the task exists."""

    def __init__(self, d):
        self.index = d["index"]
        self.status = d["status"]
        self.task_id = d.get("taskID")
        self.error = d.get("error")
        self.api_code = d.get("apiCode", 0)
        self.trace_id = d.get("traceID", "")
        self.duplicate_of = d.get("duplicateOf")
        self.from_journal = d.get("fromJournal", False)

    @property
    def ok(self):
        return self.status == OK

    def __repr__(self):
        what = f"task {self.task_id}" if self.ok else f"error {self.status}: {self.error}"
        return f"<BatchItem {self.index}: {what}>"


class Client:
    """A client: configuration, a connection pool and, with clientID/clientSecret, its own
    access token. Keyword arguments are the configuration keys of pan_client_new (baseUrl,
    timeoutMs, maxRetries, pollIntervalMs, ...); `token` sets a default access token."""

    def __init__(self, token=None, **config):
        self._token = token
        self._ptr = _lib.pan_client_new(_bytes(json.dumps(config)) if config else None)
        if not self._ptr:
            _check(_lib.pan_last_error_code())

    def close(self):
        """Frees the client (also done when it is garbage collected)."""
        if getattr(self, "_ptr", None):
            if getattr(self, "_log_cb", None) is not None:
                _lib.pan_client_set_log(self._ptr, 0, _LOG(), None)
            _lib.pan_client_free(self._ptr)
            self._ptr = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()

    def _tok(self, token):
        return _bytes(token if token is not None else self._token)

    def offline_download(self, url, token=None, image=False, **options):
        """Creates a task (fileName, dirID, callBackUrl; for image hosting businessDirID).
        Returns the task ID."""
        task = _c.c_int64()
        fn = _lib.pan_oss_offline_download if image else _lib.pan_client_offline_download
        _check(fn(self._ptr, self._tok(token), _bytes(json.dumps(dict(url=url, **options))),
                  _c.byref(task)))
        return task.value

    def progress(self, task_id, token=None, image=False):
        """One progress query: returns (percent, status)."""
        pct, status = _c.c_double(), _c.c_int32()
        fn = _lib.pan_oss_offline_download_progress if image else _lib.pan_offline_download_progress
        _check(fn(self._ptr, self._tok(token), task_id, _c.byref(pct), _c.byref(status)))
        return pct.value, status.value

    def wait(self, task_id, timeout=None, on_progress=None, token=None):
        """Polls until the task ends; returns TASK_SUCCEEDED or TASK_FAILED. `on_progress(task_id,
        percent, status)` is called after each poll; returning True stops with Cancelled.
        An exception raised by it stops the wait too and is raised again here."""
        raised = []
        call = _guarded(on_progress, raised)
        status = _c.c_int32()
        cb = _PROGRESS(lambda _user, task, pct, status: call(task, pct, status))
        ms = -1 if timeout is None else int(timeout * 1000)
        rc = _lib.pan_offline_download_wait(self._ptr, self._tok(token), task_id, ms, cb, None,
                                            _c.byref(status))
        if raised:
            raise raised[0]
        _check(rc)
        return status.value

    def batch(self, items, journal=None, retry_unknown=False, timeout=None, on_item=None,
              token=None):
        """Creates a task for each item (a URL, or a dict of options as offline_download takes
        them), each once, at the client's pace; with `journal` (a path) a rerun after a crash
        creates nothing twice. Returns a list of BatchItem in input order; raises only when the
        batch itself cannot run. `on_item(index, status, task_id)` is called as each item
        settles, and also when an item starts waiting for running tasks to end (status
        ERR_TASK_LIMIT or ERR_RATE_LIMITED, task_id 0; it is reported again when it settles);
        returning True stops the batch (the rest are ERR_CANCELLED, unsent); an exception
        raised by it stops the batch too and is raised again here."""
        if isinstance(items, (str, bytes, dict)):
            raise TypeError("items must be an iterable of URLs or option dicts, not one item")
        items = [{"url": i} if isinstance(i, str) else dict(i) for i in items]
        opts = {}
        if journal is not None:
            opts["journal"] = os.fspath(journal)
        if retry_unknown:
            opts["retryUnknown"] = True
        if timeout is not None:
            opts["timeoutMs"] = max(1, int(timeout * 1000))
        raised = []
        call = _guarded(on_item, raised)
        trampoline = lambda _user, index, status, task_id: call(index, status, task_id)  # noqa: E731
        out = _c.c_void_p()
        rc = _lib.pan_offline_download_batch(
            self._ptr, self._tok(token), _bytes(json.dumps(items)),
            _bytes(json.dumps(opts)) if opts else None, _BATCH(trampoline), None, _c.byref(out))
        if raised:
            if out.value:
                _lib.pan_string_free(out)
            raise raised[0]
        _check(rc)
        try:
            return [BatchItem(d) for d in json.loads(_c.string_at(out.value).decode())]
        finally:
            _lib.pan_string_free(out)

    def wait_many(self, task_ids, timeout=None, on_progress=None, token=None):
        """Waits for all the tasks; returns their final statuses in order. `on_progress(task_id,
        percent, status)` is called after each poll; returning True stops with Cancelled."""
        ids = list(task_ids)
        for i in ids:
            if not isinstance(i, int) or isinstance(i, bool) or not 0 < i < 2 ** 63:
                raise InvalidArgument(ERR_INVALID_ARGUMENT,
                                      f"task IDs must be positive 64-bit integers, not {i!r}",
                                      0, "")
        raised = []
        call = _guarded(on_progress, raised)
        trampoline = lambda _user, task, pct, status: call(task, pct, status)  # noqa: E731
        arr = (_c.c_int64 * max(1, len(ids)))(*ids)
        statuses = (_c.c_int32 * max(1, len(ids)))()
        ms = -1 if timeout is None else int(timeout * 1000)
        rc = _lib.pan_offline_download_wait_many(self._ptr, self._tok(token), arr, len(ids), ms,
                                                 _PROGRESS(trampoline), None, statuses)
        if raised:
            raise raised[0]
        _check(rc)
        return list(statuses[:len(ids)])

    def set_log(self, log=None, level=LOG_DEBUG):
        """Sends the client's log lines to `log(level, message)`, or, with no function, to the
        `logging` module under the "pan_offline" logger (PAN levels mapped to DEBUG, INFO,
        WARNING, ERROR); `level` is the most detailed PAN level written (LOG_ERROR to
        LOG_DEBUG). Lines never hold a secret. `set_log(level=0)` turns the log off."""
        if level == 0:
            _check(_lib.pan_client_set_log(self._ptr, 0, _LOG(), None))
            self._log_cb = None
            return
        if log is None:
            import logging
            logger = logging.getLogger("pan_offline")
            levels = {LOG_ERROR: logging.ERROR, LOG_WARN: logging.WARNING,
                      LOG_INFO: logging.INFO, LOG_DEBUG: logging.DEBUG}

            def log(lvl, message):
                logger.log(levels.get(lvl, logging.DEBUG), message)

        def trampoline(_user, lvl, message):
            try:
                log(lvl, message.decode("utf-8", "replace"))
            except Exception:  # a log must not break the call; nothing unwinds through C
                pass

        cb = _LOG(trampoline)
        _check(_lib.pan_client_set_log(self._ptr, level, cb, None))
        self._log_cb = cb  # kept alive while the library may call it

    def access_token(self, client_id=None, client_secret=None):
        """Fetches a new token: returns (token, expires_at as Unix seconds)."""
        out, exp = _c.c_void_p(), _c.c_int64()
        _check(_lib.pan_access_token(self._ptr, _bytes(client_id), _bytes(client_secret),
                                     _c.byref(out), _c.byref(exp)))
        try:
            return _c.string_at(out.value).decode(), exp.value
        finally:
            _lib.pan_string_free(out)
