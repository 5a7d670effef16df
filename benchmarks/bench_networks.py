"""asv benchmarks for whole networks (ResNet-50, MobileNetV2, EfficientNet-B0) at batch 1.

fastconv + NumPy glue (fastconv._networks) with torch eager, ONNX Runtime and OpenVINO on the ONNX
export of the same torch model in the same graphs; a peer that is not installed is skipped.  The
full tables (batch 8, busy machine, per layer) come from benchmarks/scripts/networks.py.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import tempfile

import numpy as np

from ._common import REPO_ROOT, THREADS, fastconv, require_torch, use_threads, warm

NETS = ("resnet50", "mobilenetv2", "efficientnet_b0")
LIBS = ("fastconv", "torch", "onnxruntime", "openvino")


def _script():
    """benchmarks/scripts/networks.py: the torch twins and the peers' runners."""
    path = os.path.join(REPO_ROOT, "benchmarks", "scripts", "networks.py")
    spec = importlib.util.spec_from_file_location("_fastconv_networks_script", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _require(module):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise NotImplementedError(f"{module} is not installed") from exc


class NetworkTime:
    """One batch-1 224x224 forward pass; ``lib`` is fastconv or a peer."""

    params = [list(NETS), list(LIBS), list(THREADS)]
    param_names = ["net", "lib", "threads"]
    timeout = 300

    def setup(self, net, lib, threads):
        from fastconv._networks import Network, random_weights

        self.x = np.random.default_rng(1234).standard_normal((1, 3, 224, 224)).astype(np.float32)
        self.restore = use_threads(threads)
        self.path = None
        if lib == "fastconv":
            model = Network(net)
            self.run = model
        else:
            require_torch()
            if lib != "torch":
                _require(lib)
            script = _script()
            tm = script.torch_network(net, random_weights(net))
            if lib == "torch":
                self.run = script.torch_runner(tm, threads)
            else:
                self.path = os.path.join(
                    tempfile.gettempdir(), f"fastconv_bench_{net}_b1_{os.getpid()}.onnx"
                )
                path = script.export_onnx(tm, self.x.shape, self.path)
                make = script.ort_runner if lib == "onnxruntime" else script.ov_runner
                self.run = make(path, threads)
        warm(self.run, self.x)

    def teardown(self, net, lib, threads):
        self.restore()
        path = getattr(self, "path", None)
        if path is not None and os.path.exists(path):
            os.remove(path)

    def time_forward(self, net, lib, threads):
        self.run(self.x)


class NetworkGlue:
    """fastconv's NumPy glue alone on MobileNetV2-sized tensors: in-place ReLU6 and residual add."""

    def setup(self):
        self.y = np.random.default_rng(1234).standard_normal((1, 144, 56, 56)).astype(np.float32)
        self.z = self.y.copy()

    def time_relu6_inplace(self):
        np.clip(self.y, 0, 6, out=self.y)

    def time_residual_add_inplace(self):
        self.y += self.z


__all__ = ["NetworkGlue", "NetworkTime", "fastconv"]
