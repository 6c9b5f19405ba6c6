"""Run one callable on several threads at once, collecting results and errors."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def run_in_threads(work: Callable[[], Any], count: int = 4) -> tuple[list[Any], list[Exception]]:
    results: list[Any] = []
    errors: list[Exception] = []

    def run() -> None:
        try:
            results.append(work())
        except Exception as error:  # noqa: BLE001 - returned to the test, which asserts on it
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors
