"""Decoding: video files -> uniformly time-sampled RGB frames (PyAV / FFmpeg)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg")
FRAME_SIZE = 224  # EfficientNet-Lite0's native resolution (its "same" padding is static for it)
_TIME_EPS = 1e-4  # seconds; container timestamps are rounded (e.g. 0.49999 for 0.5)


class VideoDecodeError(RuntimeError):
    """A video file could not be opened or decoded.

    Attributes:
        path: the file.
        reason: what went wrong, without the path.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class EmptyVideoError(VideoDecodeError):
    """The file opened but yielded no video frame."""


def _frame_rgb(frame: Any, size: int | None) -> np.ndarray:
    """One decoded frame as uint8 RGB; shorter side resized to ``size``, then centre-cropped."""
    if size is None:
        return frame.to_ndarray(format="rgb24")
    w, h = frame.width, frame.height
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    # AREA averages the source pixels under each target pixel: no aliasing when downscaling.
    img = frame.reformat(width=nw, height=nh, format="rgb24", interpolation="AREA").to_ndarray()
    y0, x0 = (nh - size) // 2, (nw - size) // 2
    return img[y0:y0 + size, x0:x0 + size]


def sample_frames(path: str | Path, rate: float = 1.0, max_frames: int | None = None,
                  size: int | None = FRAME_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Decode a video and sample frames uniformly in time at ``rate`` frames per second.

    Grid points are ``0, 1/rate, 2/rate, ...`` seconds after the stream's first frame; each
    takes the first frame presented at or after it, and a frame is used at most once (a video
    slower than ``rate`` yields fewer frames). Sampling by timestamps, not frame counts, keeps
    variable-frame-rate files right. A 4 s clip at 25 fps sampled at ``rate=2`` gives 8
    frames at 0.00, 0.52, 1.00, 1.52, ... s (0.5 s falls between the frames at 0.48 and 0.52).

    Args:
        path: video file (any container/codec FFmpeg decodes: mp4, avi, webm, mkv, ...).
        rate: frames per second to keep (YouTube-8M: 1).
        max_frames: stop after this many samples (YouTube-8M: 300); ``None`` for all.
        size: output side (shorter side resized, centre crop); ``None`` keeps native frames.

    Returns:
        ``frames`` uint8 ``[F, size, size, 3]`` RGB and ``timestamps`` float64 ``[F]`` seconds.

    Raises:
        VideoDecodeError: the file is missing, not a video, or fails to decode (names the file).
        EmptyVideoError: the file opened but no video frame was decoded.
    """
    import av

    if not rate > 0:
        raise ValueError(f"rate must be > 0 frames per second, got {rate}")
    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError(path, "no such file")
    frames: list[np.ndarray] = []
    times: list[float] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(path, "no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame/slice threads: same frames, faster
            tb = float(stream.time_base) if stream.time_base else None
            fps = float(stream.average_rate) if stream.average_rate else None
            start = None
            next_t = 0.0
            for i, frame in enumerate(container.decode(stream)):
                if frame.pts is not None and tb is not None:
                    t_abs = frame.pts * tb
                elif fps:  # some AVI/raw streams carry no timestamps: fall back to the index
                    t_abs = i / fps
                else:
                    raise VideoDecodeError(path, "frames have neither timestamps nor a frame rate")
                start = t_abs if start is None else start
                t = t_abs - start
                if t + _TIME_EPS < next_t:
                    continue
                frames.append(_frame_rgb(frame, size))
                times.append(t)
                if max_frames is not None and len(frames) >= max_frames:
                    break
                next_t = (math.floor(t * rate + _TIME_EPS) + 1) / rate  # first grid point after t
    except av.FFmpegError as e:
        raise VideoDecodeError(path, f"{type(e).__name__}: {e}") from e
    except OSError as e:
        raise VideoDecodeError(path, f"{type(e).__name__}: {e}") from e
    if not frames:
        raise EmptyVideoError(path, "no decodable video frame")
    return np.stack(frames), np.asarray(times, dtype=np.float64)


def probe_video(path: str | Path) -> dict[str, Any]:
    """Container facts for reports: ``duration_s``, ``fps``, ``width``, ``height``, ``has_audio_stream``.

    Raises:
        VideoDecodeError: the file cannot be opened (names the file).
    """
    import av

    try:
        with av.open(str(path)) as c:
            v = c.streams.video[0] if c.streams.video else None
            return {"duration_s": c.duration / 1e6 if c.duration else None,  # container unit: µs
                    "fps": float(v.average_rate) if v is not None and v.average_rate else None,
                    "width": v.width if v is not None else None,
                    "height": v.height if v is not None else None,
                    "has_audio_stream": bool(c.streams.audio)}
    except (av.FFmpegError, OSError) as e:
        raise VideoDecodeError(path, f"{type(e).__name__}: {e}") from e


def find_videos(directory: str | Path, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> list[Path]:
    """Video files under ``directory`` (recursive, case-insensitive extension), sorted.

    Raises:
        FileNotFoundError: ``directory`` does not exist.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"video directory {directory}: no such directory")
    exts = {e.lower() for e in extensions}
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in exts)


def make_still_clip(path: str | Path, image: np.ndarray, seconds: float = 5.0, fps: int = 25,
                    pan: int = 16, audio: bool = False) -> Path:
    """Encode a *synthetic* clip from one still image with a slow horizontal pan.

    For tests, demos and the latency benchmark: the pixels are a real photograph, the motion
    is not.

    Args:
        path: output file; the codec follows the extension (mp4/mkv/mov: H.264, webm: VP8,
            avi: MPEG-4 part 2).
        image: uint8 ``[H, W, 3]`` RGB (grey ``[H, W]`` is replicated).
        seconds, fps: length and frame rate.
        pan: horizontal pixels the crop window travels over the clip.
        audio: add a quiet 440 Hz tone (AAC / Opus / MP3) to exercise audio probing.

    Returns:
        ``path``.
    """
    import av

    path = Path(path)
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = np.ascontiguousarray(image[..., :3].astype(np.uint8))
    h, w = image.shape[:2]
    out_w, out_h = (w - pan) // 2 * 2, h // 2 * 2  # yuv420p needs even sides
    if out_w <= 0:
        raise ValueError(f"image width {w} too small for a pan of {pan} pixels")
    ext = path.suffix.lower()
    vcodec = {".webm": "libvpx", ".avi": "mpeg4"}.get(ext, "libx264")
    acodec = {".webm": "libopus", ".avi": "libmp3lame"}.get(ext, "aac")
    n = max(1, int(round(seconds * fps)))
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = out_w, out_h, "yuv420p"
        # fastest encoder settings: these clips are fixtures, not deliverables
        vs.options = {"libx264": {"preset": "ultrafast"},
                      "libvpx": {"deadline": "realtime", "cpu-used": "8"}}.get(vcodec, {})
        ast = None
        if audio:
            ast = out.add_stream(acodec, rate=48000 if acodec == "libopus" else 44100)
            ast.layout = "mono"
        for i in range(n):
            x0 = int(round(pan * i / max(1, n - 1)))
            crop = np.ascontiguousarray(image[:out_h, x0:x0 + out_w])
            for packet in vs.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if ast is not None:
            sr = ast.rate
            t = np.arange(int(seconds * sr)) / sr
            frame = av.AudioFrame.from_ndarray((0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                               format="flt", layout="mono")
            frame.sample_rate = sr
            for packet in ast.encode(frame):
                out.mux(packet)
            for packet in ast.encode():
                out.mux(packet)
    return path
