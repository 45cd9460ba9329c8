"""Dataset formats vsynth reads and writes, as small typed records.

Keypoints: COCO keypoints JSON and YOLO-pose folders (+ ultralytics data YAML), with a cached
COCO -> YOLO-pose converter. Detection: COCO JSON with any images folder. Segmentation: image and
mask folders + classes.json, and the generated-images manifest CSV. Every reader fails with one
`vsynth.errors.DataError` line naming the file and the entry at fault.
"""

from vsynth.data.formats.classes import check_same_classes
from vsynth.data.formats.coco_detection import box_summary, clean_box, read_coco_detection, write_coco_detection
from vsynth.data.formats.coco_keypoints import read_coco_keypoints, write_coco_keypoints
from vsynth.data.formats.convert import (
    ConversionResult,
    cached_coco_to_yolo_pose,
    coco_keypoints_to_yolo_pose,
    keypoint_box,
    yolo_pose_to_coco_keypoints,
)
from vsynth.data.formats.flip import flip_idx_from_names, flip_keypoints, keypoint_side, validate_flip_idx
from vsynth.data.formats.manifest import MANIFEST_COLUMNS, read_manifest, write_manifest
from vsynth.data.formats.records import (
    BoxAnnotation,
    DetectionDataset,
    GeneratedRow,
    ImageRecord,
    KeypointAnnotation,
    KeypointDataset,
    SegDataset,
    SegSample,
)
from vsynth.data.formats.seg_folders import colorize, read_classes_json, read_mask, read_seg_folders, write_classes_json, write_mask
from vsynth.data.formats.yolo_pose import (
    YoloPoseSpec,
    data_yaml_doc,
    labels_dir_for,
    merge_data_yaml,
    read_yolo_pose,
    read_yolo_pose_folder,
    read_yolo_pose_yaml,
    write_yolo_data_yaml,
    write_yolo_pose_labels,
)

__all__ = [
    "BoxAnnotation",
    "ConversionResult",
    "DetectionDataset",
    "GeneratedRow",
    "ImageRecord",
    "KeypointAnnotation",
    "KeypointDataset",
    "MANIFEST_COLUMNS",
    "SegDataset",
    "SegSample",
    "YoloPoseSpec",
    "cached_coco_to_yolo_pose",
    "check_same_classes",
    "coco_keypoints_to_yolo_pose",
    "colorize",
    "data_yaml_doc",
    "flip_idx_from_names",
    "flip_keypoints",
    "keypoint_box",
    "keypoint_side",
    "labels_dir_for",
    "merge_data_yaml",
    "read_classes_json",
    "box_summary",
    "clean_box",
    "read_coco_detection",
    "read_coco_keypoints",
    "read_manifest",
    "read_mask",
    "read_seg_folders",
    "read_yolo_pose",
    "read_yolo_pose_folder",
    "read_yolo_pose_yaml",
    "validate_flip_idx",
    "write_classes_json",
    "write_coco_detection",
    "write_coco_keypoints",
    "write_manifest",
    "write_mask",
    "write_yolo_data_yaml",
    "write_yolo_pose_labels",
    "yolo_pose_to_coco_keypoints",
]
