"""python -m pan_offline: the command-line tool, as the C example (examples-c/offline_download.c).

    python -m pan_offline URL [--name FILE_NAME] [--dir DIR_ID] [--callback URL] [--wait] [--verbose]
    python -m pan_offline --batch FILE [--dir DIR_ID] [--journal PATH] [--wait] [--verbose]
    python -m pan_offline --parse-callback BODY
    (with URL or --batch: [--state DIR | --no-state])

Credentials: PAN_TOKEN, or PAN_CLIENT_ID and PAN_CLIENT_SECRET; the base URL is $PAN_API_BASE_URL
or https://open-api.123pan.com. Runs share the access token and the pacing of calls through the
client's `sharedState`: $PAN_SHARED_STATE (a directory or redis://...) when set, else
$XDG_STATE_HOME/pan-offline (~/.local/state/pan-offline when XDG_STATE_HOME is unset, empty or
not absolute); --state DIR chooses another, --no-state none. So runs one after another fetch one
token between them, not one each. Exit status: 0 created (and, with --wait, succeeded); 3 a
download failed; 1 an error; 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List, NoReturn, Optional, Sequence

import pan_offline as pan

_STATUS = {pan.TASK_DOWNLOADING: "downloading", pan.TASK_FAILED: "failed",
           pan.TASK_SUCCEEDED: "succeeded", pan.TASK_RETRYING: "retrying"}
_LEVELS = {1: "error", 2: "warn", 3: "info", 4: "debug"}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        print(f"{self.prog}: {message}", file=sys.stderr)
        sys.exit(2)


def _print_error(what: str, e: pan.Error) -> None:
    print(f"{what} failed: error {e.status} ({pan.strerror(e.status)})\n  {e.message}",
          file=sys.stderr)
    if e.api_code:
        print(f"  server code: {e.api_code}", file=sys.stderr)
    if e.trace_id:
        print(f"  trace ID: {e.trace_id}", file=sys.stderr)


def _progress(task_id: int, percent: float, status: int) -> None:
    print(f"task {task_id}: {percent:6.2f}% {_STATUS.get(status, 'unknown')}", flush=True)


def _dir_id(text: str) -> int:
    """--dir: a folder ID, ASCII digits only (as the C example takes it)."""
    if not text or not all("0" <= ch <= "9" for ch in text):
        raise argparse.ArgumentTypeError("--dir takes a folder ID: digits only")
    return int(text)


def _xdg_state_dir() -> Optional[str]:
    """$XDG_STATE_HOME/pan-offline, per the XDG base directory spec: a relative or empty
    $XDG_STATE_HOME is ignored, and the default is ~/.local/state. None when there is no home."""
    base = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(base):
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".local", "state")
    return os.path.join(base, "pan-offline")


def _shared_state(args: argparse.Namespace) -> Optional[str]:
    """The `sharedState` of the client: --state, else $PAN_SHARED_STATE, else the XDG one;
    None for --no-state."""
    if args.no_state:
        return None
    if args.state is not None:
        return str(args.state)
    return os.environ.get("PAN_SHARED_STATE") or _xdg_state_dir()


def _read_batch(path: str, dir_id: Optional[int]) -> List[Dict[str, Any]]:
    items: List[Dict[str, Any]] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            url = line.strip()
            if not url or url.startswith("#"):
                continue
            item: Dict[str, Any] = {"url": url}
            if dir_id is not None:
                item["dirID"] = dir_id
            items.append(item)
    return items


def _batch(client: pan.Client, args: argparse.Namespace) -> int:
    try:
        items = _read_batch(args.batch, args.dir)
    except (OSError, UnicodeDecodeError) as e:
        print(f"{args.batch}: cannot read the list: {e}", file=sys.stderr)
        return 1

    def on_item(index: int, status: int, task_id: int) -> None:
        if status == pan.OK:
            print(f"item {index}: task {task_id}", flush=True)
        elif task_id == pan.BATCH_WAITING:
            print(f"item {index}: waiting: {pan.strerror(status)}", flush=True)
        else:
            print(f"item {index}: error {status} ({pan.strerror(status)})", flush=True)

    try:
        results = client.batch(items, journal=args.journal, on_item=on_item)
    except pan.Error as e:
        _print_error("batch", e)
        return 1
    created = [r for r in results if r.ok]
    unknown = [r for r in results if r.status == pan.ERR_OUTCOME_UNKNOWN]
    failed = len(results) - len(created) - len(unknown)
    print(f"{len(results)} items: {len(created)} with a task, {failed} failed, {len(unknown)} "
          "unknown (check those before rerunning)")
    code = 1 if failed or unknown else 0
    if args.wait and created:
        ids = sorted({r.task_id for r in created if r.task_id is not None})
        ended = set()

        def on_many(task_id: int, percent: float, status: int) -> None:
            if status in (pan.TASK_SUCCEEDED, pan.TASK_FAILED):
                if task_id not in ended:  # each task's end once
                    ended.add(task_id)
                    print(f"task {task_id}: {_STATUS[status]}", flush=True)
            else:
                _progress(task_id, percent, status)

        try:
            statuses = client.wait_many(ids, on_progress=on_many)
        except pan.Error as e:
            _print_error("wait for the tasks", e)
            return 1
        bad = statuses.count(pan.TASK_FAILED)
        print(f"{len(ids)} tasks: {len(ids) - bad} succeeded, {bad} failed")
        if bad and code == 0:
            code = 3
    return code


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the tool; returns its exit status."""
    # A terminal or pipe that cannot show every character (PYTHONIOENCODING=ascii, a C
    # locale) gets escapes, not a UnicodeEncodeError: the service's messages are Chinese.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    script = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    p = _Parser(prog="python -m pan_offline" if script in ("", "__main__.py", "-c") else script,
                description="Create a 123pan offline download task, and optionally follow it.",
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="credentials: PAN_TOKEN, or PAN_CLIENT_ID and PAN_CLIENT_SECRET\n"
                       "shared state (the token and the pacing of calls, shared by every run):\n"
                       "  --state DIR, else $PAN_SHARED_STATE, else $XDG_STATE_HOME/pan-offline\n"
                       "  (~/.local/state/pan-offline when XDG_STATE_HOME is unset, empty or\n"
                       "  not absolute); --no-state: none")
    p.add_argument("url", nargs="?", help="the URL to download into the drive")
    p.add_argument("--name", help="fileName: the name of the file in the drive")
    p.add_argument("--dir", type=_dir_id, help="dirID: the folder ID (digits only)")
    p.add_argument("--callback", help="callBackUrl: where the service reports the end")
    p.add_argument("--batch", metavar="FILE", help="one URL per line; '#' lines are skipped")
    p.add_argument("--journal", metavar="PATH", help="with --batch: a rerun creates nothing twice")
    p.add_argument("--wait", action="store_true", help="follow the task(s) to the end")
    p.add_argument("--verbose", action="store_true", help="the library's log on stderr")
    p.add_argument("--parse-callback", metavar="BODY", help="parse a callback body and exit")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--state", metavar="DIR",
                       help="share the token and the pacing with other runs in DIR (a directory "
                            "of yours, or redis://[:PASSWORD@]HOST:PORT/DB)")
    where.add_argument("--no-state", action="store_true",
                       help="share nothing: this run fetches its own token")
    args = p.parse_args(argv)

    if args.parse_callback is not None:
        if any(v not in (None, False) for k, v in vars(args).items() if k != "parse_callback"):
            p.error("--parse-callback BODY takes no other argument")
        try:
            ok, file_id, reason = pan.parse_callback(args.parse_callback)
        except pan.Error as e:
            _print_error("parse callback", e)
            return 1
        print(f"callback: download succeeded, file ID {file_id}" if ok
              else f"callback: download failed: {reason}")
        return 0
    token = os.environ.get("PAN_TOKEN")
    client_id, secret = os.environ.get("PAN_CLIENT_ID"), os.environ.get("PAN_CLIENT_SECRET")
    if (args.url is None) == (args.batch is None) or (args.journal and not args.batch):
        p.error("give one URL, or --batch FILE")
    if token is None and (client_id is None or secret is None):
        p.error("no credentials: set PAN_TOKEN, or PAN_CLIENT_ID and PAN_CLIENT_SECRET")

    config: Dict[str, Any] = {}
    if token is None:
        config = {"clientID": client_id, "clientSecret": secret}
    state = _shared_state(args)
    chosen = args.state is not None or bool(os.environ.get("PAN_SHARED_STATE"))
    if state is not None and not chosen:
        # The XDG default: its base directory is made as the spec says (0700); the library
        # makes pan-offline itself, 0700 too.
        try:
            os.makedirs(os.path.dirname(state), mode=0o700, exist_ok=True)
        except OSError as e:
            print(f"warning: no shared state ({e}); going on without it (--no-state to say so)",
                  file=sys.stderr)
            state = None
    if state is not None:
        config["sharedState"] = state
    try:
        client = pan.Client(token=token, **config)
    except pan.Error as e:
        if chosen or "sharedState" not in config or "sharedState" not in e.message:
            _print_error("create client", e)
            return 1
        # The default location cannot be used (say, another user's): not worth failing for.
        print(f"warning: no shared state ({e.message}); going on without it (--no-state to say "
              "so)", file=sys.stderr)
        del config["sharedState"]
        try:
            client = pan.Client(token=token, **config)
        except pan.Error as e2:
            _print_error("create client", e2)
            return 1
    with client:
        if args.verbose:
            client.set_log(lambda lvl, msg: print(f"[pan {_LEVELS.get(lvl, '?')}] {msg}",
                                                  file=sys.stderr))
        if args.batch:
            return _batch(client, args)
        options: Dict[str, Any] = {}
        if args.name is not None:
            options["fileName"] = args.name
        if args.dir is not None:
            options["dirID"] = args.dir
        if args.callback is not None:
            options["callBackUrl"] = args.callback
        try:
            task = client.offline_download(args.url, **options)
        except pan.Error as e:
            _print_error("create offline download task", e)
            if isinstance(e, pan.OutcomeUnknown):
                print("  the task may exist: check the drive before running this again",
                      file=sys.stderr)
            return 1
        print(f"task {task} created (trace ID {pan.last_trace_id()})", flush=True)
        if not args.wait:
            return 0
        try:
            status = client.wait(task, on_progress=_progress)
        except pan.Error as e:
            _print_error("wait for the task", e)
            return 1
        if status == pan.TASK_SUCCEEDED:
            print(f"task {task} succeeded")
            return 0
        print(f"task {task} failed (the callback, if one was set, carries the reason)")
        return 3


if __name__ == "__main__":
    sys.exit(main())
