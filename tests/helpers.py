"""Small IDX files and a local HTTP server for offline tests."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import threading
from pathlib import Path

import numpy as np

from gan_core.driver import Trainer
from gan_core.epoch import EpochResult


def idx_bytes(array: np.ndarray, magic: int | None = None, count: int | None = None) -> bytes:
    """An IDX file of uint8 `array`; `magic`/`count` override the header to make bad files."""
    array = np.asarray(array, np.uint8)
    magic = magic if magic is not None else (2051 if array.ndim == 3 else 2049)
    dims = list(array.shape)
    if count is not None:
        dims[0] = count
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    header = header[:3] + bytes([array.ndim]) + header[4:]
    return header + array.tobytes()


def fake_digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def write_idx_split(folder: Path, images: np.ndarray, labels: np.ndarray, split: str = "train",
                    gz: bool = True) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    paths = []
    for stem, array in ((f"{prefix}-images-idx3-ubyte", images), (f"{prefix}-labels-idx1-ubyte", labels)):
        data = idx_bytes(array)
        path = folder / (stem + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(data) if gz else data)
        paths.append(path)
    return paths[0], paths[1]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class FileServer:
    """Serves {path: bytes} on 127.0.0.1; `drop` paths announce more bytes than they send."""

    def __init__(self, files: dict[str, bytes], drop: frozenset[str] = frozenset()):
        files_, drop_ = files, drop

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                name = self.path.lstrip("/")
                if name not in files_:
                    self.send_error(404)
                    return
                body = files_[name]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) * (2 if name in drop_ else 1)))
                self.end_headers()
                self.wfile.write(body)
                if name in drop_:
                    self.wfile.flush()
                    self.connection.close()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeTrainer(Trainer):
    """A framework-free trainer for the driver: no model, instant epochs, a JSON "checkpoint".

    Lets tests drive every path of `gan_core.driver` (flags, folders, locks, signals,
    logging) hundreds of times without JAX or torch.
    """

    framework = "fake"
    program = "tests.fake"
    description = "A trainer that trains nothing."

    def check(self, config, dataset):
        pass

    def device(self):
        return "none"

    def saved_meta(self, out_dir):
        path = Path(out_dir) / "checkpoints" / "fake.json"
        return json.loads(path.read_text()) if path.exists() else None

    def best_meta(self, out_dir):
        return None

    def start(self, runs, dataset, resume):
        [(self.config, self.out_dir)] = runs
        return {"step": self.saved_meta(self.out_dir)["step"] if resume else 0}

    def step_of(self, state):
        return state["step"]

    def train_epoch(self, state, start, stop):
        n, first = stop - start, state["step"]
        metrics = {"loss_g": np.full((1, n), 0.7, np.float32), "loss_d": np.full((1, n), 0.7, np.float32)}
        due = sum(1 for s in range(first, first + n) if s % self.config.sample_every == 0)
        samples = np.linspace(-1, 1, due * 25 * 28 * 28, dtype=np.float32).reshape(1, due, 25, 28, 28)
        return EpochResult({"step": first + n}, metrics, samples, due, np.ones(1, bool))

    def generate(self, state, z, run=0):
        return np.zeros((len(z), 28, 28), np.float32)

    def save(self, state, metas):
        if metas:
            (self.out_dir / "checkpoints" / "fake.json").write_text(json.dumps({**metas[0], **state}))

    def save_best(self, state, meta, run=0):
        pass

    def close(self):
        pass
