"""Appends notifications to a JSON Lines file that scripts can tail or load."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from notifiers.base import Notification, TransientDeliveryError


class FileNotifier:
    """Appends each notification as one JSON object on one line.

    Several processes may append to the same file: it is opened with O_APPEND and every line goes out in a
    single write(2), so lines never interleave. There is no fsync per line: once `send` returns the kernel has
    the line, which survives a crash of the process but not of the machine.
    """

    name = "file"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._lock = threading.Lock()

    def send(self, notification: Notification) -> None:
        """Append the notification; an unwritable file is transient because the operator can fix it."""
        line = json.dumps(notification.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            self._write(line.encode())
        except OSError as exc:
            raise TransientDeliveryError(f"cannot append to {self.path}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        """Close the file; a later `send` opens it again."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def _write(self, data: bytes) -> None:
        # The lock keeps `close` from another thread from pulling the descriptor out from under a write.
        with self._lock:
            if self._fd is None:
                # Same permissions as open(): 0o666 narrowed by the umask.
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
            written = os.write(self._fd, data)
            # Regular files only write short when the disk fills up; finishing the line beats leaving half.
            while written < len(data):
                written += os.write(self._fd, data[written:])
