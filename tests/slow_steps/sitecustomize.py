"""Test-only: makes every optimizer step of one comparison job slow, so a test can preempt that job
mid-training whatever the machine's speed. Active only in a process whose command line names the
job in $SDRRL_TEST_SLOW_JOB (submitit starts a Slurm job with its folder, jobs/slurm/<job>, in argv)."""

import os
import sys

_job = os.environ.get("SDRRL_TEST_SLOW_JOB")
if _job and any(f"/{_job}" in arg for arg in sys.argv):
    import time

    import torch

    _step = torch.optim.AdamW.step

    def _slow_step(self, *args, **kwargs):
        time.sleep(float(os.environ.get("SDRRL_TEST_STEP_SLEEP_S", "0.5")))
        return _step(self, *args, **kwargs)

    torch.optim.AdamW.step = _slow_step
