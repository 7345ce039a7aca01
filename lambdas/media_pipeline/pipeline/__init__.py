"""The work both SQS-driven functions do for every upload: one flow, two halves.

* ``flow``: open the object version, decide from the media item, check limits, read, produce,
  record; what each event came to (``Result``, its ``Outcome``) and the ``HalfWork`` protocol a
  half plugs into it.
* ``sqs``: the SQS batch adapter both handlers run (partial batch failures, retry scheduling,
  metrics).
* ``halves``: the two halves, ``RenditionsWork`` (run by the renditions worker, deployed as the
  ``thumbnail`` function: ``handlers/thumbnail.py`` says why) and ``MetadataWork``.

Nothing is imported here: ``scripts/render.py`` imports ``halves`` alone, without Powertools or
botocore, which an ``__init__`` importing ``sqs`` would bring along.
"""
