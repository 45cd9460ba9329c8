"""Scene parameters of the demo world and how they are sampled from a seed.

A scene is plain data (camera, road layout, building facades, sun, objects with their shape and
colour parameters), so it can be rendered, mirrored (for the flip-consistency test) and
re-rendered deterministically. Objects are placed by *image-space* targets (where across the
image, how large) and then solved for ground position, so every image gets vehicles that are
large enough for a tiny model to learn from, with varied viewpoint, truncation and occlusion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from vsynth.data.demo.domains import Color, DomainStyle
from vsynth.data.demo.geometry import Camera, mirror_yaw
from vsynth.data.demo.models import Model, build_model

# Object mixes per task: {class: weight}, and how many objects an image holds.
KEYPOINT_KINDS = {"car": 0.8, "truck": 0.2}
DETECTION_KINDS = {
    "car": 0.28, "truck": 0.12, "bus": 0.1, "trailer": 0.1, "pedestrian": 0.18, "motorcycle": 0.11, "bicycle": 0.11,
}
VEHICLE_KINDS = frozenset({"car", "truck", "bus", "trailer"})


@dataclass(frozen=True)
class Facade:
    """A building front: a vertical rectangle parallel to the road, with a grid of windows."""

    side: float  # +1 / -1: which road edge it stands beyond (road frame t sign)
    setback: float  # |t| of the facade plane, metres from the road centre line
    s0: float  # extent along the road
    s1: float
    height: float
    color: Color
    window_color: Color


@dataclass(frozen=True)
class Road:
    """A straight road band on the ground with sidewalks; road frame (s along, t across)."""

    angle: float  # radians from world +Y towards +X
    offset: float  # the road centre line passes at t = 0, world origin sits at t = -offset
    half_width: float
    sidewalk: float
    marking_phase: float
    lanes: int
    road_color: Color
    sidewalk_color: Color
    curb_color: Color
    marking_color: Color
    terrain_color: Color

    def to_world(self, s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Road-frame ground coordinates -> world (X, Y)."""
        sa, ca = math.sin(self.angle), math.cos(self.angle)
        tt = t + self.offset
        return s * sa + tt * ca, s * ca - tt * sa

    def s_at_y(self, y: float, t: float) -> float:
        """The s coordinate whose ground point at lateral position t has world Y = y."""
        return (y + (t + self.offset) * math.sin(self.angle)) / math.cos(self.angle)


@dataclass(frozen=True)
class ObjectSpec:
    """One object: its class, ground pose and the parameters its model is built from."""

    kind: str
    x: float
    y: float
    yaw: float
    params: dict
    model: Model = field(compare=False, repr=False)  # built from kind + params, object frame


@dataclass(frozen=True)
class Scene:
    domain: str
    camera: Camera
    road: Road
    facades: tuple[Facade, ...]
    objects: tuple[ObjectSpec, ...]
    light: tuple[float, float, float]  # unit vector towards the sun, world frame
    sky_top: Color
    sky_horizon: Color
    ambient: float
    diffuse: float


def mirror_scene(scene: Scene) -> Scene:
    """The scene mirrored about the camera's vertical plane (world X -> -X).

    Rendering it gives the horizontally flipped image, with every vehicle's left and right
    keypoints swapped: the property a correct ``flip_idx`` encodes.
    """
    road = replace(scene.road, angle=-scene.road.angle, offset=-scene.road.offset)
    facades = tuple(replace(f, side=-f.side) for f in scene.facades)
    objects = tuple(replace(o, x=-o.x, yaw=mirror_yaw(o.yaw)) for o in scene.objects)
    lx, ly, lz = scene.light
    return replace(scene, road=road, facades=facades, objects=objects, light=(-lx, ly, lz))


# --- sampling ----------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, options: tuple[Color, ...], jitter: float = 0.0) -> Color:
    c = np.array(options[int(rng.integers(len(options)))], dtype=float)
    if jitter:
        c = c + rng.uniform(-jitter, jitter, size=3)
    return tuple(float(v) for v in np.clip(c, 0, 255))  # type: ignore[return-value]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def sample_camera(rng: np.random.Generator, style: DomainStyle, size: tuple[int, int]) -> Camera:
    width, height = size
    hfov = math.radians(_u(rng, *style.hfov_deg))
    focal = (width / 2.0) / math.tan(hfov / 2.0)
    return Camera(
        width=width,
        height=height,
        focal=focal,
        height_m=_u(rng, *style.camera_height),
        pitch=math.radians(_u(rng, *style.pitch_deg)),
        cy=height / 2.0,
    )


def sample_road(rng: np.random.Generator, style: DomainStyle) -> Road:
    lanes = int(rng.integers(2, 5))
    half = lanes * _u(rng, 1.6, 1.9)
    sidewalk = _u(rng, 2.0, 4.0)
    offset = _u(rng, -0.8, 0.8) * (half + (sidewalk if rng.random() < 0.2 else 0.0))
    return Road(
        angle=math.radians(_u(rng, -20.0, 20.0)),
        offset=offset,
        half_width=half,
        sidewalk=sidewalk,
        marking_phase=_u(rng, 0.0, 9.0),
        lanes=lanes,
        road_color=_pick(rng, style.road, 6.0),
        sidewalk_color=_pick(rng, style.sidewalk, 6.0),
        curb_color=style.curb,
        marking_color=_pick(rng, style.marking),
        terrain_color=_pick(rng, style.terrain, 8.0),
    )


def sample_facades(rng: np.random.Generator, style: DomainStyle, road: Road) -> tuple[Facade, ...]:
    facades = []
    for side in (1.0, -1.0):
        if rng.random() >= style.building_prob:
            continue
        setback = road.half_width + road.sidewalk + _u(rng, 0.0, 3.0)
        s = _u(rng, -5.0, 10.0)
        while s < 140.0:
            length = _u(rng, 8.0, 25.0)
            facades.append(
                Facade(
                    side=side,
                    setback=setback,
                    s0=s,
                    s1=s + length,
                    height=_u(rng, 5.0, 24.0),
                    color=_pick(rng, style.building, 10.0),
                    window_color=_pick(rng, style.window, 6.0),
                )
            )
            s += length + (_u(rng, 2.0, 10.0) if rng.random() < 0.4 else 0.0)
    return tuple(facades)


def _person_params(rng: np.random.Generator, style: DomainStyle) -> dict:
    return {
        "height": _u(rng, 1.55, 1.95),
        "step": _u(rng, -0.18, 0.18),
        "skin_color": _pick(rng, style.skin, 6.0),
        "shirt_color": _pick(rng, style.shirt, style.color_jitter),
        "pants_color": _pick(rng, style.pants, style.color_jitter),
        "hair_color": _pick(rng, ((20, 20, 25), (40, 60, 90), (30, 40, 60)), 5.0),
    }


def sample_object_params(kind: str, rng: np.random.Generator, style: DomainStyle) -> dict:
    """Shape and colour parameters of one object of class ``kind`` in ``style``."""
    j = style.color_jitter
    common = {
        "body_color": _pick(rng, style.vehicle, j),
        "glass_color": _pick(rng, style.glass, 4.0),
        "light_color": style.headlight,
        "tail_color": style.taillight,
        "hub_color": _pick(rng, ((150, 150, 152), (90, 90, 92), (200, 200, 200)), 5.0),
        "trim_color": (45.0, 45.0, 48.0),
    }
    if kind == "car":
        variant = rng.choice(["sedan", "hatchback", "suv", "van"], p=[0.4, 0.25, 0.25, 0.1])
        ranges = {
            "sedan": dict(length=(4.2, 4.9), width=(1.75, 1.9), clearance=(0.28, 0.33), belt=(0.95, 1.05), roof=(1.4, 1.5),
                          hood=(1.0, 1.3), trunk=(0.7, 0.9), rake_front=(0.6, 0.8), rake_rear=(0.4, 0.6), wheel_r=(0.31, 0.34)),
            "hatchback": dict(length=(3.8, 4.3), width=(1.7, 1.8), clearance=(0.28, 0.33), belt=(0.95, 1.05), roof=(1.45, 1.55),
                              hood=(0.8, 1.0), trunk=(0.2, 0.35), rake_front=(0.55, 0.75), rake_rear=(0.1, 0.25), wheel_r=(0.3, 0.33)),
            "suv": dict(length=(4.4, 4.9), width=(1.85, 1.95), clearance=(0.38, 0.45), belt=(1.15, 1.25), roof=(1.7, 1.85),
                        hood=(1.0, 1.2), trunk=(0.15, 0.3), rake_front=(0.45, 0.6), rake_rear=(0.1, 0.2), wheel_r=(0.36, 0.4)),
            "van": dict(length=(4.8, 5.3), width=(1.9, 2.0), clearance=(0.33, 0.38), belt=(1.05, 1.15), roof=(1.95, 2.1),
                        hood=(0.6, 0.8), trunk=(0.05, 0.1), rake_front=(0.5, 0.7), rake_rear=(0.05, 0.1), wheel_r=(0.33, 0.36)),
        }[str(variant)]
        p = {k: _u(rng, *v) for k, v in ranges.items()}
        p["wheelbase"] = p["length"] * _u(rng, 0.58, 0.62)
        p["grille_color"] = (30.0, 30.0, 32.0) if style.name == "real" else (70.0, 70.0, 80.0)
        p["plate_color"] = (225.0, 232.0, 238.0)
        return {**common, **p, "variant": str(variant)}
    if kind == "truck":
        return {
            **common,
            "length": _u(rng, 5.5, 8.5), "width": _u(rng, 2.2, 2.5), "clearance": _u(rng, 0.45, 0.55),
            "cab_len": _u(rng, 1.8, 2.2), "cab_h": _u(rng, 2.5, 2.9), "box_h": _u(rng, 3.1, 3.7), "wheel_r": _u(rng, 0.45, 0.5),
            "cargo_color": _pick(rng, ((235, 235, 235), (200, 200, 200)) + style.vehicle[:3], j),
        }
    if kind == "bus":
        return {
            **common,
            "body_color": _pick(rng, ((0, 200, 240), (30, 30, 200), (235, 235, 235), (160, 80, 20)), j),
            "stripe_color": _pick(rng, ((40, 40, 40), (0, 120, 230), (230, 230, 230))),
            "length": _u(rng, 10.0, 12.5), "width": _u(rng, 2.45, 2.55), "height": _u(rng, 3.0, 3.3),
            "clearance": _u(rng, 0.3, 0.4), "wheel_r": _u(rng, 0.48, 0.52),
        }
    if kind == "trailer":
        return {
            **common,
            "body_color": _pick(rng, ((230, 230, 230), (190, 190, 195), (60, 60, 160), (140, 90, 40)), j),
            "stripe_color": _pick(rng, ((20, 20, 200), (240, 240, 240))),
            "length": _u(rng, 6.0, 10.0), "width": _u(rng, 2.45, 2.55), "height": _u(rng, 3.6, 4.0),
            "clearance": _u(rng, 1.1, 1.3), "wheel_r": _u(rng, 0.48, 0.52),
        }
    if kind == "pedestrian":
        return _person_params(rng, style)
    if kind == "motorcycle":
        return {
            **common, **_person_params(rng, style),
            "wheel_r": _u(rng, 0.3, 0.34), "wheelbase": _u(rng, 1.35, 1.5), "rider": bool(rng.random() < 0.75),
        }
    if kind == "bicycle":
        return {
            **_person_params(rng, style),
            "frame_color": _pick(rng, style.vehicle, j),
            "wheel_r": _u(rng, 0.33, 0.36), "wheelbase": _u(rng, 1.0, 1.1), "rider": bool(rng.random() < 0.8),
        }
    raise ValueError(f"unknown object kind {kind!r}")


def _projected_box(camera: Camera, local: np.ndarray, spec: ObjectSpec) -> np.ndarray:
    """Full projected extent (x0, y0, x1, y1), unclipped, of object-frame points ``local``."""
    uv, _ = camera.project_object(local, spec.x, spec.y, spec.yaw)
    return np.array([uv[:, 0].min(), uv[:, 1].min(), uv[:, 0].max(), uv[:, 1].max()])


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over the smaller box: above 0.5 one object would be mostly hidden."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return ix * iy / smaller if smaller > 0 else 1.0


_Placed = tuple[ObjectSpec, np.ndarray, float]  # spec, projected box, footprint radius


def _place(
    rng: np.random.Generator, camera: Camera, road: Road, kind: str, params: dict, placed: list[_Placed]
) -> _Placed | None:
    """Solve a ground pose for an image-space target (horizontal position, apparent size)."""
    W, H = camera.width, camera.height
    model = build_model(kind, params)
    local = model.points_local
    footprint = model.footprint
    radius = math.hypot(*footprint)
    for _ in range(12):
        u_target = _u(rng, 0.12, 0.88) * W
        if rng.random() < 0.55:  # along the road, either direction
            yaw = math.pi / 2 - road.angle + (math.pi if rng.random() < 0.5 else 0.0) + math.radians(_u(rng, -12, 12))
        else:
            yaw = _u(rng, 0.0, 2 * math.pi)
        if kind in VEHICLE_KINDS:
            size_target, axis = _u(rng, 0.15, 0.5) * W, 0
        else:
            size_target, axis = _u(rng, 0.25, 0.6) * H, 1
        depth, spec, bb = 12.0, None, None
        for _ in range(3):  # perspective is not linear up close: refine the depth twice
            y = camera.ground_y_for_depth(depth)
            spec = ObjectSpec(kind, (u_target - camera.cx) * depth / camera.focal, y, yaw, params, model)
            bb = _projected_box(camera, local, spec)
            depth *= (bb[2 + axis] - bb[axis]) / size_target
        if spec is None or bb is None or spec.y < footprint[0] + 1.5:
            continue
        size = bb[2 + axis] - bb[axis]
        cx, cy = (bb[0] + bb[2]) / 2, (bb[1] + bb[3]) / 2
        inside = max(0.0, min(bb[2], W) - max(bb[0], 0)) * max(0.0, min(bb[3], H) - max(bb[1], 0))
        area = (bb[2] - bb[0]) * (bb[3] - bb[1])
        if not (0.75 * size_target < size < 1.33 * size_target) or not (0 <= cx < W and 0 <= cy < H):
            continue
        if inside < 0.6 * area or bb[3] - bb[1] < 12:
            continue
        if any(math.hypot(spec.x - o.x, spec.y - o.y) < radius + o_radius or _overlap(bb, obb) > 0.5 for o, obb, o_radius in placed):
            continue
        return spec, bb, radius
    return None


def sample_scene(
    rng: np.random.Generator,
    style: DomainStyle,
    size: tuple[int, int],
    kinds: dict[str, float],
    n_objects: tuple[int, int],
) -> Scene:
    """A random scene of ``style`` with between ``n_objects[0]`` and ``n_objects[1]`` objects.

    At least one object is always placed (a few retries with fresh targets), so no image of
    the keypoint or detection sets is empty by accident.
    """
    camera = sample_camera(rng, style, size)
    road = sample_road(rng, style)
    facades = sample_facades(rng, style, road)
    az, el = _u(rng, 0.0, 2 * math.pi), math.radians(_u(rng, 20.0, 70.0))
    light = (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
    names = list(kinds)
    weights = np.array([kinds[n] for n in names], dtype=float)
    weights /= weights.sum()
    wanted = int(rng.integers(n_objects[0], n_objects[1] + 1))
    placed: list[_Placed] = []
    attempts = 0
    while len(placed) < wanted and attempts < wanted + 6:
        attempts += 1
        kind = str(names[int(rng.choice(len(names), p=weights))])
        got = _place(rng, camera, road, kind, sample_object_params(kind, rng, style), placed)
        if got is not None:
            placed.append(got)
    return Scene(
        domain=style.name,
        camera=camera,
        road=road,
        facades=facades,
        objects=tuple(spec for spec, _, _ in placed),
        light=light,
        sky_top=_pick(rng, style.sky_top, 6.0),
        sky_horizon=_pick(rng, style.sky_horizon, 6.0),
        ambient=style.ambient,
        diffuse=style.diffuse,
    )
