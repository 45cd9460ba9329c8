"""Procedural 3D models of the seven object classes, built from convex parts.

Each class has a distinct silhouette a small detector can learn (a car is a low body with a
glass cabin, a truck a cab in front of a tall cargo box, a bus one long windowed box, a trailer a
raised box with a tow bar and no cab, a pedestrian a stack of limbs, a motorcycle two solid
wheels under a body, a bicycle two wire wheels and a frame). Models are left/right symmetric,
so mirroring the world maps each vehicle keypoint onto its flip partner (see schema.FLIP_IDX_24).

Parts are drawn with the painter's algorithm. Draw order between two parts comes from a plane
that separates their boxes: the part on the camera's side of that plane can never be hidden by
the other, so it is drawn later. That rule is exact for convex parts and needs no z-buffer.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

Color = tuple[float, float, float]  # BGR, 0..255

# Face indices of a hexahedron (see `hexahedron`).
FRONT, REAR, LEFT, RIGHT, TOP, BOTTOM = range(6)
_HEXA_FACES: tuple[tuple[int, ...], ...] = (
    (4, 5, 7, 6),  # front (a max)
    (0, 2, 3, 1),  # rear
    (2, 6, 7, 3),  # left (b max)
    (0, 1, 5, 4),  # right
    (1, 3, 7, 5),  # top
    (0, 4, 6, 2),  # bottom
)


@dataclass
class Solid:
    """A convex polyhedron with quad faces; faces turned away from the camera are culled."""

    verts: np.ndarray  # (N, 3) object frame
    faces: tuple[tuple[int, ...], ...]
    colors: list[Color]
    decals: dict[int, list[tuple[np.ndarray, Color]]] = field(default_factory=dict)
    seg: str | None = None  # semantic class override (e.g. a rider is "person")

    @cached_property
    def centers(self) -> np.ndarray:
        """Face centres (F, 3)."""
        return self.verts[np.array(self.faces)].mean(axis=1)

    @cached_property
    def normals(self) -> np.ndarray:
        """Outward unit face normals (F, 3); computed on first render (placement never needs them)."""
        quads = self.verts[np.array(self.faces)]  # (F, 4, 3)
        # the cross product of the diagonals is the quad's normal, even with a collapsed corner
        d1, d2 = quads[:, 2] - quads[:, 0], quads[:, 3] - quads[:, 1]
        n = np.empty_like(d1)
        n[:, 0] = d1[:, 1] * d2[:, 2] - d1[:, 2] * d2[:, 1]
        n[:, 1] = d1[:, 2] * d2[:, 0] - d1[:, 0] * d2[:, 2]
        n[:, 2] = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
        n /= np.sqrt((n * n).sum(axis=1, keepdims=True)) + 1e-12
        outward = ((self.centers - self.verts.mean(axis=0)) * n).sum(axis=1) >= 0
        return np.where(outward[:, None], n, -n)

    def points(self) -> np.ndarray:
        return self.verts


@dataclass
class Flat:
    """Two-sided planar polygons drawn in order (a wheel: tyre then hub)."""

    polys: list[np.ndarray]  # each (M, 3)
    colors: list[Color]
    seg: str | None = None

    def points(self) -> np.ndarray:
        return np.concatenate(self.polys)

    @cached_property
    def normal(self) -> np.ndarray:
        """Unit normal of the (planar) polygons."""
        p = self.polys[0]
        n = np.cross(p[1] - p[0], p[2] - p[0])
        return n / (np.linalg.norm(n) + 1e-12)


@dataclass
class Wire:
    """Line segments with a thickness in metres (bicycle frames, tow bars, handlebars)."""

    segments: np.ndarray  # (S, 2, 3)
    color: Color
    thickness_m: float
    seg: str | None = None

    def points(self) -> np.ndarray:
        return self.segments.reshape(-1, 3)


Part = Solid | Flat | Wire


@dataclass
class Model:
    """A posable object: parts, their pairwise separating planes and its keypoints."""

    kind: str
    parts: list[Part]
    keypoints: np.ndarray | None = None  # (24, 3) object frame, vehicles only
    kpt_faces: list[list[tuple[int, int]]] | None = None  # per keypoint: (part, face) it lies on
    footprint: tuple[float, float] = (1.0, 1.0)  # half length, half width (placement spacing)
    # every point the renderer projects, concatenated so one object needs one projection call:
    # per part, its points() then (Solid) its decal polygons; ``spans`` gives the slices
    points_local: np.ndarray = field(init=False)
    spans: list[tuple[slice, dict[int, list[tuple[slice, Color]]]]] = field(init=False)

    def __post_init__(self) -> None:
        chunks: list[np.ndarray] = []
        self.spans = []
        start = 0
        for part in self.parts:
            pts = part.points()
            chunks.append(pts)
            own = slice(start, start + len(pts))
            start += len(pts)
            decals: dict[int, list[tuple[slice, Color]]] = {}
            for face, items in getattr(part, "decals", {}).items():
                for poly, color in items:
                    chunks.append(poly)
                    decals.setdefault(face, []).append((slice(start, start + len(poly)), color))
                    start += len(poly)
            self.spans.append((own, decals))
        if self.keypoints is not None:
            chunks.append(self.keypoints)
        self.points_local = np.concatenate(chunks)

    @cached_property
    def planes(self) -> list[tuple[int, int, list[tuple[int, float, bool]]]]:
        """Separating planes between parts (see `_separating_planes`), computed on first render."""
        return _separating_planes(self.parts)

    def draw_order(self, cam_local: np.ndarray) -> list[int]:
        """Part indices far-to-near for a camera at ``cam_local`` (object frame).

        For each pair of parts separated by axis planes, the part on the camera's side of a plane
        cannot be hidden by the other. A pair separated by several planes where the camera sits
        on different sides cannot overlap on screen at all, so it gets no constraint (adding one
        could create a cycle). Ties keep the model's part order.
        """
        n = len(self.parts)
        after: list[list[int]] = [[] for _ in range(n)]
        indeg = [0] * n
        for i, j, cuts in self.planes:
            near = {(j if i_low else i) if cam_local[axis] > value else (i if i_low else j) for axis, value, i_low in cuts}
            if len(near) != 1:
                continue
            last = near.pop()
            first = j if last == i else i
            after[first].append(last)
            indeg[last] += 1
        ready = [i for i in range(n) if indeg[i] == 0]
        heapq.heapify(ready)
        order: list[int] = []
        while ready:
            i = heapq.heappop(ready)
            order.append(i)
            for j in after[i]:
                indeg[j] -= 1
                if indeg[j] == 0:
                    heapq.heappush(ready, j)
        return order if len(order) == n else list(range(n))


def _separating_planes(parts: list[Part]) -> list[tuple[int, int, list[tuple[int, float, bool]]]]:
    """For each pair (i, j) of parts with disjoint boxes: the axis planes between them.

    A cut is (axis, value, i_low): the plane ``coord[axis] = value``, with part i below it when
    ``i_low`` (else part j).
    """
    pts = [p.points() for p in parts]
    lo = np.array([p.min(axis=0) for p in pts])
    hi = np.array([p.max(axis=0) for p in pts])
    below = lo[None, :, :] - hi[:, None, :] >= -1e-9  # below[i, j, k]: part i entirely below part j on axis k
    mid = (hi[:, None, :] + lo[None, :, :]) / 2.0  # plane between i's top and j's bottom
    planes = []
    for i, j in zip(*np.nonzero(np.triu((below | below.transpose(1, 0, 2)).any(axis=2), 1))):
        cuts = [(k, float(mid[i, j, k]), True) for k in range(3) if below[i, j, k]]
        cuts += [(k, float(mid[j, i, k]), False) for k in range(3) if below[j, i, k]]
        planes.append((int(i), int(j), cuts))
    return planes


# --- building blocks --------------------------------------------------------------------------


def hexahedron(
    a_bottom: tuple[float, float],
    a_top: tuple[float, float],
    half_w_bottom: float,
    half_w_top: float,
    c: tuple[float, float],
    b_center: float = 0.0,
) -> np.ndarray:
    """8 vertices of a box whose top face may be shorter/narrower (a cabin, a sloped cab).

    Vertex index = ia * 4 + ib * 2 + ic with ia 0 rear / 1 front, ib 0 right / 1 left,
    ic 0 bottom / 1 top, matching the face table ``_HEXA_FACES``.
    """
    verts = np.empty((8, 3))
    for ia in range(2):
        for ib in range(2):
            for ic in range(2):
                a_range = a_top if ic else a_bottom
                hw = half_w_top if ic else half_w_bottom
                verts[ia * 4 + ib * 2 + ic] = (a_range[ia], b_center + (hw if ib else -hw), c[ic])
    return verts


def box(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> np.ndarray:
    """8 vertices of an axis-aligned box (same vertex order as `hexahedron`)."""
    return hexahedron(a, a, (b[1] - b[0]) / 2, (b[1] - b[0]) / 2, c, b_center=(b[0] + b[1]) / 2)


def solid(verts: np.ndarray, colors: Color | list[Color], seg: str | None = None) -> Solid:
    cols = list(colors) if isinstance(colors, list) else [colors] * 6
    return Solid(verts=verts, faces=_HEXA_FACES, colors=cols, seg=seg)


_UNIT_CIRCLES = {
    n: np.stack([np.cos(t), np.zeros(n), np.sin(t)], axis=1) for n in (10, 14, 16) for t in [np.linspace(0.0, 2 * math.pi, n, endpoint=False)]
}


def side_disc(a: float, b: float, c: float, radius: float, n: int = 14) -> np.ndarray:
    """A circle in the plane b = const (a wheel seen from the side), (n, 3)."""
    return _UNIT_CIRCLES[n] * radius + (a, b, c)


def face_rect(face: int, a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> np.ndarray:
    """A rectangle decal lying on a face plane: for FRONT/REAR ``a`` is a single value pair (x, x)."""
    if face in (FRONT, REAR):
        return np.array([[a[0], b[0], c[0]], [a[0], b[1], c[0]], [a[0], b[1], c[1]], [a[0], b[0], c[1]]])
    if face in (LEFT, RIGHT):
        return np.array([[a[0], b[0], c[0]], [a[1], b[0], c[0]], [a[1], b[0], c[1]], [a[0], b[0], c[1]]])
    return np.array([[a[0], b[0], c[0]], [a[1], b[0], c[0]], [a[1], b[1], c[0]], [a[0], b[1], c[0]]])


def shrink(poly: np.ndarray, factor: float) -> np.ndarray:
    """Shrink a polygon toward its centroid (a window inset in a door)."""
    center = poly.mean(axis=0)
    return center + (poly - center) * factor


def _wheels(
    axles: list[float], half_w: float, radius: float, tyre: Color, hub: Color
) -> list[Flat]:
    wheels = []
    for a in axles:
        for side in (1.0, -1.0):
            b = side * (half_w + 0.02)
            wheels.append(Flat([side_disc(a, b, radius, radius), side_disc(a, b, radius, 0.55 * radius, 10)], [tyre, hub]))
    return wheels


# --- classes ----------------------------------------------------------------------------------

TYRE: Color = (28.0, 28.0, 30.0)


def build_car(p: dict) -> Model:
    """A car/SUV/van: body, glass cabin, four wheels, mirrors; all 24 keypoints."""
    L, W, r = p["length"], p["width"], p["wheel_r"]
    c0, c1, H = p["clearance"], p["belt"], p["roof"]
    hw = W / 2
    a_cf, a_cr = L / 2 - p["hood"], -L / 2 + p["trunk"]
    a_tf, a_tr = a_cf - p["rake_front"], a_cr + p["rake_rear"]
    body_c, glass, light, tail = p["body_color"], p["glass_color"], p["light_color"], p["tail_color"]

    body = solid(box((-L / 2, L / 2), (-hw, hw), (c0, c1)), body_c)
    hl_b = (hw - 0.38, hw - 0.08)
    body.decals = {
        FRONT: [
            (face_rect(FRONT, (L / 2, L / 2), hl_b, (c1 - 0.22, c1 - 0.07)), light),
            (face_rect(FRONT, (L / 2, L / 2), (-hl_b[1], -hl_b[0]), (c1 - 0.22, c1 - 0.07)), light),
            (face_rect(FRONT, (L / 2, L / 2), (-0.35, 0.35), (c0 + 0.12, c1 - 0.25)), p["grille_color"]),
        ],
        REAR: [
            (face_rect(REAR, (-L / 2, -L / 2), hl_b, (c1 - 0.22, c1 - 0.07)), tail),
            (face_rect(REAR, (-L / 2, -L / 2), (-hl_b[1], -hl_b[0]), (c1 - 0.22, c1 - 0.07)), tail),
            (face_rect(REAR, (-L / 2, -L / 2), (-0.2, 0.2), (c1 - 0.38, c1 - 0.26)), p["plate_color"]),
        ],
        LEFT: [(face_rect(LEFT, (a_cf - 0.75, a_cf - 0.55), (hw, hw), (c1 - 0.16, c1 - 0.1)), p["trim_color"])],
        RIGHT: [(face_rect(RIGHT, (a_cf - 0.75, a_cf - 0.55), (-hw, -hw), (c1 - 0.16, c1 - 0.1)), p["trim_color"])],
    }
    cabin_verts = hexahedron((a_cr, a_cf), (a_tr, a_tf), hw - 0.06, hw - 0.2, (c1, H))
    cabin = solid(cabin_verts, [glass, glass, body_c, body_c, body_c, body_c])
    cabin.decals = {
        face: [(shrink(cabin_verts[list(cabin.faces[face])], 0.8), glass)] for face in (LEFT, RIGHT)
    }
    wb = p["wheelbase"]
    wheels = _wheels([wb / 2, -wb / 2], hw, r, TYRE, p["hub_color"])
    mirror_a = a_cf - 0.05
    mirrors = [
        solid(box((mirror_a - 0.12, mirror_a), (hw + 0.02, hw + 0.2), (c1 + 0.02, c1 + 0.14)), body_c),
        solid(box((mirror_a - 0.12, mirror_a), (-hw - 0.2, -hw - 0.02), (c1 + 0.02, c1 + 0.14)), body_c),
    ]
    parts: list[Part] = [body, cabin, *wheels, *mirrors]
    B, C = 0, 1  # body, cabin part indices
    lc = c1 - 0.145
    kp = np.array(
        [
            [wb / 2, hw + 0.02, r], [wb / 2, -hw - 0.02, r], [-wb / 2, hw + 0.02, r], [-wb / 2, -hw - 0.02, r],
            [L / 2, hw - 0.23, lc], [L / 2, -hw + 0.23, lc], [-L / 2, hw - 0.23, lc], [-L / 2, -hw + 0.23, lc],
            [-L / 2, 0.0, c1 - 0.32],
            [a_tf, hw - 0.2, H], [a_tf, -hw + 0.2, H], [a_tr, hw - 0.2, H], [a_tr, -hw + 0.2, H],
            [L / 2, 0.0, (c0 + c1) / 2],
            [mirror_a - 0.06, hw + 0.2, c1 + 0.08], [mirror_a - 0.06, -hw - 0.2, c1 + 0.08],
            [a_cf - 0.65, hw, c1 - 0.13], [a_cf - 0.65, -hw, c1 - 0.13],
            [L / 2, hw, c0 + 0.08], [L / 2, -hw, c0 + 0.08], [-L / 2, hw, c0 + 0.08], [-L / 2, -hw, c0 + 0.08],
            [(a_tf + a_tr) / 2, 0.0, H], [(a_cf + L / 2) / 2, 0.0, c1],
        ]
    )
    faces = _vehicle_kpt_faces(B, C, cabin_front=C, cabin_rear=C, hood=(B, TOP))
    return Model("car", parts, kp, faces, footprint=(L / 2, hw + 0.2))


def _vehicle_kpt_faces(
    body: int, cabin: int, cabin_front: int, cabin_rear: int, hood: tuple[int, int]
) -> list[list[tuple[int, int]]]:
    """Which faces each of the 24 keypoints lies on (a point is self-visible if any faces the camera)."""
    Bf, Br, Bl, Brt = (body, FRONT), (body, REAR), (body, LEFT), (body, RIGHT)
    return [
        [Bl], [Brt], [Bl], [Brt],
        [Bf], [Bf], [Br], [Br],
        [Br],
        [(cabin_front, TOP), (cabin_front, FRONT), (cabin_front, LEFT)],
        [(cabin_front, TOP), (cabin_front, FRONT), (cabin_front, RIGHT)],
        [(cabin_rear, TOP), (cabin_rear, REAR), (cabin_rear, LEFT)],
        [(cabin_rear, TOP), (cabin_rear, REAR), (cabin_rear, RIGHT)],
        [Bf],
        [Bf, Bl], [Bf, Brt],
        [Bl], [Brt],
        [Bf, Bl], [Bf, Brt], [Br, Bl], [Br, Brt],
        [(cabin, TOP)], [hood],
    ]


def build_truck(p: dict) -> Model:
    """A box truck: a short cab in front of a taller cargo box; all 24 keypoints."""
    L, W, r = p["length"], p["width"], p["wheel_r"]
    c0, cab_len, cab_h, box_h = p["clearance"], p["cab_len"], p["cab_h"], p["box_h"]
    hw = W / 2
    a_split = L / 2 - cab_len
    body_c, glass, light, tail = p["body_color"], p["glass_color"], p["light_color"], p["tail_color"]
    cab_verts = hexahedron((a_split, L / 2), (a_split, L / 2 - 0.25), hw - 0.05, hw - 0.12, (c0, cab_h))
    cab = solid(cab_verts, body_c)
    cab.decals = {
        FRONT: [
            (shrink(np.array([cab_verts[5], cab_verts[7], (cab_verts[7] + cab_verts[6]) / 2, (cab_verts[5] + cab_verts[4]) / 2]), 0.9), glass),
            (face_rect(FRONT, (L / 2, L / 2), (hw - 0.4, hw - 0.1), (c0 + 0.25, c0 + 0.45)), light),
            (face_rect(FRONT, (L / 2, L / 2), (-hw + 0.1, -hw + 0.4), (c0 + 0.25, c0 + 0.45)), light),
        ],
        LEFT: [(face_rect(LEFT, (a_split + 0.35, L / 2 - 0.5), (hw - 0.05, hw - 0.05), ((c0 + cab_h) / 2 + 0.2, cab_h - 0.15)), glass)],
        RIGHT: [(face_rect(RIGHT, (a_split + 0.35, L / 2 - 0.5), (-hw + 0.05, -hw + 0.05), ((c0 + cab_h) / 2 + 0.2, cab_h - 0.15)), glass)],
    }
    cargo = solid(box((-L / 2, a_split - 0.12), (-hw, hw), (c0, box_h)), p["cargo_color"])
    cargo.decals = {
        REAR: [
            (face_rect(REAR, (-L / 2, -L / 2), (hw - 0.35, hw - 0.1), (c0 + 0.15, c0 + 0.35)), tail),
            (face_rect(REAR, (-L / 2, -L / 2), (-hw + 0.1, -hw + 0.35), (c0 + 0.15, c0 + 0.35)), tail),
            (face_rect(REAR, (-L / 2, -L / 2), (-0.03, 0.03), (c0 + 0.5, box_h - 0.1)), p["trim_color"]),
        ]
    }
    axles = [L / 2 - cab_len / 2, -L / 2 + 1.0] + ([-L / 2 + 2.1] if L > 7.0 else [])
    wheels = _wheels(axles, hw, r, TYRE, p["hub_color"])
    mirror_a = L / 2 - 0.35
    mirrors = [
        solid(box((mirror_a - 0.1, mirror_a), (hw + 0.02, hw + 0.25), (cab_h - 0.9, cab_h - 0.5)), TYRE),
        solid(box((mirror_a - 0.1, mirror_a), (-hw - 0.25, -hw - 0.02), (cab_h - 0.9, cab_h - 0.5)), TYRE),
    ]
    parts: list[Part] = [cab, cargo, *wheels, *mirrors]
    CAB, CARGO = 0, 1
    la = L / 2
    kp = np.array(
        [
            [axles[0], hw + 0.02, r], [axles[0], -hw - 0.02, r], [axles[1], hw + 0.02, r], [axles[1], -hw - 0.02, r],
            [la, hw - 0.25, c0 + 0.35], [la, -hw + 0.25, c0 + 0.35], [-la, hw - 0.22, c0 + 0.25], [-la, -hw + 0.22, c0 + 0.25],
            [-la, 0.0, c0 + 0.1],
            [la - 0.25, hw - 0.12, cab_h], [la - 0.25, -hw + 0.12, cab_h], [-la, hw, box_h], [-la, -hw, box_h],
            [la, 0.0, c0 + 0.6],
            [mirror_a - 0.05, hw + 0.25, cab_h - 0.7], [mirror_a - 0.05, -hw - 0.25, cab_h - 0.7],
            [a_split + 0.3, hw - 0.05, c0 + 0.9], [a_split + 0.3, -hw + 0.05, c0 + 0.9],
            [la, hw - 0.05, c0 + 0.05], [la, -hw + 0.05, c0 + 0.05], [-la, hw, c0 + 0.05], [-la, -hw, c0 + 0.05],
            [(-la + a_split) / 2, 0.0, box_h], [la - 0.12, 0.0, (c0 + cab_h) / 2 + 0.5],
        ]
    )
    faces = _vehicle_kpt_faces(CAB, CARGO, cabin_front=CAB, cabin_rear=CARGO, hood=(CAB, FRONT))
    # the cab's side faces carry the front wheels and handles; the cargo box carries the rear ones
    for k in (2, 20):
        faces[k] = [(CARGO, LEFT)] + ([(CARGO, REAR)] if k == 20 else [])
    for k in (3, 21):
        faces[k] = [(CARGO, RIGHT)] + ([(CARGO, REAR)] if k == 21 else [])
    for k in (6, 7, 8):
        faces[k] = [(CARGO, REAR)]
    return Model("truck", parts, kp, faces, footprint=(L / 2, hw + 0.25))


def build_bus(p: dict) -> Model:
    """A bus: one long tall box with a row of side windows and a big windscreen."""
    L, W, r, H, c0 = p["length"], p["width"], p["wheel_r"], p["height"], p["clearance"]
    hw = W / 2
    shell = solid(box((-L / 2, L / 2), (-hw, hw), (c0, H)), p["body_color"])
    glass = p["glass_color"]
    n_win = max(4, int(L / 1.6))
    win_len = (L - 1.6) / n_win
    side_decals: dict[int, list[tuple[np.ndarray, Color]]] = {LEFT: [], RIGHT: []}
    for face, b in ((LEFT, hw), (RIGHT, -hw)):
        for i in range(n_win):
            a0 = -L / 2 + 0.5 + i * win_len
            side_decals[face].append((face_rect(face, (a0 + 0.08, a0 + win_len - 0.08), (b, b), (H - 1.25, H - 0.35)), glass))
        side_decals[face].append((face_rect(face, (-L / 2 + 0.3, L / 2 - 0.3), (b, b), (c0 + 0.45, c0 + 0.6)), p["stripe_color"]))
    shell.decals = {
        **side_decals,
        FRONT: [
            (face_rect(FRONT, (L / 2, L / 2), (-hw + 0.12, hw - 0.12), (c0 + 1.2, H - 0.25)), glass),
            (face_rect(FRONT, (L / 2, L / 2), (hw - 0.45, hw - 0.15), (c0 + 0.3, c0 + 0.5)), p["light_color"]),
            (face_rect(FRONT, (L / 2, L / 2), (-hw + 0.15, -hw + 0.45), (c0 + 0.3, c0 + 0.5)), p["light_color"]),
        ],
        REAR: [(face_rect(REAR, (-L / 2, -L / 2), (-hw + 0.3, hw - 0.3), (c0 + 1.4, H - 0.5)), glass)],
    }
    wheels = _wheels([L / 2 - 2.4, -L / 2 + 2.8], hw, r, TYRE, p["hub_color"])
    return Model("bus", [shell, *wheels], footprint=(L / 2, hw))


def build_trailer(p: dict) -> Model:
    """A semi-trailer: a raised box on rear axles, landing legs and a tow bar, no cab."""
    L, W, r, H, c0 = p["length"], p["width"], p["wheel_r"], p["height"], p["clearance"]
    hw = W / 2
    shell = solid(box((-L / 2, L / 2), (-hw, hw), (c0, H)), p["body_color"])
    stripe = p["stripe_color"]
    shell.decals = {
        LEFT: [(face_rect(LEFT, (-L / 2 + 0.1, L / 2 - 0.1), (hw, hw), (c0 + 0.05, c0 + 0.2)), stripe)],
        RIGHT: [(face_rect(RIGHT, (-L / 2 + 0.1, L / 2 - 0.1), (-hw, -hw), (c0 + 0.05, c0 + 0.2)), stripe)],
        REAR: [
            (face_rect(REAR, (-L / 2, -L / 2), (-0.03, 0.03), (c0 + 0.1, H - 0.1)), stripe),
            (face_rect(REAR, (-L / 2, -L / 2), (hw - 0.3, hw - 0.08), (c0 + 0.05, c0 + 0.2)), p["tail_color"]),
            (face_rect(REAR, (-L / 2, -L / 2), (-hw + 0.08, -hw + 0.3), (c0 + 0.05, c0 + 0.2)), p["tail_color"]),
        ],
    }
    wheels = _wheels([-L / 2 + 1.0, -L / 2 + 2.1], hw - 0.05, r, TYRE, p["hub_color"])
    legs = Wire(
        np.array(
            [
                [[L / 2 - 1.5, hw - 0.3, 0.0], [L / 2 - 1.5, hw - 0.3, c0]],
                [[L / 2 - 1.5, -hw + 0.3, 0.0], [L / 2 - 1.5, -hw + 0.3, c0]],
            ]
        ),
        (60.0, 60.0, 60.0),
        0.12,
    )
    tow = Wire(np.array([[[L / 2, 0.0, c0 + 0.1], [L / 2 + 1.2, 0.0, c0 - 0.1]]]), (40.0, 40.0, 45.0), 0.14)
    return Model("trailer", [shell, *wheels, legs, tow], footprint=(L / 2 + 0.6, hw))


def _person_parts(p: dict, a0: float, c_base: float, seated: bool, seg: str | None) -> list[Part]:
    """Limbs, torso and head of a person standing at (a0, 0, c_base), or seated on a saddle."""
    H = p["height"]
    skin, shirt, pants, hair = p["skin_color"], p["shirt_color"], p["pants_color"], p["hair_color"]
    hip = c_base + (0.12 * H if seated else 0.47 * H)
    neck = hip + 0.33 * H
    step = 0.0 if seated else p["step"]
    parts: list[Part] = []
    if seated:  # thighs forward, shins down beside the machine
        for side in (1.0, -1.0):
            b = side * 0.17
            parts.append(solid(box((a0, a0 + 0.42), (b - 0.07, b + 0.07), (hip - 0.12, hip + 0.02)), pants, seg))
            b_shin = side * 0.26  # outside the machine's body, so the far shin hides behind it
            parts.append(
                solid(box((a0 + 0.35, a0 + 0.47), (b_shin - 0.06, b_shin + 0.06), (max(0.05, hip - 0.55), hip - 0.12)), pants, seg)
            )
    else:
        for side in (1.0, -1.0):
            b = side * 0.1
            a = a0 + side * step
            parts.append(solid(box((a - 0.09, a + 0.09), (b - 0.07, b + 0.07), (c_base, hip)), pants, seg))
    torso = hexahedron((a0 - 0.12, a0 + 0.12), (a0 - 0.11, a0 + 0.11), 0.17, 0.21, (hip, neck))
    lean = 0.15 if seated else 0.0
    torso[[1, 3, 5, 7], 0] += lean
    parts.append(solid(torso, shirt, seg))
    for side in (1.0, -1.0):
        b0 = side * 0.21
        b1 = side * 0.3
        arm_a = a0 + lean + (0.25 if seated else -side * step * 0.6)
        parts.append(solid(box((arm_a - 0.06, arm_a + 0.06), (min(b0, b1), max(b0, b1)), (hip + 0.05, neck - 0.03)), shirt if seated else skin, seg))
    head_c = neck + 0.02
    ha = a0 + lean
    head = hexahedron((ha - 0.1, ha + 0.1), (ha - 0.09, ha + 0.09), 0.09, 0.08, (head_c, head_c + 0.2))
    head_solid = solid(head, [skin, hair, skin, skin, hair, skin], seg)
    parts.append(head_solid)
    return parts


def build_pedestrian(p: dict) -> Model:
    """A standing or walking person: legs, torso, arms, head."""
    return Model("pedestrian", _person_parts(p, 0.0, 0.0, seated=False, seg=None), footprint=(0.35, 0.35))


def build_motorcycle(p: dict) -> Model:
    """A motorcycle: two solid wheels, engine/tank body, seat, handlebar and often a rider."""
    r, wb = p["wheel_r"], p["wheelbase"]
    parts: list[Part] = [
        Flat([side_disc(wb / 2, 0.0, r, r), side_disc(wb / 2, 0.0, r, 0.45 * r, 10)], [TYRE, p["hub_color"]]),
        Flat([side_disc(-wb / 2, 0.0, r, r), side_disc(-wb / 2, 0.0, r, 0.45 * r, 10)], [TYRE, p["hub_color"]]),
    ]
    body = solid(box((-wb / 2 + 0.25, wb / 2 - 0.15), (-0.18, 0.18), (r - 0.05, r + 0.45)), p["body_color"])
    body.decals = {FRONT: [(face_rect(FRONT, (wb / 2 - 0.15, wb / 2 - 0.15), (-0.08, 0.08), (r + 0.25, r + 0.38)), p["light_color"])]}
    seat = solid(box((-wb / 2 + 0.1, 0.05), (-0.15, 0.15), (r + 0.45, r + 0.55)), (25.0, 25.0, 25.0))
    bar_c = r + 0.75
    fork = Wire(
        np.array([[[wb / 2, 0.0, r], [wb / 2 - 0.2, 0.0, bar_c]], [[wb / 2 - 0.2, -0.38, bar_c], [wb / 2 - 0.2, 0.38, bar_c]]]),
        (50.0, 50.0, 55.0),
        0.05,
    )
    parts += [body, seat, fork]
    if p["rider"]:
        parts += _person_parts(p, -0.2, r + 0.55, seated=True, seg="person")
    return Model("motorcycle", parts, footprint=(wb / 2 + r, 0.4))


def build_bicycle(p: dict) -> Model:
    """A bicycle: two thin wire wheels, a diamond frame, handlebar, saddle and usually a rider."""
    r, wb = p["wheel_r"], p["wheelbase"]
    frame_c = p["frame_color"]
    segs = []
    for a in (wb / 2, -wb / 2):
        ring = side_disc(a, 0.0, r, r, 16)
        segs += [[ring[i], ring[(i + 1) % 16]] for i in range(16)]
    wheels = Wire(np.array(segs), TYRE, 0.05)
    crank = np.array([0.0, 0.0, r * 0.9])
    seat_pt = np.array([-0.18, 0.0, r + 0.55])
    head_pt = np.array([wb / 2 - 0.15, 0.0, r + 0.5])
    rear_hub = np.array([-wb / 2, 0.0, r])
    front_hub = np.array([wb / 2, 0.0, r])
    bar = np.array([wb / 2 - 0.2, 0.0, r + 0.72])
    frame = Wire(
        np.array(
            [
                [rear_hub, seat_pt], [seat_pt, head_pt], [head_pt, crank], [crank, seat_pt], [rear_hub, crank],
                [front_hub, head_pt], [head_pt, bar], [bar + [0, -0.3, 0], bar + [0, 0.3, 0]],
            ]
        ),
        frame_c,
        0.045,
    )
    saddle = solid(box((-0.3, -0.06), (-0.07, 0.07), (r + 0.55, r + 0.62)), (25.0, 25.0, 25.0))
    parts: list[Part] = [wheels, frame, saddle]
    if p["rider"]:
        parts += _person_parts(p, -0.2, r + 0.62, seated=True, seg="person")
    return Model("bicycle", parts, footprint=(wb / 2 + r, 0.35))


BUILDERS = {
    "car": build_car,
    "truck": build_truck,
    "bus": build_bus,
    "trailer": build_trailer,
    "pedestrian": build_pedestrian,
    "motorcycle": build_motorcycle,
    "bicycle": build_bicycle,
}


def build_model(kind: str, params: dict) -> Model:
    """The model of one object from its sampled parameters (see scene.sample_object_params)."""
    return BUILDERS[kind](params)
