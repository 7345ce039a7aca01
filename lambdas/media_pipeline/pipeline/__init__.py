"""The work both SQS-driven functions do for every upload: one flow, two halves.

* ``flow``: open the object version, decide from the media item, check limits, read, produce,
  record; what each event came to (``Result``, its ``Outcome``) and the ``HalfWork`` protocol a
  half plugs into it.
* ``sqs``: the SQS batch adapter both handlers run (partial batch failures, retry scheduling,
  metrics).
* ``halves``: the two halves, ``RenditionsWork`` and ``MetadataWork``.

Names. In Python the half that resizes is the *renditions* half (``Half.RENDITIONS``,
``RenditionsWork``, the item's ``renditions``), as the other is the *metadata* half.
"thumbnail" is the name AWS and stored data know it by, and stays there only: the Lambda
function and its handler module (``handlers/thumbnail.py``, ``lambdas/functions.json``), its
queues and environment (``THUMBNAIL_QUEUE_URL``), its settings (``ThumbnailSettings``), the
failure ``stage`` the API and notifications report (``Half.RENDITIONS.stage``). Renaming those
would change Terraform, the contract or stored records; a "thumbnail worker" in a docstring is
that function.

Nothing is imported here: ``scripts/render.py`` imports ``halves`` alone, without Powertools or
botocore, which an ``__init__`` importing ``sqs`` would bring along.
"""
