"""Typed settings of each function, read from its environment (one module per function family).

Kept apart so that a function imports only what it needs: the notifier's settings do not pull in
the image stack.
"""
