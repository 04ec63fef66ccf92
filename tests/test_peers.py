"""The watchdog beside each process of a multi-process run (gan_core.peers)."""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WATCHED = """
import sys, time
from pathlib import Path
from gan_core.peers import PeerWatch
watch = PeerWatch(Path(sys.argv[1]), 0, 2, timeout=2.0)
time.sleep(120)  # As if blocked in a collective that never returns.
"""


def test_a_silent_peer_ends_the_process_it_watches_over_in_one_line(tmp_path):
    start = time.time()
    proc = subprocess.run([sys.executable, "-c", WATCHED, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -9 and time.time() - start < 30
    [line] = [line for line in proc.stderr.splitlines() if line.strip()]
    assert line.startswith("error: process 1 of this run stopped responding")
    assert (tmp_path / ".heartbeat.process0").exists()


def test_a_peer_that_finished_is_not_waited_for(tmp_path):
    (tmp_path / ".heartbeat.process1").write_text("done\n")
    code = WATCHED.replace("time.sleep(120)", "time.sleep(5); watch.stop(finished=True)")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / ".heartbeat.process0").read_text() == "done\n"
