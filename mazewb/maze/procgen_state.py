"""Codec for procgen 0.10.7's serialized maze state (the bytes of ``get_state`` / ``set_state``).

The layout is documented in the project's reference notes and in procgen's C++ source
(``Game::serialize``, ``BasicAbstractGame::serialize``, ``Maze::serialize``). Every field is
parsed into an ordered list of ``(name, kind, value)`` so that writing it back gives the same
bytes exactly. Anything that does not match the layout (another game, another version, a fork
with extra options, a truncated buffer) raises :class:`StateFormatError` naming what was wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from mazewb.errors import StateFormatError

END_MARKER = 0xCAFECAFE
SERIALIZE_VERSION = 0
GRID_CHEESE = 2  # procgen's GOAL
GRID_OPEN = 100
GRID_WALL = 51

_GAME_OPTIONS = (
    "paint_vel_info",
    "use_generated_assets",
    "use_monochrome_assets",
    "restrict_themes",
    "use_backgrounds",
    "center_agent",
    "debug_mode",
    "distribution_mode",
    "use_sequential_levels",
    "use_easy_jump",
    "plain_assets",
    "physics_mode",
)
_GAME_AFTER_RNG = (
    ("reward", "f"),
    ("done", "i"),
    ("level_complete", "i"),
    ("action", "i"),
    ("timeout", "i"),
    ("current_level_seed", "i"),
    ("prev_level_seed", "i"),
    ("episodes_remaining", "i"),
    ("episode_done", "i"),
    ("last_reward_timer", "i"),
    ("last_reward", "f"),
    ("default_action", "i"),
    ("fixed_asset_seed", "i"),
    ("cur_time", "i"),
    ("is_waiting_for_step", "i"),
)
ENTITY_FIELDS = (
    ("x", "f"),
    ("y", "f"),
    ("vx", "f"),
    ("vy", "f"),
    ("rx", "f"),
    ("ry", "f"),
    ("type", "i"),
    ("image_type", "i"),
    ("image_theme", "i"),
    ("render_z", "i"),
    ("will_erase", "i"),
    ("collides_with_entities", "i"),
    ("collision_margin", "f"),
    ("rotation", "f"),
    ("vrot", "f"),
    ("is_reflected", "i"),
    ("fire_time", "i"),
    ("spawn_time", "i"),
    ("life_time", "i"),
    ("expire_time", "i"),
    ("use_abs_coords", "i"),
    ("friction", "f"),
    ("smart_step", "i"),
    ("avoids_collisions", "i"),
    ("auto_erase", "i"),
    ("alpha", "f"),
    ("health", "f"),
    ("theta", "f"),
    ("grow_rate", "f"),
    ("alpha_decay", "f"),
    ("climber_spawn_x", "f"),
)
_BASIC_AFTER_ENTITIES = (
    ("use_procgen_background", "i"),
    ("background_index", "i"),
    ("bg_tile_ratio", "f"),
    ("bg_pct_x", "f"),
    ("char_dim", "f"),
    ("last_move_action", "i"),
    ("move_action", "i"),
    ("special_action", "i"),
    ("mixrate", "f"),
    ("maxspeed", "f"),
    ("max_jump", "f"),
    ("action_vx", "f"),
    ("action_vy", "f"),
    ("action_vrot", "f"),
    ("center_x", "f"),
    ("center_y", "f"),
    ("random_agent_start", "i"),
    ("has_useful_vel_info", "i"),
    ("step_rand_int", "i"),
)
_BASIC_AFTER_RNG = (
    ("main_width", "i"),
    ("main_height", "i"),
    ("out_of_bounds_object", "i"),
    ("unit", "f"),
    ("view_dim", "f"),
    ("x_off", "f"),
    ("y_off", "f"),
    ("visibility", "f"),
    ("min_visibility", "f"),
)


@dataclass
class ProcgenMazeState:
    """Every field of a serialized maze state, editable, written back byte for byte.

    ``scalars`` holds named int/float fields in file order; ``entities`` a list of per-entity
    dicts (entity 0 is the mouse); ``grid`` the world's cell codes indexed ``y * w + x`` with
    ``y = 0`` the bottom row; strings (game name, random-generator states) are kept as bytes.
    """

    scalars: dict[str, int | float | bytes] = field(default_factory=dict)
    entities: list[dict[str, int | float]] = field(default_factory=list)
    grid_w: int = 0
    grid_h: int = 0
    grid: list[int] = field(default_factory=list)

    # --- convenient views -------------------------------------------------------------
    @property
    def maze_dim(self) -> int:
        return int(self.scalars["maze_dim"])

    @property
    def world_dim(self) -> int:
        return int(self.scalars["world_dim"])

    def cell(self, x: int, y: int) -> int:
        return self.grid[y * self.grid_w + x]

    def set_cell(self, x: int, y: int, code: int) -> None:
        self.grid[y * self.grid_w + x] = code


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, kind: str, name: str) -> int | float:
        if self.pos + 4 > len(self.data):
            raise StateFormatError(f"maze state truncated while reading '{name}' at byte {self.pos}")
        (value,) = struct.unpack_from("<" + kind, self.data, self.pos)
        self.pos += 4
        return value

    def take_string(self, name: str) -> bytes:
        n = int(self.take("i", name + ".length"))
        if n < 0:
            raise StateFormatError(f"maze state has a negative length {n} for string '{name}'")
        if self.pos + n > len(self.data):
            raise StateFormatError(f"maze state truncated inside string '{name}' ({n} bytes)")
        s = self.data[self.pos : self.pos + n]
        self.pos += n
        return s


def parse_state(data: bytes) -> ProcgenMazeState:
    """Parse procgen 0.10.7 maze state bytes; raise StateFormatError on any other layout."""
    if not isinstance(data, (bytes, bytearray)):
        raise StateFormatError(f"maze state must be bytes, got {type(data).__name__}")
    r = _Reader(bytes(data))
    st = ProcgenMazeState()
    sc = st.scalars
    sc["version"] = r.take("i", "version")
    if sc["version"] != SERIALIZE_VERSION:
        raise StateFormatError(f"procgen state version {sc['version']} is not supported (expected {SERIALIZE_VERSION})")
    sc["game_name"] = r.take_string("game_name")
    if sc["game_name"] != b"maze":
        raise StateFormatError(f"state is of game {sc['game_name']!r}, not 'maze'")
    for name in _GAME_OPTIONS:
        sc[name] = r.take("i", name)
    for name in ("grid_step", "level_seed_low", "level_seed_high", "game_type", "game_n"):
        sc[name] = r.take("i", name)
    for k in (1, 2):
        sc[f"rng{k}_is_seeded"] = r.take("i", f"rng{k}_is_seeded")
        sc[f"rng{k}_state"] = r.take_string(f"rng{k}_state")
    for name, kind in _GAME_AFTER_RNG:
        sc[name] = r.take(kind, name)
    sc["grid_size"] = r.take("i", "grid_size")
    n_entities = int(r.take("i", "entity_count"))
    if not 1 <= n_entities <= 10_000:
        raise StateFormatError(
            f"maze state has {n_entities} entities; the layout does not match procgen 0.10.7's "
            "maze (a fork with extra options?)"
        )
    for i in range(n_entities):
        st.entities.append({name: r.take(kind, f"entity{i}.{name}") for name, kind in ENTITY_FIELDS})
    for name, kind in _BASIC_AFTER_ENTITIES:
        sc[name] = r.take(kind, name)
    sc["rng3_is_seeded"] = r.take("i", "rng3_is_seeded")
    sc["rng3_state"] = r.take_string("rng3_state")
    for name, kind in _BASIC_AFTER_RNG:
        sc[name] = r.take(kind, name)
    st.grid_w = int(r.take("i", "grid.w"))
    st.grid_h = int(r.take("i", "grid.h"))
    n_cells = int(r.take("i", "grid.count"))
    if n_cells != st.grid_w * st.grid_h or not 0 < n_cells <= 10_000:
        raise StateFormatError(f"maze state grid is {st.grid_w}x{st.grid_h} with {n_cells} cells")
    end = r.pos + 4 * n_cells
    if end > len(r.data):
        raise StateFormatError("maze state truncated inside the grid")
    st.grid = list(struct.unpack_from(f"<{n_cells}i", r.data, r.pos))
    r.pos = end
    sc["maze_dim"] = r.take("i", "maze_dim")
    sc["world_dim"] = r.take("i", "world_dim")
    marker = int(r.take("i", "end_marker")) & 0xFFFFFFFF
    if marker != END_MARKER:
        raise StateFormatError(
            f"maze state end marker is {marker:#x}, expected {END_MARKER:#x}: not procgen 0.10.7's maze layout"
        )
    if r.pos != len(r.data):
        raise StateFormatError(f"maze state has {len(r.data) - r.pos} unexpected trailing bytes")
    if st.world_dim != st.grid_w or st.world_dim != st.grid_h:
        raise StateFormatError(f"world_dim {st.world_dim} does not match grid {st.grid_w}x{st.grid_h}")
    return st


def write_state(st: ProcgenMazeState) -> bytes:
    """Serialize a ProcgenMazeState back to procgen's bytes (inverse of parse_state)."""
    out: list[bytes] = []
    sc = st.scalars

    def put(kind: str, value: int | float) -> None:
        out.append(struct.pack("<" + kind, value))

    def put_string(value: bytes) -> None:
        put("i", len(value))
        out.append(value)

    put("i", sc["version"])
    put_string(sc["game_name"])  # type: ignore[arg-type]
    for name in _GAME_OPTIONS:
        put("i", sc[name])
    for name in ("grid_step", "level_seed_low", "level_seed_high", "game_type", "game_n"):
        put("i", sc[name])
    for k in (1, 2):
        put("i", sc[f"rng{k}_is_seeded"])
        put_string(sc[f"rng{k}_state"])  # type: ignore[arg-type]
    for name, kind in _GAME_AFTER_RNG:
        put(kind, sc[name])
    put("i", sc["grid_size"])
    put("i", len(st.entities))
    for ent in st.entities:
        for name, kind in ENTITY_FIELDS:
            put(kind, ent[name])
    for name, kind in _BASIC_AFTER_ENTITIES:
        put(kind, sc[name])
    put("i", sc["rng3_is_seeded"])
    put_string(sc["rng3_state"])  # type: ignore[arg-type]
    for name, kind in _BASIC_AFTER_RNG:
        put(kind, sc[name])
    put("i", st.grid_w)
    put("i", st.grid_h)
    put("i", len(st.grid))
    out.append(struct.pack(f"<{len(st.grid)}i", *st.grid))
    put("i", sc["maze_dim"])
    put("i", sc["world_dim"])
    out.append(struct.pack("<I", END_MARKER))
    return b"".join(out)


def entity_field_offset(st: ProcgenMazeState, index: int, name: str) -> int:
    """Byte offset of one entity field in ``write_state(st)``, for patching states in place
    (rendering hundreds of mouse positions rewrites only these 4-byte fields)."""
    sc = st.scalars
    names = [n for n, _ in ENTITY_FIELDS]
    if name not in names:
        raise KeyError(f"unknown entity field {name!r}")
    header = (
        4  # version
        + 4
        + len(sc["game_name"])  # type: ignore[arg-type]
        + 4 * (len(_GAME_OPTIONS) + 5)
        + sum(8 + len(sc[f"rng{k}_state"]) for k in (1, 2))  # type: ignore[arg-type]
        + 4 * len(_GAME_AFTER_RNG)
        + 8  # grid_size, entity count
    )
    return header + 4 * (len(ENTITY_FIELDS) * index + names.index(name))


def grid_cell_offset(data_len: int, grid_w: int, grid_h: int, x: int, y: int) -> int:
    """Byte offset of world cell ``(x, y)`` in a serialized state of ``data_len`` bytes.

    The grid is the last variable-length block (followed by maze_dim, world_dim and the end
    marker), so its position follows from the total length alone.
    """
    return data_len - 12 - 4 * grid_w * grid_h + 4 * (y * grid_w + x)
