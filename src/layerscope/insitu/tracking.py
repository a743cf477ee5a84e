"""Tracking features across frames: nucleation, growth, coalescence, splitting, disappearance.

Features are linked between consecutive analysed frames by overlap of their outlines after drift
correction (both masks placed in the specimen coordinates of the first frame); voids barely move,
so overlap is a sharper criterion than centroid distance, and it sees merging directly:

* a feature with no predecessor starts a track: ``nucleation`` (first detection; ``entered`` when it
  touches the edge of the analysed region, i.e. it may have drifted in);
* one predecessor with one successor: the track continues (growth is read from its area);
* several predecessors: ``coalescence``; the merged feature continues the largest predecessor's
  track, the others end as ``merged`` into it;
* several successors: ``split``; the largest continues, the others start new tracks;
* a merge undone within ``contact_frames`` frames (two voids whose outlines touch in one frame and
  part in the next, as noise moves the outline by a sample) is a *contact*: the parted feature that
  overlaps the merged track's last outline takes that track back, and neither the coalescence nor
  the split is reported;
* no successor: ``disappearance`` (``left`` when it touched the edge).

Frames that could not be analysed are skipped: the next good frame is linked to the last good one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from layerscope.errors import InputError

__all__ = ["TrackedFeature", "track_features", "track_summary"]


@dataclass
class TrackedFeature:
    """A feature placed in specimen coordinates on the binned grid.

    Attributes
    ----------
    frame : int
    index : int
        Position in that frame's feature list.
    row0, col0 : int
        Top-left corner of ``mask`` in specimen-grid samples (drift removed, rounded).
    mask : ndarray of bool
    area_nm2 : float
    x_nm, y_nm : float
        Centroid in specimen coordinates (nm).
    truncated : bool
    """

    frame: int
    index: int
    row0: int
    col0: int
    mask: np.ndarray
    area_nm2: float
    x_nm: float
    y_nm: float
    truncated: bool


def _overlap(a: TrackedFeature, b: TrackedFeature) -> int:
    r0 = max(a.row0, b.row0)
    c0 = max(a.col0, b.col0)
    r1 = min(a.row0 + a.mask.shape[0], b.row0 + b.mask.shape[0])
    c1 = min(a.col0 + a.mask.shape[1], b.col0 + b.mask.shape[1])
    if r1 <= r0 or c1 <= c0:
        return 0
    sa = a.mask[r0 - a.row0 : r1 - a.row0, c0 - a.col0 : c1 - a.col0]
    sb = b.mask[r0 - b.row0 : r1 - b.row0, c0 - b.col0 : c1 - b.col0]
    return int(np.count_nonzero(sa & sb))


def _links(prev: list[TrackedFeature], cur: list[TrackedFeature]) -> list[tuple[int, int, int]]:
    """(i_prev, j_cur, overlap) for every overlapping pair (bounding boxes first)."""
    if not prev or not cur:
        return []
    pb = np.array([[f.row0, f.col0, f.row0 + f.mask.shape[0], f.col0 + f.mask.shape[1]] for f in prev])
    out = []
    for j, f in enumerate(cur):
        r0, c0, r1, c1 = f.row0, f.col0, f.row0 + f.mask.shape[0], f.col0 + f.mask.shape[1]
        cand = np.flatnonzero((pb[:, 0] < r1) & (pb[:, 2] > r0) & (pb[:, 1] < c1) & (pb[:, 3] > c0))
        for i in cand:
            ov = _overlap(prev[i], f)
            if ov > 0:
                out.append((int(i), j, ov))
    return out


def track_features(frames: dict[int, list[TrackedFeature]], times_s: np.ndarray, *,
                   contact_frames: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Link features frame to frame and list the events.

    Parameters
    ----------
    frames : dict
        ``{frame index: [TrackedFeature, ...]}`` for every analysed frame (empty list when a frame
        had none; frames that failed are absent).
    times_s : ndarray
        Time of every frame (s), indexed by frame number.
    contact_frames : int
        A coalescence followed, within this many frames, by a split that gives back a feature on
        the merged track's last outline is a contact: both events are withdrawn and the track
        resumes. 0 reports every merge and split as seen.

    Returns
    -------
    assignments : DataFrame
        ``frame, index, track_id`` for every feature (``index`` is :attr:`TrackedFeature.index`).
    events : DataFrame
        ``frame, time_s, event, track_id, other_track_ids, x_nm, y_nm, area_nm2``.
    """
    if contact_frames < 0:
        raise InputError(f"--contact-frames {contact_frames}: give 0 or more frames")
    tracker = _Tracker(times_s, contact_frames)
    prev_frame: int | None = None
    for t in sorted(frames):
        tracker.link(frames, t, prev_frame)
        prev_frame = t
    rows = [{"frame": fr, "index": frames[fr][j].index, "track_id": tid} for (fr, j), tid in tracker.ids.items()]
    assignments = pd.DataFrame(rows, columns=["frame", "index", "track_id"]).sort_values(["frame", "index"])
    events = [e for e in tracker.events if not e.get("withdrawn", False)]
    ev = pd.DataFrame(events, columns=["frame", "time_s", "event", "track_id", "other_track_ids", "x_nm", "y_nm",
                                       "area_nm2"])
    return assignments.reset_index(drop=True), ev


class _Tracker:
    """The state of :func:`track_features` while it walks the frames in order.

    Attributes
    ----------
    ids : dict
        ``(frame, position in the frame's list) -> track id``.
    events : list of dict
        Every event so far (``withdrawn`` set on those a contact undid).
    absorbed : dict
        Track that absorbed others -> ``[(absorbed track, its last feature, frame, its merged event,
        the coalescence event)]``.
    """

    def __init__(self, times_s: np.ndarray, contact_frames: int) -> None:
        self.times_s = times_s
        self.contact_frames = contact_frames
        self.next_id = 0
        self.ids: dict[tuple[int, int], int] = {}
        self.events: list[dict] = []
        self.absorbed: dict[int, list[tuple[int, TrackedFeature, int, dict, dict]]] = {}

    def new_id(self) -> int:
        """A fresh track id."""
        self.next_id += 1
        return self.next_id - 1

    def event(self, frame: int, kind: str, tid: int, f: TrackedFeature, others=()) -> dict:
        """Record an event of track ``tid`` at feature ``f``; returns its row (still editable)."""
        self.events.append({"frame": frame, "time_s": float(self.times_s[frame]), "event": kind, "track_id": tid,
                            "other_track_ids": " ".join(str(o) for o in others), "x_nm": f.x_nm, "y_nm": f.y_nm,
                            "area_nm2": f.area_nm2})
        return self.events[-1]

    def parted(self, t: int, parent: int, f: TrackedFeature) -> int:
        """Id for a feature split off ``parent``: a recently absorbed track it sits on, or a new one."""
        recent = [e for e in self.absorbed.get(parent, []) if t - e[2] <= self.contact_frames]
        best = max(recent, key=lambda e: _overlap(e[1], f), default=None)
        if best is not None and _overlap(best[1], f) > 0:
            self.absorbed[parent].remove(best)
            tid, _, _, merged_ev, coal_ev = best
            merged_ev["withdrawn"] = True
            others = [o for o in coal_ev["other_track_ids"].split() if o != str(tid)]
            coal_ev["other_track_ids"] = " ".join(others)
            coal_ev["withdrawn"] = coal_ev.get("withdrawn", False) or not others
            return tid
        self.event(t, "split", self.next_id, f, [parent])
        return self.new_id()

    def link(self, frames: dict[int, list[TrackedFeature]], t: int, prev_frame: int | None) -> None:
        """Give every feature of frame ``t`` its track, linked to ``prev_frame`` (None: the first)."""
        cur = frames[t]
        prev = frames[prev_frame] if prev_frame is not None else []
        preds: dict[int, list[tuple[int, int]]] = {j: [] for j in range(len(cur))}
        succs: dict[int, list[tuple[int, int]]] = {i: [] for i in range(len(prev))}
        for i, j, ov in _links(prev, cur):
            preds[j].append((i, ov))
            succs[i].append((j, ov))
        taken: set[int] = set()
        self._splits(t, prev_frame, cur, preds, succs, taken)
        for j, f in enumerate(cur):
            if (t, j) not in self.ids:
                self._one(t, prev_frame, prev, j, f, preds[j], taken)
        for i, sl in succs.items():
            if not sl:
                f = prev[i]
                self.event(t, "left" if f.truncated else "disappearance", self.ids[(prev_frame, i)], f)

    def _splits(self, t: int, prev_frame: int | None, cur: list[TrackedFeature], preds: dict, succs: dict,
                taken: set[int]) -> None:
        """Splits first: the largest successor keeps the id."""
        for i, sl in succs.items():
            if len(sl) > 1:
                parent = self.ids[(prev_frame, i)]
                ranked = sorted(sl, key=lambda jo: -cur[jo[0]].area_nm2)
                for j, _ in ranked:
                    if len(preds[j]) > 1:
                        continue
                    if parent not in taken:
                        self.ids[(t, j)] = parent
                    else:
                        self.ids[(t, j)] = self.parted(t, parent, cur[j])
                    taken.add(self.ids[(t, j)])

    def _one(self, t: int, prev_frame: int | None, prev: list[TrackedFeature], j: int, f: TrackedFeature,
             pl: list[tuple[int, int]], taken: set[int]) -> None:
        """Feature ``j`` of frame ``t`` with predecessors ``pl``: nucleation, continuation or coalescence."""
        if not pl:
            self.ids[(t, j)] = self.next_id
            self.event(t, "entered" if f.truncated else "nucleation", self.next_id, f)
            self.new_id()
        elif len(pl) == 1:
            parent = self.ids[(prev_frame, pl[0][0])]
            # the parent may have split into others already
            self.ids[(t, j)] = self.parted(t, parent, f) if parent in taken else parent
            taken.add(self.ids[(t, j)])
        else:
            ranked = sorted(pl, key=lambda io: -prev[io[0]].area_nm2)
            parents = [self.ids[(prev_frame, i)] for i, _ in ranked]
            keep = next((p for p in parents if p not in taken), None)
            if keep is None:
                keep = self.new_id()
            self.ids[(t, j)] = keep
            taken.add(keep)
            merged = [p for p in parents if p != keep]
            coal = self.event(t, "coalescence", keep, f, merged)
            for p, (i, _) in zip(parents, ranked):
                if p != keep:
                    m = self.event(t, "merged", p, prev[i], [keep])
                    self.absorbed.setdefault(keep, []).append((p, prev[i], t, m, coal))


def track_summary(features: pd.DataFrame) -> pd.DataFrame:
    """One row per track: life, position, first and last area and the areal growth rate.

    Parameters
    ----------
    features : DataFrame
        Per-feature rows with ``track_id, frame, time_s, x_nm, y_nm, area_nm2``.

    Returns
    -------
    DataFrame
        ``track_id, first_frame, last_frame, n_frames, first_time_s, last_time_s, x_nm, y_nm,
        first_area_nm2, last_area_nm2, max_area_nm2, growth_nm2_per_s`` (least-squares slope of area
        against time; NaN for single-frame tracks).
    """
    rows = []
    for tid, g in features.groupby("track_id"):
        g = g.sort_values("frame")
        t = g["time_s"].to_numpy(float)
        a = g["area_nm2"].to_numpy(float)
        slope = float(np.polyfit(t, a, 1)[0]) if len(g) >= 2 and np.ptp(t) > 0 else float("nan")
        rows.append({
            "track_id": int(tid), "first_frame": int(g["frame"].iloc[0]), "last_frame": int(g["frame"].iloc[-1]),
            "n_frames": int(len(g)), "first_time_s": float(t[0]), "last_time_s": float(t[-1]),
            "x_nm": float(g["x_nm"].mean()), "y_nm": float(g["y_nm"].mean()),
            "first_area_nm2": float(a[0]), "last_area_nm2": float(a[-1]), "max_area_nm2": float(a.max()),
            "growth_nm2_per_s": slope,
        })
    return pd.DataFrame(rows, columns=["track_id", "first_frame", "last_frame", "n_frames", "first_time_s",
                                       "last_time_s", "x_nm", "y_nm", "first_area_nm2", "last_area_nm2",
                                       "max_area_nm2", "growth_nm2_per_s"])
