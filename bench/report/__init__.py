"""``bench report``: one self-contained HTML page for a ``bench run`` folder.

The page (``RUN_DIR/report.html`` by default) holds, with every image embedded as a base64 PNG and no
external resource:

* the leaderboard (sortable by clicking a column header), with the paired bootstrap 95% confidence interval
  of each method's mean Score difference to the best method and its per-image win rate against it;
* Score against seconds per megapixel (log scale), Pareto front marked (matplotlib);
* mean Score per noise group / noise level (table and matplotlib plot);
* side-by-side crops (noisy, every method, ground truth) of the hardest, a median and the easiest image,
  rendered through a simple ISP: Malvar demosaic, grey-world white balance and exposure taken from the ground
  truth (the same for every panel), sRGB gamma.

Crops come from the run's ``crops.npz`` (cut by ``bench run`` from the outputs it scored), else from the
dataset and the run's ``outputs/<method>/<image>.dng`` where it saved them, else each method is run again,
with the parameters and noise mode the run recorded, on the chosen images only; the page says which. A
method that cannot be re-run gets a placeholder; a dataset that cannot be reached (when it is needed) leaves
the crops out (the page says why) and everything else in.

Modules, each importing only those above it:

* ``load``: the run folder (``per_image.csv``, ``run.json``, ``noise.csv``);
* ``statistics``: bootstrap comparison with the best method, Pareto front, noise groups, crop images;
* ``rendering``: the simple ISP, crop windows and regions, the overview thumbnail, PNG encoding (numpy
  only);
* ``plots``: the matplotlib figures;
* ``saved_crops``: crops as data, the per-result crop a run caches and the ``crops.npz`` it writes;
* ``crops``: the crop section (saved crops, saved outputs or re-created results);
* ``html``: the page (its style and script are ``static/report.css`` and ``static/report.js``).
"""

from bench.report.crops import (FINGERPRINT_CHECK_MAX_BYTES, CropRow, CropSection, Panel, build_crops,
                                fingerprint_note, open_run_dataset)
from bench.report.html import REPORT_FILE, render_report, write_report
from bench.report.load import RunFolder, load_run_folder, method_kind, method_order
from bench.report.plots import noise_plot, speed_plot
from bench.report.rendering import (CROP_MARGIN, CROP_SIZE, MosaicCrop, Rendering, area_resize, crop_region,
                                    detail_window, overview_thumbnail, packed_rgb, png_base64, png_bytes,
                                    render_window, rendering_from_ground_truth, to_srgb8)
from bench.report.saved_crops import CROPS_FILE, ImageCrops, read_run_crops, result_crop, write_run_crops
from bench.report.statistics import (BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, MAX_NOISE_GROUPS, NOISE_BINS, Comparison,
                                     choose_crop_images, compare_to_best, noise_groups, paired_bootstrap_ci,
                                     pareto_front)

__all__ = [
    "BOOTSTRAP_RESAMPLES", "BOOTSTRAP_SEED", "CROPS_FILE", "CROP_MARGIN", "CROP_SIZE", "FINGERPRINT_CHECK_MAX_BYTES",
    "MAX_NOISE_GROUPS", "NOISE_BINS", "REPORT_FILE", "Comparison", "CropRow", "CropSection", "ImageCrops",
    "MosaicCrop", "Panel", "Rendering", "RunFolder", "build_crops", "choose_crop_images", "compare_to_best",
    "area_resize", "crop_region", "detail_window", "fingerprint_note", "load_run_folder", "method_kind", "method_order",
    "noise_groups", "noise_plot", "open_run_dataset", "overview_thumbnail", "packed_rgb", "paired_bootstrap_ci",
    "pareto_front", "png_base64", "png_bytes", "read_run_crops", "render_report", "render_window", "rendering_from_ground_truth",
    "result_crop", "speed_plot", "to_srgb8", "write_report", "write_run_crops",
]
