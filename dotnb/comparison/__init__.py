"""Comparing runs: what differs between two runs (``dotnb diff``, the compare view)
and whether a reproduction matches its run (``dotnb reproduce``'s verdicts).

Pure functions over runs in a store; they run no kernel and write nothing.
"""
