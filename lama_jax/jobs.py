"""Inpainting jobs: which photo and mask make each result, and where it goes.

An evaluation set or a folder of your photos is in the official layout: `name.png` (any
image extension, in any letter case) beside `name_mask000.png`, `name_mask001.png`, ...;
each mask is one job, whose result is named after the mask. `predict` and `evaluate` list
their jobs here; links to folders are not followed (`images.list_files`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional

from lama_jax.images import IMAGE_EXTENSIONS, has_extension, list_files


@dataclasses.dataclass(frozen=True)
class Job:
    """One inpainting: a photo, its mask and where the result goes."""

    image: Optional[str]
    mask: str
    output: str



def is_mask_file(path: str) -> bool:
    """Whether `path` is named as an official mask: `<photo>_mask<anything>.png`."""
    return "_mask" in os.path.basename(path) and has_extension(path, (".png",))


def folder_jobs(input_dir: str, output_dir: str) -> tuple[List[Job], List[str]]:
    """Jobs for every `*_mask*.png` under `input_dir` (extensions in any letter case, folder
    links not followed), and one-line errors for photos without a mask."""
    files = list_files(input_dir)
    photos: Dict[str, str] = {}  # stem -> photo; .png before .jpg ... as IMAGE_EXTENSIONS
    for path in sorted((f for f in files if "_mask" not in os.path.basename(f)),
                       key=lambda f: IMAGE_EXTENSIONS.index(os.path.splitext(f)[1].lower())):
        photos.setdefault(os.path.splitext(path)[0], path)
    jobs, with_mask = [], set()
    for mask in filter(is_mask_file, files):
        image = photos.get(mask.rsplit("_mask", 1)[0])
        jobs.append(Job(image, mask, os.path.join(output_dir, os.path.relpath(mask, input_dir))))
        with_mask.add(image)
    errors = [f"{path}: no mask found (expected {os.path.splitext(path)[0]}_mask000.png)"
              for path in sorted(set(photos.values()) - with_mask)]
    return jobs, errors


def overwritten_input(jobs: List[Job]) -> Optional[Job]:
    """The first job whose result would land on a photo or mask of any job, or None."""
    inputs = {os.path.realpath(p) for job in jobs for p in (job.image, job.mask) if p}
    return next((job for job in jobs if os.path.realpath(job.output) in inputs), None)
