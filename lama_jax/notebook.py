"""What the notebooks in `experiments/notebooks/` need beyond the library: where they run, a
canvas to draw a mask on with the mouse, and a live view of training.

    where = runtime()                          # Runtime(platform="tpu", devices=[...], colab=True)
    canvas = MaskCanvas(photo)                 # display(canvas.widget), draw; canvas.mask [H, W]
    train_and_evaluate(config, workdir, writers=[LiveView()])   # curves and grids, redrawn

The canvas needs ipycanvas and ipywidgets, the live view matplotlib and IPython
(`pip install 'lama_jax[notebook]'`); in Colab, call `enable_colab_widgets()` before showing
the canvas. The library itself never imports this module.
"""

from __future__ import annotations

import collections
import dataclasses
import importlib.util
import io
from typing import Any, Dict, List, Mapping, Optional, Tuple

import jax
import numpy as np

# ------------------------------------------------------------------------------------------
# Where the notebook runs.


@dataclasses.dataclass(frozen=True)
class Runtime:
    """The JAX platform ("tpu", "gpu" or "cpu"), its devices, and whether this is Colab."""

    platform: str
    devices: List[Any]
    colab: bool

    def describe(self) -> str:
        """One line per device kind: "tpu: 8 x TPU v2 (Colab)"."""
        kinds = collections.Counter(d.device_kind for d in self.devices)
        where = " (Colab)" if self.colab else ""
        return "; ".join(f"{self.platform}: {n} x {kind}{where}" for kind, n in kinds.items())


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return importlib.util.find_spec("google.colab") is not None


def runtime() -> Runtime:
    """The accelerator JAX uses by default (a TPU or GPU when there is one)."""
    return Runtime(jax.default_backend(), jax.devices(), in_colab())


def enable_colab_widgets() -> None:
    """Lets Colab show third-party widgets such as the mask canvas (a no-op elsewhere)."""
    if in_colab():
        from google.colab import output

        output.enable_custom_widget_manager()


# ------------------------------------------------------------------------------------------
# Drawing a mask.


def stroke(mask: np.ndarray, start: Tuple[float, float], end: Tuple[float, float],
           width: float) -> None:
    """Marks in `mask` [H, W] (in place, as 1) every pixel centre within width / 2 of the
    segment from `start` to `end` ((x, y) in pixels): a line with round caps."""
    (x0, y0), (x1, y1), r = start, end, width / 2
    h, w = mask.shape
    left, right = int(max(0, np.floor(min(x0, x1) - r))), int(min(w, np.ceil(max(x0, x1) + r) + 1))
    top, bottom = int(max(0, np.floor(min(y0, y1) - r))), int(min(h, np.ceil(max(y0, y1) + r) + 1))
    if left >= right or top >= bottom:
        return
    y, x = np.mgrid[top:bottom, left:right] + 0.5  # pixel centres
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0, 1)
    near = (x - x0 - t * dx) ** 2 + (y - y0 - t * dy) ** 2 <= r * r
    mask[top:bottom, left:right] |= near.astype(mask.dtype)


class MaskCanvas:
    """A photo on a canvas: drag the mouse over what to remove. `mask` is the hole map
    [H, W] uint8 (1 = hole) at the photo's resolution; the canvas shows the photo at most
    `max_side` pixels wide or high. `press`, `drag` and `release` are the mouse handlers
    (canvas coordinates), public so that a script can draw too."""

    def __init__(self, photo: np.ndarray, brush: int = 30, max_side: int = 640):
        import ipycanvas
        import ipywidgets

        self.photo = np.asarray(photo)  # [H, W, 3] uint8
        h, w = self.photo.shape[:2]
        self.scale = min(1.0, max_side / max(h, w))  # canvas px per photo px
        self.mask = np.zeros((h, w), np.uint8)
        self._last: Optional[Tuple[float, float]] = None
        self.canvas = ipycanvas.Canvas(width=round(w * self.scale), height=round(h * self.scale))
        self.brush = ipywidgets.IntSlider(brush, min=4, max=200, description="brush px")
        clear = ipywidgets.Button(description="clear")
        clear.on_click(lambda _: self.clear())
        self.canvas.on_mouse_down(self.press)
        self.canvas.on_mouse_move(self.drag)
        self.canvas.on_mouse_up(self.release)
        self.canvas.on_mouse_out(self.release)
        self.widget = ipywidgets.VBox([self.canvas, ipywidgets.HBox([self.brush, clear])])
        self.clear()

    def clear(self) -> None:
        """Forgets every stroke and shows the photo again."""
        from PIL import Image

        self.mask[:] = 0
        shown = Image.fromarray(self.photo).resize((self.canvas.width, self.canvas.height),
                                                   Image.BILINEAR)
        self.canvas.put_image_data(np.asarray(shown), 0, 0)
        self.canvas.stroke_style = "rgba(255, 40, 120, 0.6)"
        self.canvas.line_cap = "round"

    def press(self, x: float, y: float) -> None:
        """Mouse down at canvas (x, y): starts a stroke with a dot."""
        self._last = (x, y)
        self.drag(x, y)

    def drag(self, x: float, y: float) -> None:
        """Mouse move: extends the stroke in progress, if any."""
        if self._last is None:
            return
        width = self.brush.value
        self.canvas.line_width = width * self.scale
        self.canvas.stroke_line(*self._last, x, y)
        stroke(self.mask, (self._last[0] / self.scale, self._last[1] / self.scale),
               (x / self.scale, y / self.scale), width)
        self._last = (x, y)

    def release(self, x: float, y: float) -> None:
        """Mouse up or out: ends the stroke."""
        self._last = None


# ------------------------------------------------------------------------------------------
# Watching training.

# ReportProgress's bookkeeping, not curves worth a panel.
_NOT_PLOTTED = ("steps_per_sec", "uptime")


class LiveView:
    """A metric writer for `train_and_evaluate(..., writers=[LiveView()])` that shows the
    training losses, the validation metrics and the newest validation grid (masked input |
    mask | result | original) in one figure, redrawn in place as they arrive. It has clu's
    `MetricWriter` methods without subclassing it, so that this module imports without
    TensorFlow (which clu's writers import)."""

    def __init__(self, height: float = 4.0):
        self.scalars: Dict[str, List[Tuple[int, float]]] = collections.defaultdict(list)
        self.grid: Optional[np.ndarray] = None  # [H, W, 3] in [0, 1]
        self.grid_step = 0
        self._height = height
        self._display = None

    def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
        """Keeps the values and redraws."""
        for name, value in scalars.items():
            if name not in _NOT_PLOTTED and np.size(value) == 1:
                self.scalars[name].append((int(step), float(np.asarray(value))))
        self._show()

    def write_images(self, step: int, images: Mapping[str, Any]) -> None:
        """Keeps the newest image (a [1, H, W, 3] batch of one) and redraws."""
        for image in images.values():
            self.grid, self.grid_step = np.asarray(image)[0], int(step)
        self._show()

    def figure_png(self) -> bytes:
        """The current figure as PNG bytes: losses (log scale), validation metrics, grid."""
        import matplotlib
        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        panels = [("training losses", [n for n in self.scalars
                                       if not n.startswith(("eval/", "data/"))
                                       and not n.endswith("grad_norm")]),
                  ("validation", [n for n in self.scalars if n.startswith("eval/")])]
        panels = [(title, names) for title, names in panels if names]
        columns = len(panels) + (self.grid is not None)
        fig, axes = plt.subplots(1, max(columns, 1), squeeze=False,
                                 figsize=(4.5 * max(columns, 1), self._height),
                                 constrained_layout=True)
        for ax, (title, names) in zip(axes[0], panels):
            for name in sorted(names):
                steps, values = zip(*self.scalars[name])
                ax.plot(steps, values, "o-" if len(steps) < 30 else "-", label=name, ms=3)
            if title == "training losses" and all(v > 0 for n in names for _, v in self.scalars[n]):
                ax.set_yscale("log")
            ax.set(title=title, xlabel="step")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        if self.grid is not None:
            axes[0][-1].imshow(np.clip(self.grid, 0, 1))
            axes[0][-1].set(title=f"validation, step {self.grid_step}: input | mask | result | "
                            "original")
            axes[0][-1].title.set_fontsize(8)
            axes[0][-1].axis("off")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        plt.close(fig)
        return buffer.getvalue()

    def _show(self) -> None:
        from IPython import display

        image = display.Image(self.figure_png())
        if self._display is None:
            self._display = display.display(image, display_id=True)
        else:
            self._display.update(image)

    # What the view does not show.
    def write_summaries(self, step, values, metadata=None) -> None:
        """Not shown."""

    def write_texts(self, step, texts) -> None:
        """Not shown."""

    def write_videos(self, step, videos) -> None:
        """Not shown."""

    def write_audios(self, step, audios, *, sample_rate) -> None:
        """Not shown."""

    def write_histograms(self, step, arrays, num_buckets=None) -> None:
        """Not shown."""

    def write_hparams(self, hparams) -> None:
        """Not shown."""

    def flush(self) -> None:
        """Nothing is buffered."""

    def close(self) -> None:
        """Nothing to release."""
