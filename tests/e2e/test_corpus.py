"""Every file of the shared corpus through the deployed pipeline: it ends as the manifest says.

The manifest (../shared/corpus/manifest.csv) is the contract: ``render`` ends READY with every
rendition; ``reject:<reason>`` ends FAILED with that reason, on the first attempt.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from PIL import Image

from tests.support import record_latency


def test_every_corpus_file_ends_as_the_manifest_says(pipeline, corpus: Path):
    with (corpus / "manifest.csv").open(newline="") as handle:
        manifest = list(csv.DictReader(handle))

    # GIVEN every file uploaded at once, as an app's users might
    uploads = {
        row["file"]: pipeline.upload((corpus / row["file"]).read_bytes(), Path(row["file"]).name)
        for row in manifest
    }

    # WHEN the pipeline has worked through them
    results = pipeline.wait_for([u.id for u in uploads.values()], timeout=240)

    # THEN each ended as the manifest says
    mismatches = {}
    for row in manifest:
        upload = uploads[row["file"]]
        notification = results[upload.id]
        record_latency(notification.received_at - upload.uploaded_at, f"{len(manifest)} at once")
        body = notification.body
        got = "render" if body["type"] == "image.ready" else f"reject:{body['failure']['reason']}"
        if got != row["expect"]:
            mismatches[row["file"]] = f"expected {row['expect']}, got {got} ({body.get('failure')})"
        elif got == "render":
            renditions = body["image"]["renditions"]
            if set(renditions) != {"large", "medium", "small", "square"}:
                mismatches[row["file"]] = f"renditions {sorted(renditions)}"
                continue
            with Image.open(io.BytesIO(pipeline.download(renditions["small"]))) as small:
                if small.mode not in ("RGB", "RGBA", "L") or small.getexif():
                    mismatches[row["file"]] = (
                        f"small rendition is {small.mode} with EXIF {dict(small.getexif())}"
                    )
        elif body["failure"]["stage"] not in ("thumbnail", "metadata"):
            mismatches[row["file"]] = f"failure stage {body['failure']['stage']}"
    assert not mismatches
