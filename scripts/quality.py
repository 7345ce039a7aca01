#!/usr/bin/env python3
"""make quality: how well the engine finds duplicates and points of interest, measured on real
photos (issue 20). Not a test: it prints figures; the tests hold the engine to a floor.

    python scripts/quality.py [--quick] [--threshold N]

Duplicates. The test set is built, deterministically, from the photos of the shared corpus
(``../shared/corpus``: the files its manifest renders that are photographs, grouped by which
photo they are in ``tests/data/corpus_photos.csv``) and of ``samples/``:

* each photo's original (the first file of its group), decoded upright as an app shows it, is
  transformed: re-encoded (JPEG q60 and q90, WebP q80, PNG), resized to 50% and 25%, stored
  sideways with an EXIF orientation that turns it back ("exif-rotated"), its orientation baked
  into the pixels and the tag dropped ("exif-baked"), cropped by 5% and 10% (off-centre: 60% of
  the cut on the left and top), brightened by 15%, and combinations; each copy goes through
  ``render()`` as an upload would, and its hash is compared with the original's: recall;
* the other files of each group are the same photo as found in the wild (other formats, modes,
  EXIF orientations): recall too;
* every pair of different originals: false positives (distinct photos only; the waterfall and
  the person before it are two photos of the same place);
* and, beyond the corpus, scikit-image's bundled photos (astronaut, coffee, rocket, ...) with
  every corpus original: more false-positive pairs; and its 200 LFW faces and non-faces, 25 px,
  aligned: a deliberately hard set where hashes of low-detail pictures crowd together.

For the chosen threshold (``duplicates.THRESHOLD``) it prints recall per transform and false
positives per set, the distances at the edge, and what an index over ``duplicates.bands`` would
find: the share of duplicates that share a band with their original (index recall), how often
unrelated pictures share one (the false-candidate rate, measured, against 2^-width for uniform
bits), and the index entries a lookup reads per million pictures of an app.

A copy with its EXIF orientation stripped but not baked ("sideways") shows the photo turned by
90 degrees: printed for information, not counted (an app shows it sideways, and the hash is of
what is shown).

Points of interest. Every picture with a hand-marked box (``samples/points_of_interest.csv``,
and ``tests/data/corpus_points_of_interest.csv`` for corpus photos) is cropped to six aspect
ratios around the focal point of each strategy: the engine's (``crops.find_focus``), the
centre, and libvips' ``smartcrop`` attention and entropy points (of the same 64 px preview
source). A crop counts if it keeps the box whole where the box fits its window, else the box's
centre.
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageEnhance

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambdas"))

from media_pipeline import imaging
from media_pipeline.imaging import crops, duplicates, preview
from media_pipeline.imaging.engine import rendition_images
from media_pipeline.imaging.features import Focus

ROOT = Path(__file__).resolve().parents[1]
CORPUS = (ROOT / ".." / "shared" / "corpus").resolve()
SAMPLES = ROOT / "samples"
PHOTOS = ROOT / "tests" / "data" / "corpus_photos.csv"
POINTS = (
    SAMPLES / "points_of_interest.csv",
    ROOT / "tests" / "data" / "corpus_points_of_interest.csv",
)
ASPECTS = ((1, 1), (16, 9), (9, 16), (4, 5), (3, 2), (2, 3))
BAND_CHOICES = (8, 10, 12, 16)

# ---------------------------------------------------------------------------------------------
# The test set
# ---------------------------------------------------------------------------------------------


def read(name: str) -> bytes:
    """A file by its name in corpus_photos.csv: ``samples/...`` or a corpus path."""
    if name.startswith("samples/"):
        return (SAMPLES / name.removeprefix("samples/")).read_bytes()
    return (CORPUS / name).read_bytes()


def photo_groups(quick: bool = False) -> dict[str, list[str]]:
    """Photo -> its files, the original first: the files of corpus_photos.csv whose manifest
    row renders (and that render here), or only the samples with ``quick``."""
    with (CORPUS / "manifest.csv").open() as handle:
        renders = {row["file"] for row in csv.DictReader(handle) if row["expect"] == "render"}
    groups: dict[str, list[str]] = {}
    with PHOTOS.open() as handle:
        for row in csv.DictReader(handle):
            name = row["file"]
            if quick and not name.startswith("samples/"):
                continue
            if not name.startswith("samples/") and name not in renders:
                raise SystemExit(f"{PHOTOS.name}: {name} is not a file the corpus renders")
            if isinstance(imaging.render(read(name), ()), imaging.Rendered):
                groups.setdefault(row["photo"], []).append(name)
    return groups


def upright(data: bytes) -> Image.Image:
    """The picture as an app shows it: the engine's own full-size, upright, sRGB decode."""
    result = rendition_images(data, (imaging.RenditionSpec("full", 1 << 30),))
    assert not isinstance(result, imaging.Rejected), result
    return result[1][0]


def encoded(image: Image.Image, image_format: str, **options: object) -> bytes:
    if image_format == "JPEG" and image.mode in ("RGBA", "LA"):  # flattened over white
        white = Image.new("RGB", image.size, (255, 255, 255))
        white.paste(image, mask=image.getchannel("A"))
        image = white
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def cropped(image: Image.Image, share: float) -> Image.Image:
    """``share`` of the width and of the height cut off, 60% of it on the left and top."""
    cut_x, cut_y = image.width * share, image.height * share
    return image.crop(
        (
            round(cut_x * 0.6),
            round(cut_y * 0.6),
            image.width - round(cut_x * 0.4),
            image.height - round(cut_y * 0.4),
        )
    )


def brightened(image: Image.Image, factor: float) -> Image.Image:
    if image.mode != "RGBA":
        return ImageEnhance.Brightness(image).enhance(factor)
    out = ImageEnhance.Brightness(image.convert("RGB")).enhance(factor).convert("RGBA")
    out.putalpha(image.getchannel("A"))
    return out


def resized(image: Image.Image, share: float) -> Image.Image:
    size = (max(1, round(image.width * share)), max(1, round(image.height * share)))
    return image.resize(size, Image.Resampling.LANCZOS)


def exif_rotated(image: Image.Image) -> bytes:
    """Stored sideways (turned 90 degrees anticlockwise) with EXIF orientation 6, which turns it
    back: the same picture on screen, other pixels in the file."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encoded(image.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif)


Transform = Callable[[Image.Image], bytes]
TRANSFORMS: dict[str, Transform] = {
    "jpeg-q60": lambda u: encoded(u, "JPEG", quality=60),
    "jpeg-q90": lambda u: encoded(u, "JPEG", quality=90),
    "webp-q80": lambda u: encoded(u, "WEBP", quality=80),
    "png": lambda u: encoded(u, "PNG"),
    "resize-50%": lambda u: encoded(resized(u, 0.5), "JPEG", quality=90),
    "resize-25%": lambda u: encoded(resized(u, 0.25), "JPEG", quality=90),
    "exif-rotated": exif_rotated,
    "exif-baked": lambda u: encoded(u, "JPEG", quality=90, exif=Image.Exif()),
    "crop-5%": lambda u: encoded(cropped(u, 0.05), "JPEG", quality=90),
    "crop-10%": lambda u: encoded(cropped(u, 0.10), "JPEG", quality=90),
    "bright+15%": lambda u: encoded(brightened(u, 1.15), "JPEG", quality=90),
    "resize-50%+q60": lambda u: encoded(resized(u, 0.5), "JPEG", quality=60),
    "crop-5%+bright+15%+webp": lambda u: encoded(brightened(cropped(u, 0.05), 1.15), "WEBP"),
    "exif-rotated+resize-25%": lambda u: exif_rotated(resized(u, 0.25)),
    "crop-10%+bright+15%+q60": lambda u: encoded(
        brightened(cropped(u, 0.10), 1.15), "JPEG", quality=60
    ),
}
SIDEWAYS: Transform = lambda u: encoded(u.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90)  # noqa: E731


def hash_of(data: bytes) -> str:
    """The perceptual hash ``render()`` gives an upload of these bytes."""
    outcome = imaging.render(data, ())
    assert isinstance(outcome, imaging.Rendered), outcome
    assert outcome.features is not None
    return outcome.features.perceptual_hash


def extra_photos() -> tuple[dict[str, str], dict[str, str]]:
    """Hashes of scikit-image's bundled photos, and of its 200 LFW pictures (dev dependency)."""
    import numpy as np  # noqa: PLC0415 - only here
    from skimage import data as sk  # noqa: PLC0415

    photos = {}
    for name in (
        "astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina",
        "moon", "coins", "horse", "brick", "grass", "gravel", "page", "text", "clock",
        "immunohistochemistry", "cell", "colorwheel", "microaneurysms",
    ):  # fmt: skip
        photos[name] = hash_of(encoded(Image.fromarray(getattr(sk, name)()), "PNG"))
    faces = {
        f"lfw-{index}": hash_of(
            encoded(Image.fromarray((face * 255).round().astype(np.uint8)), "PNG")
        )
        for index, face in enumerate(sk.lfw_subset())
    }
    return photos, faces


# ---------------------------------------------------------------------------------------------
# Duplicates
# ---------------------------------------------------------------------------------------------


def duplicates_report(quick: bool, threshold: int) -> dict[str, float]:
    groups = photo_groups(quick)
    originals = {photo: hash_of(read(files[0])) for photo, files in groups.items()}
    positives: dict[str, list[tuple[str, str, int]]] = {}
    sideways = []
    for photo, files in groups.items():
        shown = upright(read(files[0]))
        for name, transform in TRANSFORMS.items():
            copy = hash_of(transform(shown))
            pair = (originals[photo], copy, duplicates.distance(originals[photo], copy))
            positives.setdefault(name, []).append(pair)
        sideways.append(duplicates.distance(originals[photo], hash_of(SIDEWAYS(shown))))
        for member in files[1:]:
            copy = hash_of(read(member))
            pair = (originals[photo], copy, duplicates.distance(originals[photo], copy))
            positives.setdefault("same photo, other file", []).append(pair)
    negatives = {
        "different corpus photos": [
            (a, b, duplicates.distance(a, b))
            for a, b in itertools.combinations(originals.values(), 2)
        ]
    }
    if not quick:
        photos, faces = extra_photos()
        everyone = [*originals.values(), *photos.values()]
        negatives["corpus + scikit-image photos"] = [
            (a, b, duplicates.distance(a, b)) for a, b in itertools.combinations(everyone, 2)
        ]
        negatives["LFW 25 px faces (hard)"] = [
            (a, b, duplicates.distance(a, b)) for a, b in itertools.combinations(faces.values(), 2)
        ]

    print(f"Duplicates: {len(groups)} photos, threshold {threshold} of {duplicates.HASH_BITS} bits")
    print(f"  {'copy':<28} {'pairs':>5} {'recall':>7} {'max d':>6} {'mean d':>7}")
    found = total = 0
    for name, pairs in positives.items():
        hits = sum(duplicates.is_duplicate(a, b, threshold) for a, b, _ in pairs)
        found, total = found + hits, total + len(pairs)
        distances = [d for _, _, d in pairs]
        print(
            f"  {name:<28} {len(pairs):5d} {hits / len(pairs):7.3f} {max(distances):6d}"
            f" {statistics.mean(distances):7.1f}"
        )
    recall = found / total
    print(f"  {'all copies':<28} {total:5d} {recall:7.3f}")
    print(
        f"  {'(sideways: EXIF stripped)':<28} {len(sideways):5d}"
        f" {sum(d <= threshold for d in sideways) / len(sideways):7.3f} {max(sideways):6d}"
        f" {statistics.mean(sideways):7.1f}  shown turned: not counted"
    )
    print(
        f"  {'different pictures':<28} {'pairs':>7} {'false +':>7} {'min d':>6} {'mean d':>7}"
        "  (blank: both without detail, FLAT_HASH)"
    )
    false_positives = {}
    for name, pairs in negatives.items():
        blank = sum(a == b == duplicates.FLAT_HASH for a, b, _ in pairs)
        hits = sum(duplicates.is_duplicate(a, b, threshold) for a, b, _ in pairs) - blank
        false_positives[name] = hits
        distances = [d for a, b, d in pairs if duplicates.FLAT_HASH not in (a, b)]
        print(
            f"  {name:<28} {len(pairs):7d} {hits:7d} {min(distances):6d}"
            f" {statistics.mean(distances):7.1f}" + (f"  + {blank} blank pairs" if blank else "")
        )

    print(
        "\n  Index bands (duplicates.bands: one key per band; a lookup reads all its keys)."
        "\n  index recall: copies within the threshold that share a band with their original;"
        "\n  share: how often a band of two different pictures matches (measured, per set; uniform"
        "\n  bits: 2^-width); read: index entries a lookup reads in an app of 1M pictures."
    )
    all_positives = [pair for pairs in positives.values() for pair in pairs]
    sets = {name: pairs for name, pairs in negatives.items() if name != "different corpus photos"}
    sets = sets or negatives
    print(
        f"  {'bands x bits':<13} {'index recall':>12} {'always if d <=':>14} {'uniform: read':>14}"
        + "".join(f" | {name[:22]:>22}: read" for name in sets)
    )
    for count in BAND_CHOICES:
        width = len(duplicates.band_bits(count)[0])

        def shared(a: str, b: str, count: int = count) -> int:
            return len(set(duplicates.bands(a, count)) & set(duplicates.bands(b, count)))

        index_recall = sum(
            shared(a, b) > 0 and duplicates.is_duplicate(a, b, threshold)
            for a, b, _ in all_positives
        ) / len(all_positives)
        uniform = count * 2.0**-width * 1e6
        line = f"  {count:>3} x {width:<7} {index_recall:12.3f} {count - 1:>14} {uniform:14.0f}"
        for pairs in sets.values():
            share = sum(shared(a, b) for a, b, _ in pairs) / len(pairs) / count
            line += f" | {share:14.1e} per band {count * share * 1e6:7.0f}"
        print(line)
    return {"recall": recall, **{f"fp {k}": v for k, v in false_positives.items()}}


# ---------------------------------------------------------------------------------------------
# Points of interest
# ---------------------------------------------------------------------------------------------


def marked() -> list[tuple[str, bytes, tuple[float, float, float, float]]]:
    out = []
    for path in POINTS:
        with path.open() as handle:
            for row in csv.DictReader(handle):
                base = SAMPLES if path.parent == SAMPLES else CORPUS
                box = tuple(float(row[k]) for k in ("left", "top", "right", "bottom"))
                out.append((row["file"], (base / row["file"]).read_bytes(), box))
    return out


def kept(box: tuple[float, ...], focus: Focus, size: tuple[int, int]) -> int:
    """How many of the ASPECTS crops around ``focus`` keep the box (whole if it fits)."""
    count = 0
    for aspect in ASPECTS:
        _, extent = crops.plan(imaging.RenditionSpec("c", 4096, aspect), size)
        left, top, right, bottom = crops.normalised(crops.place(extent, size, focus), size)
        if box[2] - box[0] <= right - left + 1e-6 and box[3] - box[1] <= bottom - top + 1e-6:
            count += (
                left - 1e-6 <= box[0]
                and box[2] <= right + 1e-6
                and top - 1e-6 <= box[1]
                and box[3] <= bottom + 1e-6
            )
        else:
            x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            count += left <= x <= right and top <= y <= bottom
    return count


def vips_focus(image: Image.Image, interesting: str) -> Focus:
    import pyvips  # noqa: PLC0415 - a peer, measured here only

    rgb = image.convert("RGB")
    source = pyvips.Image.new_from_memory(rgb.tobytes(), rgb.width, rgb.height, 3, "uchar")
    side = max(1, min(rgb.size) // 2)
    _, found = source.smartcrop(
        side, side, interesting=interesting, attention_x=True, attention_y=True
    )
    return Focus(
        min(1.0, (found["attention_x"] + 0.5) / rgb.width),
        min(1.0, (found["attention_y"] + 0.5) / rgb.height),
    )


def points_report() -> dict[str, float]:
    strategies: dict[str, Callable[[Image.Image], Focus]] = {
        "engine (saliency, mean shift)": crops.find_focus,
        "centre of the picture": lambda _: Focus(0.5, 0.5),
        "libvips smartcrop attention": lambda im: vips_focus(im, "attention"),
        "libvips smartcrop entropy": lambda im: vips_focus(im, "entropy"),
    }
    scores = dict.fromkeys(strategies, 0)
    inside = dict.fromkeys(strategies, 0)
    times: dict[str, list[float]] = {name: [] for name in strategies}
    pictures = marked()
    rows = []
    for name, data, box in pictures:
        specs = (*imaging.DEFAULT_RENDITIONS, imaging.RenditionSpec("p", preview.SOURCE_EDGE))
        result = rendition_images(data, specs)
        assert not isinstance(result, imaging.Rejected), name
        info, images = result
        row = [name]
        for strategy, find in strategies.items():
            begin = time.process_time()
            focus = find(images[-1])
            times[strategy].append(time.process_time() - begin)
            score = kept(box, focus, (info.width, info.height))
            scores[strategy] += score
            inside[strategy] += box[0] <= focus.x <= box[2] and box[1] <= focus.y <= box[3]
            row.append(f"{score}/{len(ASPECTS)}")
        rows.append(row)
    total = len(pictures) * len(ASPECTS)
    print(
        f"\nPoints of interest: {len(pictures)} hand-marked pictures x {len(ASPECTS)} aspect ratios"
        f" ({', '.join(f'{w}:{h}' for w, h in ASPECTS)}), crops keeping the marked box"
    )
    print(f"  {'strategy':<32} {'crops kept':>10} {'focus in box':>12} {'ms each':>8}")
    for strategy in strategies:
        print(
            f"  {strategy:<32} {scores[strategy]:>5}/{total:<4}"
            f" {inside[strategy]:>7}/{len(pictures):<4}"
            f" {statistics.median(times[strategy]) * 1000:8.2f}"
        )
    print("  per picture (engine, centre, attention, entropy):")
    for row in rows:
        print(f"    {row[0]:<32} {'  '.join(row[1:])}")
    return {strategy: scores[strategy] / total for strategy in strategies}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="samples only, no extra photos")
    parser.add_argument("--threshold", type=int, default=duplicates.THRESHOLD)
    args = parser.parse_args()
    if not (CORPUS / "manifest.csv").is_file():
        print(f"the shared corpus is not at {CORPUS}", file=sys.stderr)
        return 1
    duplicates_report(args.quick, args.threshold)
    points_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
