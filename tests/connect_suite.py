"""The Spark Connect suite (tests/connect) as a pytest process of its own, with
SPARK_REMOTE=local[2]: a process is either classic or Spark Connect, so the suite cannot share
the classic session of the process that starts it.

It starts as soon as the main session knows it will run
`tests/integration/test_connect_mode.py` (see `pytest_collection_finish` in tests/conftest.py),
and runs beside the tests before it: one pytest process keeps about 1.4 of this machine's 2
cores busy, and the Connect suite is a JVM of its own either way, so nothing is compiled or
started twice. The test reads its outcome at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 1800


@dataclass(frozen=True)
class ConnectSuiteOutcome:
    returncode: int
    output: str
    report: Path  # the JUnit XML report of the suite's tests


class ConnectSuite:
    """One run of tests/connect in a child pytest process, started once per session."""

    _process: subprocess.Popen | None = None
    _folder: Path | None = None
    _outcome: ConnectSuiteOutcome | None = None

    @classmethod
    def start(cls, folder: Path) -> None:
        """Starts the suite in the background, its report and temporary files in `folder`."""
        if cls._process is not None:
            return
        cls._folder = folder
        env = {
            **os.environ,
            "SPARK_REMOTE": "local[2]",
            # beside this process's own 2g session
            "RETAIL_SEG_DRIVER_MEMORY": "2g",
        }
        env.pop("SPARK_CONNECT_MODE_ENABLED", None)
        log = (cls._folder / "output.log").open("wb")
        cls._process = subprocess.Popen(
            [sys.executable, "-m", "pytest", "tests/connect", "-q", "-p", "no:cacheprovider",
             f"--junitxml={cls._folder / 'connect.xml'}",
             f"--basetemp={cls._folder / 'basetemp'}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its process group: pytest and the server JVM it starts
        )  # fmt: skip
        log.close()

    @classmethod
    def outcome(cls, folder: Path) -> ConnectSuiteOutcome:
        """Waits for the suite (starting it in `folder` if nothing did) and returns how it
        ended."""
        if cls._outcome is None:
            cls.start(folder)
            assert cls._process is not None and cls._folder is not None
            try:
                returncode = cls._process.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                cls.stop()
                returncode = cls._process.wait()
            output = (cls._folder / "output.log").read_text(errors="replace")
            cls._outcome = ConnectSuiteOutcome(returncode, output, cls._folder / "connect.xml")
        return cls._outcome

    @classmethod
    def stop(cls) -> None:
        """Ends a suite still running (the session ended before its test read it)."""
        if cls._process is not None and cls._process.poll() is None:
            os.killpg(cls._process.pid, signal.SIGKILL)
            cls._process.wait()
