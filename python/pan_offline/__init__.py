"""pan_offline: 123pan offline downloads from Python, over the library's C ABI (ctypes).

Installed with `pip install ./python`, the package carries its own copy of the library
(`pan_offline/_native*.so`). Otherwise it loads libpan_offline.so from $PAN_OFFLINE_LIB or from
the system's library path.

    import pan_offline
    with pan_offline.Client(clientID="...", clientSecret="...") as client:  # or token=...
        task = client.offline_download(url="https://example.com/a.mp4", dirID=10023)
        status = client.wait(task, timeout=3600, on_progress=lambda t, p, s: print(f"{p:.1f}%"))
        assert status == pan_offline.TASK_SUCCEEDED

Failures raise pan_offline.Error (or a subclass per kind: InvalidArgument, NetworkError,
TimeoutError, ApiError, Unauthorized, TokenLimit, RateLimited, TaskLimit, AccountPenalty, Cancelled,
OutcomeUnknown) carrying `.status` (the PAN_ERR_* code), `.api_code` (the service's `code`, 0 if
none) and `.trace_id` (the request's x-traceID). Blocking calls release the GIL (ctypes does), so
other Python threads run while a call waits.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.machinery
import json
import math
import os
import signal
import threading
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Type, Union

__all__ = [
    "Client", "Error", "InvalidArgument", "NetworkError", "TimeoutError", "ApiError",
    "Unauthorized", "TokenLimit", "RateLimited", "Cancelled", "OutcomeUnknown", "TaskLimit",
    "AccountPenalty",
    "BatchItem", "parse_callback", "version", "strerror", "last_trace_id",
    "TASK_DOWNLOADING", "TASK_FAILED", "TASK_SUCCEEDED", "TASK_RETRYING",
    "LOG_ERROR", "LOG_WARN", "LOG_INFO", "LOG_DEBUG", "TOKEN_NEEDED", "TOKEN_REFUSED",
    "OK", "ERR_NULL_ARGUMENT", "ERR_INVALID_UTF8", "ERR_INVALID_JSON", "ERR_INVALID_ARGUMENT",
    "ERR_NETWORK", "ERR_TIMEOUT", "ERR_TLS", "ERR_HTTP_STATUS", "ERR_BAD_RESPONSE", "ERR_API",
    "ERR_UNAUTHORIZED", "ERR_TOKEN_LIMIT", "ERR_RATE_LIMITED", "ERR_PANIC", "ERR_INTERNAL",
    "ERR_CANCELLED", "ERR_OUTCOME_UNKNOWN", "ERR_TASK_LIMIT", "ERR_ACCOUNT_PENALTY",
    "BATCH_WAITING",
]

#: Task statuses, as the service reports them (`status` of the progress query).
TASK_DOWNLOADING, TASK_FAILED, TASK_SUCCEEDED, TASK_RETRYING = 0, 1, 2, 3
#: The library's status codes (PAN_OK, PAN_ERR_*), as in pan_offline.h.
(OK, ERR_NULL_ARGUMENT, ERR_INVALID_UTF8, ERR_INVALID_JSON, ERR_INVALID_ARGUMENT, ERR_NETWORK,
 ERR_TIMEOUT, ERR_TLS, ERR_HTTP_STATUS, ERR_BAD_RESPONSE, ERR_API, ERR_UNAUTHORIZED,
 ERR_TOKEN_LIMIT, ERR_RATE_LIMITED, ERR_PANIC, ERR_INTERNAL, ERR_CANCELLED,
 ERR_OUTCOME_UNKNOWN, ERR_TASK_LIMIT, ERR_ACCOUNT_PENALTY) = range(20)
#: task_id of a batch callback's wait notice (PAN_BATCH_WAITING): the item waits, and is
#: reported again when it settles.
BATCH_WAITING = -1
#: Log levels of Client.set_log (PAN_LOG_*).
LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = 1, 2, 3, 4
#: Why Client.set_token_source's function is called (PAN_TOKEN_*): no token yet or the last
#: one is due for renewal; or the service refused the last one.
TOKEN_NEEDED, TOKEN_REFUSED = 0, 1

#: on_progress(task_id, percent 0-100, TASK_* status) -> a true value stops the wait.
ProgressCallback = Callable[[int, float, int], Any]
#: on_item(index, status 0 or ERR_*, task_id or 0) -> a true value stops the batch.
ItemCallback = Callable[[int, int, int], Any]
#: log(level LOG_*, message).
LogFunction = Callable[[int, str], None]
#: token_source(reason TOKEN_*) -> token, or (token, expires_at as Unix seconds, 0 unknown).
TokenSource = Callable[[int], Union[str, Tuple[str, int]]]


def _load() -> ctypes.CDLL:
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.environ.get("PAN_OFFLINE_LIB")]
    # The copy `pip install` put in the package, named like an extension module.
    candidates += [os.path.join(here, "_native" + s) for s in importlib.machinery.EXTENSION_SUFFIXES]
    candidates.append(ctypes.util.find_library("pan_offline"))
    for path in candidates:
        if path and (os.path.exists(path) or not os.path.dirname(path)):
            return ctypes.CDLL(path)
    raise OSError("libpan_offline.so not found: install the package with pip (pip install ./python) "
                  "or set PAN_OFFLINE_LIB")


_lib = _load()
_c = ctypes
_P = _c.c_void_p
_PROGRESS = _c.CFUNCTYPE(_c.c_int32, _c.c_void_p, _c.c_int64, _c.c_double, _c.c_int32)
_BATCH = _c.CFUNCTYPE(_c.c_int32, _c.c_void_p, _c.c_size_t, _c.c_int32, _c.c_int64)
_LOG = _c.CFUNCTYPE(None, _c.c_void_p, _c.c_int32, _c.c_char_p)
_TOKEN_SOURCE = _c.CFUNCTYPE(None, _c.c_void_p, _c.c_int32, _c.c_void_p)
for _name, _res, _args in [
    ("pan_client_set_token_source", _c.c_int32, [_P, _TOKEN_SOURCE, _c.c_void_p]),
    ("pan_token_reply_set", _c.c_int32, [_P, _c.c_char_p, _c.c_int64]),
    ("pan_token_reply_fail", _c.c_int32, [_P, _c.c_char_p]),
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
    _fn = getattr(_lib, _name)
    _fn.restype, _fn.argtypes = _res, _args


def _text(raw: Optional[bytes]) -> str:
    return "" if raw is None else raw.decode("utf-8", "replace")


def strerror(status: int) -> str:
    """The library's fixed description of a status code (pan_strerror)."""
    if not isinstance(status, int) or not -2 ** 31 <= status < 2 ** 31:
        return "unknown status code"
    return _text(_lib.pan_strerror(status))


class Error(Exception):
    """A failed call: `status` (PAN_ERR_*), `message`, `api_code` (the service's `code`, 0 if
    none) and `trace_id` (the request's x-traceID, "" if none). Never holds a secret."""

    def __init__(self, status: int, message: str, api_code: int = 0, trace_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.api_code = api_code
        self.trace_id = trace_id

    def __str__(self) -> str:
        return f"{self.message} [status {self.status}: {strerror(self.status)}]"

    def __reduce__(self) -> Tuple[Any, Tuple[int, str, int, str]]:
        # Picklable and copyable (multiprocessing, concurrent.futures) with all four fields.
        return (type(self), (self.status, self.message, self.api_code, self.trace_id))


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
    """The service asked to slow down (HTTP 429 or its code 429)."""


class Cancelled(Error):
    """A callback stopped the wait or the batch."""


class TaskLimit(ApiError):
    """Too many offline tasks of the account are running; the task was not created."""


class AccountPenalty(ApiError):
    """A batch stopped: the service answered code 1 to several creates in a row (an account
    penalty, seen after bursts). Wait hours before trying again."""


class OutcomeUnknown(Error):
    """A create was sent but no complete answer came back: the task may exist. Check before
    creating it again (the library never retries it)."""


_KINDS: Dict[int, Type[Error]] = {
    ERR_NULL_ARGUMENT: InvalidArgument, ERR_INVALID_UTF8: InvalidArgument,
    ERR_INVALID_JSON: InvalidArgument, ERR_INVALID_ARGUMENT: InvalidArgument,
    ERR_NETWORK: NetworkError, ERR_TLS: NetworkError, ERR_TIMEOUT: TimeoutError,
    ERR_HTTP_STATUS: ApiError, ERR_BAD_RESPONSE: ApiError, ERR_API: ApiError,
    ERR_UNAUTHORIZED: Unauthorized, ERR_TOKEN_LIMIT: TokenLimit,
    ERR_RATE_LIMITED: RateLimited, ERR_CANCELLED: Cancelled,
    ERR_OUTCOME_UNKNOWN: OutcomeUnknown, ERR_TASK_LIMIT: TaskLimit,
    ERR_ACCOUNT_PENALTY: AccountPenalty}


def _check(rc: int) -> None:
    if rc != OK:
        raise _KINDS.get(rc, Error)(rc, _text(_lib.pan_last_error_message()),
                                    int(_lib.pan_last_api_code()), _text(_lib.pan_last_trace_id()))


class _Interrupts:
    """Ctrl-C during a blocking call. Python runs signal handlers only between bytecodes: here,
    in the progress callback, where a KeyboardInterrupt could not unwind through C (ctypes
    would print and drop it). So during the call SIGINT only sets a flag (in the main thread,
    when the default handler is installed); the callback then stops the call, and the
    KeyboardInterrupt is raised when it has returned."""

    def __init__(self) -> None:
        self.hit = False
        self._old: Any = None

    def _on_sigint(self, _signum: int, _frame: Any) -> None:
        self.hit = True

    def __enter__(self) -> "_Interrupts":
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._old = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        if self.hit:
            raise KeyboardInterrupt


def _guarded(fn: Optional[Callable[..., Any]], raised: List[BaseException],
             interrupts: Optional[_Interrupts] = None) -> Callable[..., int]:
    """Wraps a Python callback for the library: returns 1 (stop) when `fn` returns a true value
    or raises, or Ctrl-C was pressed; an exception is kept in `raised` to be raised again by
    the caller, since nothing may unwind through C. The wrapper takes the C callback's
    arguments, user data first."""
    def call(_user: Any, *args: Any) -> int:
        try:
            if raised or (interrupts is not None and interrupts.hit):
                return 1
            return 1 if fn is not None and fn(*args) else 0
        except BaseException as e:  # noqa: B036 - re-raised by the caller
            raised.append(e)
            return 1
    return call


# The clients (their Client._source_key) whose token source runs on this thread, innermost
# last: set_token_source() from inside would wait for the running source, that is for itself.
_in_source = threading.local()


def _answer_token(fn: TokenSource, reason: int, reply: Optional[int]) -> None:
    """Asks `fn` for a token and answers the library's `reply` with it, or with why there is
    none: whatever `fn` does (returns something unusable, raises, even BaseException), the
    reply is answered and nothing unwinds through C."""
    try:
        got = fn(reason)
        expires: Any = 0
        if isinstance(got, tuple) and len(got) == 2:
            got, expires = got
        if not isinstance(got, str):
            raise TypeError("the token source must return a str or (str, expires_at), not "
                            f"{type(got).__name__}")
        if isinstance(expires, bool) or not isinstance(expires, (int, float)) \
                or not 0 <= expires < 2 ** 63:
            raise ValueError("the token source's expires_at must be Unix seconds >= 0 (0: "
                             f"unknown), not {expires!r}")
        if _lib.pan_token_reply_set(reply, _bytes(got, "token"), int(expires)) != OK:
            raise InvalidArgument(int(_lib.pan_last_error_code()),
                                  "the token source's token was refused: "
                                  + _text(_lib.pan_last_error_message()))
    except BaseException as e:  # noqa: B036 - reported to the library, which fails the call
        try:
            message = e.message if isinstance(e, Error) else str(e) or type(e).__name__
        except BaseException:  # noqa: B036 - a __str__ that raises
            message = type(e).__name__
        try:
            _lib.pan_token_reply_fail(
                reply, message.replace("\0", "\\0").encode("utf-8", "backslashreplace"))
        except BaseException:  # noqa: B036 - unanswered, the library fails the call itself
            pass


def _bytes(s: Optional[str], name: str = "argument") -> Optional[bytes]:
    """A string for the C ABI: NUL-terminated UTF-8. A NUL inside would cut it short, so it is
    refused; lone surrogates pass through as bytes that are not UTF-8, which the library then
    refuses (ERR_INVALID_UTF8), as it would from C."""
    if s is None:
        return None
    if not isinstance(s, str):
        raise TypeError(f"{name} must be a str, not {type(s).__name__}")
    if "\0" in s:
        raise InvalidArgument(ERR_INVALID_ARGUMENT, f"`{name}` contains a NUL character")
    return s.encode("utf-8", "surrogatepass")


def _ms(timeout: Optional[float]) -> int:
    """Seconds (None or infinity: no limit) as the library's timeout_ms (-1: no limit)."""
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout) \
            or timeout < 0:
        raise InvalidArgument(ERR_INVALID_ARGUMENT,
                              f"timeout must be None or a number of seconds >= 0, not {timeout!r}")
    if math.isinf(timeout) or timeout >= 2 ** 53 / 1000:
        return -1  # longer than any process lives: no limit
    return int(timeout * 1000)


def _task_id(task_id: int) -> int:
    if isinstance(task_id, bool) or not isinstance(task_id, int) or not 0 < task_id < 2 ** 63:
        raise InvalidArgument(ERR_INVALID_ARGUMENT,
                              f"task IDs must be positive 64-bit integers, not {task_id!r}")
    return task_id


def version() -> str:
    """The library's version, "MAJOR.MINOR.PATCH"."""
    return _text(_lib.pan_version())


def last_trace_id() -> str:
    """The x-traceID of this thread's last call to the service, success or failure ("" if none):
    quote it when asking 123pan about a request."""
    return _text(_lib.pan_last_trace_id())


def parse_callback(body: Union[str, bytes]) -> Tuple[bool, int, str]:
    """Parses the body the service POSTs to callBackUrl: returns (succeeded, file_id, reason)."""
    raw = _bytes(body, "body") if isinstance(body, str) else bytes(body)
    if raw is None or b"\0" in raw:
        raise InvalidArgument(ERR_INVALID_ARGUMENT, "`body` contains a NUL character")
    status, file_id = _c.c_int32(), _c.c_int64()
    reason = _c.create_string_buffer(4096)
    _check(_lib.pan_callback_parse(raw, _c.byref(status), _c.byref(file_id), reason, len(reason)))
    return status.value == 0, file_id.value, _text(reason.value)


class BatchItem:
    """What became of one item of a batch: `index`, `status` (0 when the task exists, else an
    ERR_* code), `task_id` (or None), `error`, `api_code`, `trace_id`, `duplicate_of` (or
    None), `from_journal`; `ok` is True when the task exists."""

    def __init__(self, d: Mapping[str, Any]) -> None:
        self.index: int = d["index"]
        self.status: int = d["status"]
        self.task_id: Optional[int] = d.get("taskID")
        self.error: Optional[str] = d.get("error")
        self.api_code: int = d.get("apiCode", 0)
        self.trace_id: str = d.get("traceID", "")
        self.duplicate_of: Optional[int] = d.get("duplicateOf")
        self.from_journal: bool = d.get("fromJournal", False)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def __repr__(self) -> str:
        what = f"task {self.task_id}" if self.ok else f"error {self.status}: {self.error}"
        return f"<BatchItem {self.index}: {what}>"


class Client:
    """A client: configuration, a connection pool and, with clientID/clientSecret, its own
    access token. Keyword arguments are the configuration keys of pan_client_new (baseUrl,
    timeoutMs, maxRetries, pollIntervalMs, clientID, clientSecret, proxy, ...); `token` sets a
    default access token; set_token_source() makes a function of yours the supplier of the
    token instead. A context manager: `with Client(...) as c:` frees it at the end."""

    def __init__(self, token: Optional[str] = None, **config: Any) -> None:
        self._token = token
        self._log_cb: Any = None
        # Every token-source trampoline installed, kept until the C client is freed: one
        # replaced or cleared may still be running on another thread.
        self._token_cbs: List[Any] = []
        self._source_key = object()
        # Calls running on any thread: the C client is freed only when none is (pan_client_free
        # while a call runs is undefined in C; here close() defers the free to the last call).
        self._lock = threading.Lock()
        # set_log from two threads at once: the trampoline kept must be the one installed
        # last (keeping the other one's freed the installed one: SIGSEGV).
        self._log_lock = threading.Lock()
        self._busy = 0
        self._closing = False
        self._ptr: Optional[int] = _lib.pan_client_new(
            _bytes(json.dumps(config), "config") if config else None)
        if not self._ptr:
            _check(int(_lib.pan_last_error_code()))

    def close(self) -> None:
        """Frees the client (also done at the end of a `with` block and when it is collected).
        Calls running on other threads (or the callback this is called from) finish first:
        the client is freed when the last of them returns; new calls raise InvalidArgument."""
        lock = getattr(self, "_lock", None)
        if lock is None:
            return
        with lock:
            self._closing = True
            if self._busy:
                return
        self._free()

    def _free(self) -> None:
        ptr, self._ptr = self._ptr, None
        if ptr:
            _lib.pan_client_free(ptr)
        self._log_cb = None  # after the free: the library no longer calls it
        self._token_cbs = []

    def __copy__(self) -> "Client":
        # A copy would own the same C client, and both would free it.
        raise TypeError("a pan_offline.Client cannot be copied: share the one object")

    def __deepcopy__(self, memo: Dict[int, Any]) -> "Client":
        raise TypeError("a pan_offline.Client cannot be copied: share the one object")

    def __reduce__(self) -> Any:
        raise TypeError("a pan_offline.Client cannot be pickled: make one in each process")

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    def _enter(self) -> int:
        with self._lock:
            if self._closing or not self._ptr:
                raise InvalidArgument(ERR_NULL_ARGUMENT, "the client is closed")
            self._busy += 1
            return self._ptr

    def _leave(self) -> None:
        with self._lock:
            self._busy -= 1
            last = self._closing and self._busy == 0
        if last:
            self._free()

    def _tok(self, token: Optional[str]) -> Optional[bytes]:
        return _bytes(token if token is not None else self._token, "token")

    def offline_download(self, url: str, token: Optional[str] = None, image: bool = False,
                         **options: Any) -> int:
        """Creates a task (fileName, dirID, callBackUrl; for image hosting businessDirID).
        Returns the task ID."""
        task = _c.c_int64()
        fn = _lib.pan_oss_offline_download if image else _lib.pan_client_offline_download
        opts = _bytes(json.dumps(dict(url=url, **options)), "options")
        tok = self._tok(token)
        ptr = self._enter()
        try:
            _check(fn(ptr, tok, opts, _c.byref(task)))
        finally:
            self._leave()
        return task.value

    def progress(self, task_id: int, token: Optional[str] = None,
                 image: bool = False) -> Tuple[float, int]:
        """One progress query: returns (percent 0-100, TASK_* status)."""
        pct, status = _c.c_double(), _c.c_int32()
        fn = _lib.pan_oss_offline_download_progress if image else _lib.pan_offline_download_progress
        task, tok = _task_id(task_id), self._tok(token)
        ptr = self._enter()
        try:
            _check(fn(ptr, tok, task, _c.byref(pct), _c.byref(status)))
        finally:
            self._leave()
        return pct.value, status.value

    def wait(self, task_id: int, timeout: Optional[float] = None,
             on_progress: Optional[ProgressCallback] = None, token: Optional[str] = None) -> int:
        """Polls until the task ends; returns TASK_SUCCEEDED or TASK_FAILED. `timeout` is in
        seconds (None: no limit). `on_progress(task_id, percent, status)` is called after each
        poll; returning True stops with Cancelled. An exception raised by it (or a Ctrl-C
        during the wait) stops the wait too and is raised again here."""
        raised: List[BaseException] = []
        status = _c.c_int32()
        task, ms, tok = _task_id(task_id), _ms(timeout), self._tok(token)
        ptr = self._enter()
        try:
            with _Interrupts() as interrupts:
                cb = _PROGRESS(_guarded(on_progress, raised, interrupts))
                rc = _lib.pan_offline_download_wait(ptr, tok, task, ms, cb, None,
                                                    _c.byref(status))
        finally:
            self._leave()
        if raised:
            raise raised[0]
        _check(rc)
        return status.value

    def batch(self, items: Iterable[Union[str, Mapping[str, Any]]],
              journal: Optional[Union[str, "os.PathLike[str]"]] = None,
              retry_unknown: bool = False, timeout: Optional[float] = None,
              on_item: Optional[ItemCallback] = None,
              token: Optional[str] = None) -> List[BatchItem]:
        """Creates a task for each item (a URL, or a dict of options as offline_download takes
        them), each once, at the client's pace; with `journal` (a path) a rerun after a crash
        creates nothing twice. Returns a list of BatchItem in input order; raises only when the
        batch itself cannot run. `on_item(index, status, task_id)` is called as each item
        settles, and also when an item starts waiting for running tasks to end (status
        ERR_TASK_LIMIT or ERR_RATE_LIMITED, task_id BATCH_WAITING; it is reported again when it settles);
        returning True stops the batch (the rest are ERR_CANCELLED, unsent); an exception
        raised by it stops the batch too and is raised again here."""
        if isinstance(items, (str, bytes, dict)):
            raise TypeError("items must be an iterable of URLs or option dicts, not one item")
        listed = [{"url": i} if isinstance(i, str) else dict(i) for i in items]
        opts: Dict[str, Any] = {}
        if journal is not None:
            opts["journal"] = os.fspath(journal)
        if retry_unknown:
            opts["retryUnknown"] = True
        ms = _ms(timeout)
        if ms >= 0:  # else no limit, the batch's default
            opts["timeoutMs"] = max(1, ms)
        raised: List[BaseException] = []
        out = _c.c_void_p()
        text_items = _bytes(json.dumps(listed), "items")
        text_opts = _bytes(json.dumps(opts), "batch options") if opts else None
        tok = self._tok(token)
        ptr = self._enter()
        try:
            with _Interrupts() as interrupts:
                cb = _BATCH(_guarded(on_item, raised, interrupts))
                try:
                    rc = _lib.pan_offline_download_batch(ptr, tok, text_items, text_opts, cb,
                                                         None, _c.byref(out))
                finally:
                    if interrupts.hit and out.value:
                        _lib.pan_string_free(out)
                        out.value = None
        finally:
            self._leave()
        try:
            if raised:
                raise raised[0]
            _check(rc)
            text = _c.string_at(out.value).decode() if out.value else "[]"
            return [BatchItem(d) for d in json.loads(text)]
        finally:
            if out.value:
                _lib.pan_string_free(out)

    def wait_many(self, task_ids: Iterable[int], timeout: Optional[float] = None,
                  on_progress: Optional[ProgressCallback] = None,
                  token: Optional[str] = None) -> List[int]:
        """Waits for all the tasks; returns their final statuses in order. `on_progress(task_id,
        percent, status)` is called after each poll; returning True stops with Cancelled."""
        ids = [_task_id(i) for i in task_ids]
        raised: List[BaseException] = []
        arr = (_c.c_int64 * max(1, len(ids)))(*ids)
        statuses = (_c.c_int32 * max(1, len(ids)))()
        ms, tok = _ms(timeout), self._tok(token)
        ptr = self._enter()
        try:
            with _Interrupts() as interrupts:
                cb = _PROGRESS(_guarded(on_progress, raised, interrupts))
                rc = _lib.pan_offline_download_wait_many(ptr, tok, arr, len(ids), ms, cb, None,
                                                         statuses)
        finally:
            self._leave()
        if raised:
            raise raised[0]
        _check(rc)
        return [int(s) for s in statuses[:len(ids)]]

    def set_log(self, log: Optional[LogFunction] = None, level: int = LOG_DEBUG) -> None:
        """Sends the client's log lines to `log(level, message)`, or, with no function, to the
        `logging` module under the "pan_offline" logger (PAN levels mapped to DEBUG, INFO,
        WARNING, ERROR); `level` is the most detailed PAN level written (LOG_ERROR to
        LOG_DEBUG). Lines never hold a secret. `set_log(level=0)` turns the log off. Once it
        returns, the previous function is never called again. An exception raised by `log`
        is dropped: a log must not break the call it reports on."""
        cb: Any
        if level == 0:
            cb = _LOG()
        else:
            sink: LogFunction
            if log is None:
                import logging
                logger = logging.getLogger("pan_offline")
                levels = {LOG_ERROR: logging.ERROR, LOG_WARN: logging.WARNING,
                          LOG_INFO: logging.INFO, LOG_DEBUG: logging.DEBUG}

                def to_logging(lvl: int, message: str) -> None:
                    logger.log(levels.get(lvl, logging.DEBUG), message)
                sink = to_logging
            else:
                sink = log

            def trampoline(_user: Any, lvl: int, message: Optional[bytes]) -> None:
                try:
                    sink(lvl, _text(message))
                except Exception:  # nothing unwinds through C
                    pass
            cb = _LOG(trampoline)
        with self._log_lock:
            ptr = self._enter()
            try:
                _check(_lib.pan_client_set_log(ptr, level if level else 0, cb, None))
            finally:
                self._leave()
            # The library no longer calls the previous function once set_log returned.
            self._log_cb = cb if level else None

    def set_token_source(self, fn: Optional[TokenSource]) -> None:
        """Makes `fn` the supplier of the client's access token (pan_client_set_token_source),
        for tokens kept in a vault or handed out by an OAuth broker; None goes back to the
        client's clientID/clientSecret. Either way the cached token is forgotten.

        `fn(reason)` is called when a call made without a `token` needs one: `reason` is
        TOKEN_NEEDED (no token yet, or the last one is due for renewal) or TOKEN_REFUSED (the
        service refused the last one). It returns the token, or (token, expires_at) with
        expires_at in Unix seconds (0: unknown). One thread at a time calls it (maybe not the
        one that made the call); the others wait and share its answer. An exception raised
        by it, or a return of anything else, fails that call with Unauthorized ("the token
        source gave no token: " and str(exception)); the next call asks again after 1 s,
        doubling to a minute. Inside `fn`, calls of this client without a `token`, and
        set_token_source() of this client, raise InvalidArgument. Setting a source while the
        previous one runs on another thread waits for it to return."""
        if fn is not None and not callable(fn):
            raise TypeError(f"the token source must be callable or None, not {type(fn).__name__}")
        key = self._source_key
        if key in getattr(_in_source, "keys", ()):
            raise InvalidArgument(ERR_INVALID_ARGUMENT, "set_token_source() called from inside "
                                  "the client's own token source (it would wait for itself)")
        cb: Any = _TOKEN_SOURCE()  # NULL: back to the client's credentials
        if fn is not None:
            source = fn

            def trampoline(_user: Any, reason: int, reply: Optional[int]) -> None:
                keys: List[object] = []
                try:
                    keys = _in_source.__dict__.setdefault("keys", [])
                    keys.append(key)
                    _answer_token(source, reason, reply)
                except BaseException:  # noqa: B036 - nothing unwinds through C
                    pass
                finally:
                    if keys and keys[-1] is key:
                        keys.pop()
            cb = _TOKEN_SOURCE(trampoline)
        ptr = self._enter()
        try:
            if fn is not None:
                with self._lock:
                    self._token_cbs.append(cb)
            _check(_lib.pan_client_set_token_source(ptr, cb, None))
        finally:
            self._leave()

    def access_token(self, client_id: Optional[str] = None,
                     client_secret: Optional[str] = None) -> Tuple[str, int]:
        """Fetches a new token: returns (token, expires_at as Unix seconds)."""
        out, exp = _c.c_void_p(), _c.c_int64()
        cid, secret = _bytes(client_id, "client_id"), _bytes(client_secret, "client_secret")
        ptr = self._enter()
        try:
            _check(_lib.pan_access_token(ptr, cid, secret, _c.byref(out), _c.byref(exp)))
        finally:
            self._leave()
        try:
            return _c.string_at(out.value).decode() if out.value else "", exp.value
        finally:
            if out.value:
                _lib.pan_string_free(out)
