"""A sample race track and the parameter sets DRoA's reward-function validator calls a function with.

DRoA validates an imported reward function by calling it with parameters built from the chosen
track's waypoints (its own route files, which are not ours to ship). This module generates a
realistic closed loop instead: a centre line of 120 waypoints around a lobed oval of about 18 m,
with inner and outer borders 0.76 m apart, driven counter-clockwise (clockwise: reversed). The
call therefore proves that the function runs and returns a number for a car on a track like the
real one; it does not reproduce the exact geometry of the named track.

The five situations are those the validator uses: a valid car between the inner border and the
centre at the start, a car on the start line, one half-way round, one off the track beyond the
outer border, and one at the finish.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

TRACK_WIDTH = 0.76
WAYPOINTS = 120

# Six obstacles/bot cars, as in an object-avoidance race; values only need to be plausible.
_OBJECTS = {
    "closest_objects": [0, 1],
    "objects_location": [[4.5, 1.3], [6.5, 1.4], [4.8, 3.1], [3.1, 4.1], [0.7, 4.2], [1.6, 1.7]],
    "objects_left_of_center": [True, True, False, True, False, True],
    "object_in_camera": True,
    "objects_speed": [0.2] * 6,
    "objects_heading": [2.72, 2.37, -1.93, -1.36, 0.0, 0.56],
    "objects_distance": [1.95, 4.14, 8.0, 10.02, 12.57, 15.09],
}


@dataclass(frozen=True)
class SampleTrack:
    track_id: str
    clockwise: bool
    center: list[tuple[float, float]]
    inner: list[tuple[float, float]]
    outer: list[tuple[float, float]]
    width: float

    @property
    def length(self) -> float:
        points = self.center + self.center[:1]
        return sum(math.dist(a, b) for a, b in zip(points, points[1:]))

    def heading_at(self, index: int) -> float:
        a, b = self.center[index], self.center[(index + 1) % len(self.center)]
        return math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))


def sample_track(track_id: str = "sample", clockwise: bool = False) -> SampleTrack:
    """A closed loop with straights of varying curvature, centred in the first quadrant."""
    center = []
    for i in range(WAYPOINTS):
        t = 2 * math.pi * i / WAYPOINTS
        radius = 1.0 + 0.18 * math.cos(3 * t)  # three gentle lobes: left and right bends
        center.append((4.0 + 3.2 * radius * math.cos(t), 2.8 + 2.0 * radius * math.sin(t)))
    if clockwise:
        center.reverse()
    inner, outer = [], []
    for i, (x, y) in enumerate(center):
        nx_, ny_ = center[(i + 1) % WAYPOINTS]
        px, py = center[i - 1]
        dx, dy = nx_ - px, ny_ - py
        norm = math.hypot(dx, dy) or 1.0
        left = (-dy / norm, dx / norm)  # the inside of a counter-clockwise loop is on the left
        side = -1.0 if clockwise else 1.0
        half = TRACK_WIDTH / 2
        inner.append((x + side * left[0] * half, y + side * left[1] * half))
        outer.append((x - side * left[0] * half, y - side * left[1] * half))
    return SampleTrack(track_id, clockwise, center, inner, outer, TRACK_WIDTH)


def _base(track: SampleTrack) -> dict[str, Any]:
    return {
        "track_width": track.width,
        "track_length": track.length,
        "waypoints": [list(point) for point in track.center],
        "is_reversed": False,
        "is_crashed": False,
        "is_offtrack": False,
        "all_wheels_on_track": True,
        **{key: (list(value) if isinstance(value, list) else value) for key, value in _OBJECTS.items()},
    }


def situations(track: SampleTrack) -> dict[str, dict[str, Any]]:
    """name -> the params dict a reward function receives in that situation."""
    n = len(track.center)
    middle, last = n // 2, n - 1
    start_x = (track.center[0][0] + track.inner[0][0]) / 2
    start_y = (track.center[0][1] + track.inner[0][1]) / 2
    off_x = track.center[0][0] + (track.outer[0][0] - track.center[0][0]) * 2.5
    off_y = track.center[0][1] + (track.outer[0][1] - track.center[0][1]) * 2.5

    def car(**values: Any) -> dict[str, Any]:
        return {**_base(track), **values}

    return {
        "valid car": car(x=start_x, y=start_y, distance_from_center=track.width / 4, heading=track.heading_at(0),
                         progress=0.0, steps=1, speed=0.5, steering_angle=6.0, closest_waypoints=[0, 1],
                         is_left_of_center=True),
        "car on the start line": car(x=track.center[0][0], y=track.center[0][1], distance_from_center=0.0,
                                     heading=track.heading_at(0), progress=0.0, steps=1, speed=0.1,
                                     steering_angle=0.2, closest_waypoints=[0, 1], is_left_of_center=True),
        "car half-way round": car(x=track.center[middle][0], y=track.center[middle][1], distance_from_center=0.0,
                                  heading=track.heading_at(middle), progress=50.0, steps=100, speed=1.0,
                                  steering_angle=6.0, closest_waypoints=[middle, middle + 1], is_left_of_center=True),
        "car off the track": car(x=off_x, y=off_y, distance_from_center=track.width, heading=track.heading_at(0),
                                 progress=0.0, steps=1, speed=1.0, steering_angle=15.0, closest_waypoints=[0, 1],
                                 is_left_of_center=False, all_wheels_on_track=False, is_offtrack=True),
        "car at the finish": car(x=track.center[last][0], y=track.center[last][1], distance_from_center=0.0,
                                 heading=track.heading_at(last), progress=100.0, steps=10000, speed=4.0,
                                 steering_angle=0.0, closest_waypoints=[last - 1, last], is_left_of_center=True),
    }
