"""Create one offline download task and follow it to the end (typed: mypy --strict clean).

    PAN_TOKEN=... python create_and_wait.py https://example.com/a.mp4
"""

import os
import sys

import pan_offline


def show(task_id: int, percent: float, status: int) -> bool:
    print(f"task {task_id}: {percent:.1f}%")
    return False  # True would stop the wait (pan_offline.Cancelled)


def main(url: str) -> int:
    with pan_offline.Client(token=os.environ["PAN_TOKEN"]) as client:
        try:
            task = client.offline_download(url, fileName="example.bin")
            status = client.wait(task, timeout=600, on_progress=show)
        except pan_offline.OutcomeUnknown as e:
            print(f"the task may exist: check the drive (trace ID {e.trace_id})", file=sys.stderr)
            return 1
        except pan_offline.Error as e:
            print(f"error {e.status}, server code {e.api_code}, trace ID {e.trace_id}: {e.message}",
                  file=sys.stderr)
            return 1
    return 0 if status == pan_offline.TASK_SUCCEEDED else 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
