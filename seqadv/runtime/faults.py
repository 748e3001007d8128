"""A crash on purpose, for the tests that show a killed run resumes bit for bit.

The trainers never read the environment: a script reads `SEQADV_CRASH_AT` once, at the
command line (`CrashPoint.from_environment`), and hands the point to its trainer
(`Trainer(config, crash_at=...)`); a Python caller passes one or none.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Callable, Optional

ENVIRONMENT_VARIABLE = "SEQADV_CRASH_AT"


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # as a crash: no `finally`, no handler runs


@dataclass(frozen=True)
class CrashPoint:
    """Kill the process (SIGKILL) once `phase`'s `unit` is done, before its checkpoint is
    written (`in_write` False), or after the new checkpoint is written to its temporary
    file and before the rename (`in_write` True). Written `phase:unit` or `phase:unit:write`."""

    phase: str
    unit: int
    in_write: bool = False

    @classmethod
    def parse(cls, text: Optional[str]) -> Optional["CrashPoint"]:
        if not text:
            return None
        parts = text.split(":")
        if len(parts) not in (2, 3) or not parts[1].isdigit() or parts[2:] not in ([], ["write"]):
            raise ValueError(f"{ENVIRONMENT_VARIABLE}={text!r}: expected phase:unit or phase:unit:write")
        return cls(parts[0], int(parts[1]), len(parts) == 3)

    @classmethod
    def from_environment(cls) -> Optional["CrashPoint"]:
        return cls.parse(os.environ.get(ENVIRONMENT_VARIABLE))

    def at_checkpoint(self, phase: str, unit: int) -> Optional[Callable[[], None]]:
        """Called as `phase`'s `unit` is about to be checkpointed: kills now if this is the
        point, or returns the kill to run between the write and the rename."""
        if (phase, unit) != (self.phase, self.unit):
            return None
        if not self.in_write:
            _kill()
        return _kill
