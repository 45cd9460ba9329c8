"""Rasterise a scene into an image, a semantic mask and per-object labels with plain cv2 calls.

Everything is a filled convex polygon (faces, decals, ground bands, facades) or a thick line,
drawn far to near; the same polygons go into the semantic mask and an instance map, so labels
are exact by construction. The instance map decides which keypoints another object hides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from vsynth.data.demo.geometry import SHIFT, Camera, to_cv2_points, world_to_object
from vsynth.data.demo.models import Flat, Model, Solid, Wire
from vsynth.data.demo.scene import ObjectSpec, Road, Scene
from vsynth.data.demo.schema import SEG_CLASS_OF_DETECTION, SEG_CLASSES

_SEG = {name: i for i, name in enumerate(SEG_CLASSES)}
_AA = cv2.LINE_AA


@dataclass
class RenderedObject:
    """Exact labels of one object as rendered.

    ``bbox`` is the full projected extent (x0, y0, x1, y1) clipped to the image; ``keypoints``
    (24, 3) holds (x, y, v) with v = 2 visible, 1 inside the image but hidden (by the object
    itself or by another), 0 outside the image (then x = y = 0); ``area`` counts visible pixels.
    """

    kind: str
    bbox: np.ndarray
    keypoints: np.ndarray | None
    area: int
    instance_id: int


@dataclass
class Rendered:
    image: np.ndarray  # (H, W, 3) uint8 BGR
    semantic: np.ndarray  # (H, W) uint8 indices into SEG_CLASSES
    instances: np.ndarray  # (H, W) uint8, 0 = no object, i + 1 = scene.objects[i]
    objects: list[RenderedObject]


class _Canvas:
    """The three rasters drawn in lockstep."""

    def __init__(self, width: int, height: int) -> None:
        self.image = np.empty((height, width, 3), np.uint8)
        self.semantic = np.zeros((height, width), np.uint8)
        self.instances = np.zeros((height, width), np.uint8)

    def poly(self, uv: np.ndarray, color, seg: int, inst: int = 0) -> None:
        self.poly_fixed(to_cv2_points(uv), color, seg, inst)

    def poly_fixed(self, pts: np.ndarray, color, seg: int, inst: int = 0) -> None:
        """A convex polygon already in cv2 fixed-point coordinates (see geometry.to_cv2_points)."""
        cv2.fillConvexPoly(self.image, pts, color, _AA, SHIFT)
        cv2.fillConvexPoly(self.semantic, pts, seg, cv2.LINE_8, SHIFT)
        if inst:
            cv2.fillConvexPoly(self.instances, pts, inst, cv2.LINE_8, SHIFT)

    def line_fixed(self, p0: np.ndarray, p1: np.ndarray, color, thickness: int, seg: int, inst: int) -> None:
        a, b = (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1]))
        cv2.line(self.image, a, b, color, thickness, _AA, SHIFT)
        cv2.line(self.semantic, a, b, seg, thickness, cv2.LINE_8, SHIFT)
        cv2.line(self.instances, a, b, inst, thickness, cv2.LINE_8, SHIFT)


def _shade(color, normal: np.ndarray, light: np.ndarray, ambient: float, diffuse: float, two_sided: bool = False):
    d = float(np.dot(normal, light))
    d = abs(d) if two_sided else max(0.0, d)
    k = ambient + diffuse * d
    return tuple(min(255.0, c * k) for c in color)


def _draw_sky_and_ground(canvas: _Canvas, scene: Scene) -> None:
    cam = scene.camera
    h = cam.height
    horizon = int(np.clip(round(cam.horizon_v), 0, h))
    if horizon > 0:
        t = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None]
        top, bottom = np.array(scene.sky_top, np.float32), np.array(scene.sky_horizon, np.float32)
        canvas.image[:horizon] = ((1 - t) * top + t * bottom)[:, None, :].astype(np.uint8)
    canvas.image[horizon:] = np.array(scene.road.terrain_color, np.uint8)
    _draw_road(canvas, cam, scene.road)


def _ground_band(cam: Camera, road: Road, t0: float, t1: float, y_near: float, y_far: float) -> np.ndarray:
    s = np.array([road.s_at_y(y_near, t0), road.s_at_y(y_near, t1), road.s_at_y(y_far, t1), road.s_at_y(y_far, t0)])
    x, y = road.to_world(s, np.array([t0, t1, t1, t0]))
    uv, _ = cam.project(np.stack([x, y, np.zeros(4)], axis=1))
    return uv


def _draw_road(canvas: _Canvas, cam: Camera, road: Road) -> None:
    near, far = 0.3, 400.0
    hw, sw = road.half_width, road.sidewalk
    for sign in (1.0, -1.0):
        lo, hi = sorted((sign * hw, sign * (hw + sw)))
        canvas.poly(_ground_band(cam, road, lo, hi, near, far), road.sidewalk_color, _SEG["sidewalk"])
        lo, hi = sorted((sign * hw, sign * (hw + 0.25)))
        canvas.poly(_ground_band(cam, road, lo, hi, near, far), road.curb_color, _SEG["sidewalk"])
    canvas.poly(_ground_band(cam, road, -hw, hw, near, far), road.road_color, _SEG["road"])
    # dashed lane lines: ground quads, "road" in the mask as well, so they only touch the image
    lane_w = 2 * hw / road.lanes
    quads_s, quads_t = [], []
    for lane in range(1, road.lanes):
        t = -hw + lane * lane_w
        s0 = road.s_at_y(1.0, t) + road.marking_phase
        for s in np.arange(s0, s0 + 90.0, 9.0):
            quads_s.append([s, s + 3.0, s + 3.0, s])
            quads_t.append([t - 0.08, t - 0.08, t + 0.08, t + 0.08])
    if quads_s:
        x, y = road.to_world(np.array(quads_s).ravel(), np.array(quads_t).ravel())
        keep = y.reshape(-1, 4).min(axis=1) > 0.5
        uv, _ = cam.project(np.stack([x, y, np.zeros_like(x)], axis=1))
        quads = list(to_cv2_points(uv).reshape(-1, 4, 2)[keep])
        cv2.fillPoly(canvas.image, quads, road.marking_color, _AA, SHIFT)


def _draw_facades(canvas: _Canvas, scene: Scene) -> None:
    """Building fronts facing the road, each with a grid of windows; one projection for all."""
    cam, road = scene.camera, scene.road
    t_cam = -road.offset
    light = np.array(scene.light)
    ss, ts, zs, items = [], [], [], []
    for f in scene.facades:
        t = f.side * f.setback
        if f.side * t_cam >= f.setback:  # camera beyond the facade: we would see its back, skip
            continue
        # keep the facade in front of the camera, its top included (pitched cameras look down)
        y_min = max(2.0, (f.height - cam.height_m) * math.tan(cam.pitch) + 1.5)
        s0 = max(f.s0, road.s_at_y(y_min, t))
        if s0 >= f.s1 - 1.0:
            continue
        col, floor = np.meshgrid(np.arange(s0 + 1.0, f.s1 - 1.8, 2.6), np.arange(1.6, f.height - 1.9, 3.0))
        col, floor = col.ravel(), floor.ravel()
        ss += [np.array([s0, f.s1, f.s1, s0]), np.stack([col, col + 1.2, col + 1.2, col], axis=1).ravel()]
        zs += [np.array([0.0, 0.0, f.height, f.height]), np.stack([floor, floor, floor + 1.4, floor + 1.4], axis=1).ravel()]
        ts.append(np.full(4 + 4 * len(col), t))
        items.append((f, len(col)))
    if not items:
        return
    x, y = road.to_world(np.concatenate(ss), np.concatenate(ts))
    uv, _ = cam.project(np.stack([x, y, np.concatenate(zs)], axis=1))
    fixed = to_cv2_points(uv)
    start = 0
    for f, n_windows in items:
        nx, ny = road.to_world(np.array(0.0), np.array(-f.side))
        ox, oy = road.to_world(np.array(0.0), np.array(0.0))
        normal = np.array([nx - ox, ny - oy, 0.0])  # towards the road
        canvas.poly_fixed(fixed[start : start + 4], _shade(f.color, normal, light, scene.ambient, scene.diffuse), _SEG["building"])
        start += 4
        if n_windows:  # windows are "building" in the mask too, so they only touch the image
            quads = list(fixed[start : start + 4 * n_windows].reshape(-1, 4, 2))
            cv2.fillPoly(canvas.image, quads, f.window_color, _AA, SHIFT)
            start += 4 * n_windows


def _draw_shadow(canvas: _Canvas, cam: Camera, model: Model, x: float, y: float, yaw: float) -> None:
    hl, hw = model.footprint
    local = np.array([[hl + 0.2, hw + 0.15, 0.0], [hl + 0.2, -hw - 0.15, 0.0], [-hl - 0.2, -hw - 0.15, 0.0], [-hl - 0.2, hw + 0.15, 0.0]])
    uv, _ = cam.project_object(local, x, y, yaw)
    h, w = canvas.image.shape[:2]
    x0, y0 = int(max(0, math.floor(uv[:, 0].min()))), int(max(0, math.floor(uv[:, 1].min())))
    x1, y1 = int(min(w, math.ceil(uv[:, 0].max()) + 1)), int(min(h, math.ceil(uv[:, 1].max()) + 1))
    if x1 <= x0 or y1 <= y0:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(mask, to_cv2_points(uv - [x0, y0]), 255, _AA, SHIFT)
    roi = canvas.image[y0:y1, x0:x1]
    roi[:] = (roi * (1.0 - 0.45 / 255.0 * mask[..., None].astype(np.float32))).astype(np.uint8)


def _draw_object(canvas: _Canvas, scene: Scene, model: Model, spec: ObjectSpec, inst: int) -> tuple[np.ndarray, set[tuple[int, int]]]:
    """Draw one object; return all its projected points and its camera-facing (part, face)s."""
    cam = scene.camera
    cam_local = world_to_object(cam.position, spec.x, spec.y, spec.yaw)
    c, s = math.cos(spec.yaw), math.sin(spec.yaw)
    lx, ly, lz = scene.light
    light_local = np.array([lx * c + ly * s, -lx * s + ly * c, lz])
    base_seg = _SEG[SEG_CLASS_OF_DETECTION[model.kind]]
    uv, depth = cam.project_object(model.points_local, spec.x, spec.y, spec.yaw)
    fixed = to_cv2_points(uv)
    visible_faces: set[tuple[int, int]] = set()
    for pi in model.draw_order(cam_local):
        part = model.parts[pi]
        own, decals = model.spans[pi]
        pts = fixed[own]
        seg = _SEG[part.seg] if part.seg else base_seg
        if isinstance(part, Solid):
            facing = np.einsum("ij,ij->i", part.normals, cam_local - part.centers) > 0
            for fi in np.flatnonzero(facing):
                fi = int(fi)
                visible_faces.add((pi, fi))
                color = _shade(part.colors[fi], part.normals[fi], light_local, scene.ambient, scene.diffuse)
                canvas.poly_fixed(pts[list(part.faces[fi])], color, seg, inst)
                for span, decal_color in decals.get(fi, ()):
                    canvas.poly_fixed(fixed[span], _shade(decal_color, part.normals[fi], light_local, 0.85, 0.2), seg, inst)
        elif isinstance(part, Flat):
            start = 0
            for poly, color in zip(part.polys, part.colors):
                shaded = _shade(color, part.normal, light_local, scene.ambient, scene.diffuse, two_sided=True)
                canvas.poly_fixed(pts[start : start + len(poly)], shaded, seg, inst)
                start += len(poly)
        elif isinstance(part, Wire):
            thickness = max(1, int(round(part.thickness_m * cam.focal / max(float(depth[own].mean()), 0.5))))
            for k in range(0, len(pts), 2):
                canvas.line_fixed(pts[k], pts[k + 1], part.color, thickness, seg, inst)
    return uv, visible_faces


def render_scene(scene: Scene) -> Rendered:
    """Render ``scene`` (clean: the domain's camera finishing is applied by the caller)."""
    cam = scene.camera
    W, H = cam.width, cam.height
    canvas = _Canvas(W, H)
    _draw_sky_and_ground(canvas, scene)
    _draw_facades(canvas, scene)
    models = [o.model for o in scene.objects]
    cam_pos = cam.position
    order = sorted(range(len(models)), key=lambda i: -math.hypot(scene.objects[i].x - cam_pos[0], scene.objects[i].y - cam_pos[1]))
    for i in order:
        o = scene.objects[i]
        _draw_shadow(canvas, cam, models[i], o.x, o.y, o.yaw)
    drawn = {}
    for i in order:
        drawn[i] = _draw_object(canvas, scene, models[i], scene.objects[i], i + 1)

    objects = []
    for i, (model, spec) in enumerate(zip(models, scene.objects)):
        uv, visible_faces = drawn[i]
        bbox = np.array(
            [np.clip(uv[:, 0].min(), 0, W), np.clip(uv[:, 1].min(), 0, H), np.clip(uv[:, 0].max(), 0, W), np.clip(uv[:, 1].max(), 0, H)]
        )
        keypoints = None
        if model.keypoints is not None and model.kpt_faces is not None:
            kuv = uv[-len(model.keypoints) :]
            keypoints = np.zeros((len(kuv), 3))
            for k, (u, v) in enumerate(kuv):
                if not (0.0 <= u < W and 0.0 <= v < H):
                    continue
                owner = int(canvas.instances[int(v), int(u)])
                self_visible = any(face in visible_faces for face in model.kpt_faces[k])
                keypoints[k] = (u, v, 2.0 if self_visible and owner in (0, i + 1) else 1.0)
        area = int(np.count_nonzero(canvas.instances == i + 1))
        objects.append(RenderedObject(kind=model.kind, bbox=bbox, keypoints=keypoints, area=area, instance_id=i + 1))
    return Rendered(image=canvas.image, semantic=canvas.semantic, instances=canvas.instances, objects=objects)
