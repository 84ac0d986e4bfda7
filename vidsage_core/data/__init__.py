"""The data layer: YouTube-8M TFRecords in and out, the VideoSet and its store, splits, synthetic data.

TensorFlow reads and writes the TFRecords (``tf.data`` + ``tf.io.parse_example`` /
``parse_sequence_example``; ``tf.io.TFRecordWriter``), imported only when a TFRecord is read or
written, so importing this package stays fast. :mod:`.tfrecord` keeps the record framing that
the reader's record-by-record fallback needs to name a damaged record and read on past it. The
``vidsage inspect`` command lives here too (``add_inspect_arguments`` / ``inspect_command``).
"""

from vidsage_core.data.inspect_cli import add_inspect_arguments, describe, inspect_command
from vidsage_core.data.reader import (
    AUDIO_DIM,
    NUM_CLASSES_BY_ID_KEY,
    RGB_DIM,
    dequantize,
    pool_frames,
    quantize,
    read_tfrecords,
    resolve_paths,
)
from vidsage_core.data.splits import Split, classes_with_min_positives, hash_bucket, split_by_id
from vidsage_core.data.synthetic import make_synthetic, write_synthetic_frame_level
from vidsage_core.data.tfrecord import TFRecordError, iter_tfrecord, masked_crc32c, write_tfrecord
from vidsage_core.data.videoset import SkipReport, VideoSet, labels_to_csr
from vidsage_core.data.vocabulary import load_vocabulary
from vidsage_core.data.writer import write_frame_level_tfrecord, write_video_level_tfrecord

__all__ = [
    "AUDIO_DIM",
    "NUM_CLASSES_BY_ID_KEY",
    "RGB_DIM",
    "SkipReport",
    "Split",
    "TFRecordError",
    "VideoSet",
    "add_inspect_arguments",
    "classes_with_min_positives",
    "dequantize",
    "describe",
    "hash_bucket",
    "inspect_command",
    "iter_tfrecord",
    "labels_to_csr",
    "load_vocabulary",
    "make_synthetic",
    "masked_crc32c",
    "pool_frames",
    "quantize",
    "read_tfrecords",
    "resolve_paths",
    "split_by_id",
    "write_frame_level_tfrecord",
    "write_synthetic_frame_level",
    "write_tfrecord",
    "write_video_level_tfrecord",
]
