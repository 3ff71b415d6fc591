"""Multi-host training as on a TPU pod slice or a multi-node GPU job, simulated by two JAX
processes on this machine (two CPU devices each, gloo collectives), started through
`python -m lama_jax.main --distributed` exactly as on a cluster."""

import os
import pathlib
import shutil
import socket
import subprocess
import sys

import jax
import numpy as np

from lama_jax.model_dir import load_model
from tests.helpers import TEST_XLA_FLAGS

ROOT = pathlib.Path(__file__).resolve().parents[1]
# configs/demo.py shrunk as tests/test_train.py's tiny_config: 4 global devices, mesh 2 x 2.
TINY = ["--config.generator.ngf=8", "--config.generator.n_blocks=1",
        "--config.discriminator.ndf=8", "--config.discriminator.n_layers=3",
        "--config.data.crop_size=64", "--config.data.eval_records=4",
        "--config.losses.hrf_perceptual_weight=0", "--config.batch_size=8",
        "--config.eval_batch_size=4", "--config.log_every=2", "--config.eval_every=4",
        "--config.checkpoint_every=2", "--config.mesh.data=2", "--config.mesh.fsdp=2"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _train_on_two_hosts(workdir: pathlib.Path, steps: int) -> list:
    """Runs both processes to the end; returns their logs. (No compilation cache: a process
    that loads a program while the other compiles it can outwait gloo's 30 s rendezvous.)"""
    port = _free_port()
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count=2 {TEST_XLA_FLAGS}",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen(
        [sys.executable, "-m", "lama_jax.main", "--config=configs/demo.py",
         f"--workdir={workdir}", "--distributed", f"--coordinator_address=localhost:{port}",
         "--num_processes=2", f"--process_id={i}", f"--config.num_train_steps={steps}", *TINY],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)]
    try:
        logs = [p.communicate(timeout=600)[0] for p in procs]
    finally:  # a hung process must not outlive the test
        for p in procs:
            p.kill()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    return logs


def test_two_hosts_train_save_and_resume_exactly(tmp_path):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    logs = _train_on_two_hosts(straight, 4)
    for i, log in enumerate(logs):
        assert f"JAX process {i} of 2, 2 local / 4 global devices" in log
    # Only process 0 writes summaries and the exported model.
    assert len(list(straight.glob("events.out.tfevents*"))) == 1

    # The same run as if one host's write of its last checkpoint had been cut short (its
    # iterator position), without the model. Restarted on both hosts, process 1 cannot read
    # checkpoint 4 while process 0 can: both must set it aside (process 0 moves it while the
    # other waits, so that neither still lists step 4 when it saves step 4 again), resume from
    # step 2 (train state and each host's data-iterator position) and end where the straight
    # run ended.
    shutil.copytree(straight, resumed)
    position = resumed / "checkpoints" / "4" / "data" / "process_1-of-2.json"
    position.write_text(position.read_text()[:5])
    shutil.rmtree(resumed / "model")
    logs = _train_on_two_hosts(resumed, 4)
    assert "checkpoint 4 cannot be read on process 1" in logs[0]
    assert all("resumed from step 2" in log for log in logs)
    assert "moved the unreadable checkpoint 4" in logs[0]
    assert [p.name[:2] for p in (resumed / "unreadable_checkpoints").iterdir()] == ["4-"]
    a, b = (load_model(str(run / "model")) for run in (straight, resumed))
    for x, y in zip(jax.tree.leaves((a.generator_variables, a.discriminator_variables)),
                    jax.tree.leaves((b.generator_variables, b.discriminator_variables))):
        np.testing.assert_array_equal(x, y)
