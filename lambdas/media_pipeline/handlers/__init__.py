"""Lambda entry points: each module is one function (thin adapters over the library)."""
